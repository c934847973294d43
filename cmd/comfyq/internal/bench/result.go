package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one row of a benchmark's report: one client on one workload.
type Result struct {
	// Scenario is the scenario that produced the row (pipelining, throughput, memory,
	// baseline).
	Scenario string `json:"scenario"`
	// Name describes the row, e.g. "comfyq depth=2".
	Name string `json:"name"`
	// Client is comfyq, naive (the guides' sequential client) or direct (one shared
	// socket, the node's queue kept full: the node's ceiling).
	Client string `json:"client"`
	// Nodes is the number of simulated ComfyUI nodes; Depth comfyq's pipelining
	// depth (0 for other clients and for comfyq's automatic depth, whose rows say
	// depth=auto). DepthReached is each node's depth when the run ended, with the
	// automatic depth in an in-process worker.
	Nodes        int   `json:"nodes"`
	Depth        int   `json:"depth,omitempty"`
	DepthReached []int `json:"depth_reached,omitempty"`
	// Jobs were run; Succeeded of them ended well.
	Jobs      int `json:"jobs"`
	Succeeded int `json:"succeeded"`
	// JobTimeMS is the configured execution time of each job on its node;
	// OutputBytes the size of each job's output (0: a small PNG); StorageLatencyMS
	// the latency added to each storage request.
	JobTimeMS        float64 `json:"job_time_ms"`
	OutputBytes      int64   `json:"output_bytes"`
	StorageLatencyMS float64 `json:"storage_latency_ms"`
	// Storage names the store outputs went to ("" when the client stores nothing).
	Storage string `json:"storage,omitempty"`
	// WallS is the time from the first job's creation to the last one's end;
	// JobsPerS is Succeeded over it.
	WallS    float64 `json:"wall_s"`
	JobsPerS float64 `json:"jobs_per_s"`
	// ExecMS is the measured execution time of each job on its node (from the node's
	// history, millisecond timestamps).
	ExecMS Dist `json:"exec_ms"`
	// OverheadMS is each job's orchestration overhead: end-to-end time minus its
	// execution on the node minus the time it waited while its node executed other
	// jobs (see the package documentation).
	OverheadMS Dist `json:"overhead_ms"`
	// DispatchMS and AfterMS split the overhead: the node idle before the job
	// started (while nothing else ran on it), and the time from the end of its
	// execution to the job's end (history, download, upload, status writes).
	DispatchMS Dist `json:"dispatch_ms"`
	AfterMS    Dist `json:"after_ms"`
	// HeadMS is the time from the first job's creation to the first execution
	// start on any node; TailMS from the last execution end to the last job's end.
	// The wall time is HeadMS, the nodes' work, and TailMS.
	HeadMS float64 `json:"head_ms"`
	TailMS float64 `json:"tail_ms"`
	// JobsPerNode counts the succeeded jobs each node ran.
	JobsPerNode []int `json:"jobs_per_node"`
	// BusyFraction is each node's execution time over the span from its first
	// execution's start to its last one's end, averaged over the nodes.
	BusyFraction float64 `json:"busy_fraction"`
	// OfCeiling is JobsPerS over the direct client's on the same workload and nodes.
	OfCeiling float64 `json:"of_ceiling,omitempty"`
	// MemoryBytes is a peak of memory while the run moved its outputs, measured as
	// MemoryMethod says: "worker_vmhwm" (the worker process's peak resident set,
	// VmHWM) or "process_heap" (this process's in-use heap peak above its level
	// before the run, sampled every 10 ms; it includes the simulator's buffers).
	MemoryBytes  int64  `json:"memory_bytes,omitempty"`
	MemoryMethod string `json:"memory_method,omitempty"`
	// RecoveryS (recovery scenario) is the time from a killed worker's restart, or
	// its death when it stays dead, until the last job it had in flight ended;
	// RecoveryLagS the worst time a job ended after the later of that moment and
	// its prompt's end on the node (the recovery's own delay).
	RecoveryS    float64 `json:"recovery_s,omitempty"`
	RecoveryLagS float64 `json:"recovery_lag_s,omitempty"`
	// RedisTripsPerJob (roundtrips scenario) is the Redis round trips per job of the
	// producers' and the worker's clients together (a command is one, a pipeline
	// one), from the first submission to the last job's end; ProducerTripsPerJob
	// and WorkerTripsPerJob are its two parts, RedisBytesPerJob the bytes their
	// connections sent and received per job, and RedisTrips the trips per job by
	// client and kind ("worker: evalsha asynq:{q}:pending").
	RedisTripsPerJob    float64            `json:"redis_trips_per_job,omitempty"`
	ProducerTripsPerJob float64            `json:"producer_trips_per_job,omitempty"`
	WorkerTripsPerJob   float64            `json:"worker_trips_per_job,omitempty"`
	RedisBytesPerJob    float64            `json:"redis_bytes_per_job,omitempty"`
	RedisTrips          map[string]float64 `json:"redis_trips,omitempty"`
	// BenchCPUMSPerJob, WorkerCPUMSPerJob and RedisCPUMSPerJob are the CPU time
	// (user + system) per job, from the first submission to the last job's end, of
	// this process (the simulated nodes, the producers, the direct client, and the
	// worker when it runs here), of the worker process, and of the Redis server (all
	// of it: meant for the redis-server the run started).
	BenchCPUMSPerJob  float64 `json:"bench_cpu_ms_per_job,omitempty"`
	WorkerCPUMSPerJob float64 `json:"worker_cpu_ms_per_job,omitempty"`
	RedisCPUMSPerJob  float64 `json:"redis_cpu_ms_per_job,omitempty"`
	// Target is the goal the row is checked against, if any, and Met whether it
	// was reached.
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
}

func (r *Result) check(target string, ok bool) {
	r.Target, r.Met = target, &ok
}

// fill sets the timing columns from a timeline.
func (r *Result) fill(tl *timeline, busy float64) {
	r.Jobs = len(tl.samples)
	r.Succeeded = tl.succeeded()
	span := tl.span()
	r.WallS = round(span.Seconds(), 3)
	if span > 0 {
		r.JobsPerS = round(float64(r.Succeeded)/span.Seconds(), 3)
	}
	r.ExecMS = distOf(tl.execTimes())
	total, dispatch, after := tl.overheads()
	r.OverheadMS, r.DispatchMS, r.AfterMS = distOf(total), distOf(dispatch), distOf(after)
	head, tail := tl.headTail()
	r.HeadMS, r.TailMS = ms(head), ms(tail)
	r.JobsPerNode = tl.perNode(r.Nodes)
	r.BusyFraction = round(busy, 4)
}

func round(f float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	if f >= 0 {
		return float64(int64(f*p+0.5)) / p
	}
	return -float64(int64(-f*p+0.5)) / p
}

// WriteTable prints results as an aligned text table.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\trun\tdepth\tnodes\tjobs\tok\tjob\toutput\tstore lat.\tjobs/s\tof ceiling\texec ms p50\toverhead ms mean/p50/p99\tdispatch/after ms mean\thead/tail ms\tbusy\tmemory\trecovery s (lag)\tredis trips/job (bytes)\tcpu ms/job bench/worker/redis\ttarget")
	for _, r := range results {
		ceiling := "-"
		if r.OfCeiling > 0 {
			ceiling = fmt.Sprintf("%.3f", r.OfCeiling)
		}
		mem := "-"
		if r.MemoryMethod != "" {
			mem = fmt.Sprintf("%s (%s)", bytesString(r.MemoryBytes), strings.TrimSuffix(strings.ReplaceAll(r.MemoryMethod, "_", " "), " "))
		}
		recovery := "-"
		if r.Scenario == ScenarioRecovery {
			recovery = fmt.Sprintf("%.2f (%.2f)", r.RecoveryS, r.RecoveryLagS)
		}
		trips := "-"
		if r.RedisTripsPerJob > 0 {
			trips = fmt.Sprintf("%.2f = %.2f + %.2f (%.0f B)", r.RedisTripsPerJob, r.ProducerTripsPerJob, r.WorkerTripsPerJob, r.RedisBytesPerJob)
		}
		cpu := "-"
		if r.BenchCPUMSPerJob > 0 {
			cpu = fmt.Sprintf("%.2f / %.2f / %.2f", r.BenchCPUMSPerJob, r.WorkerCPUMSPerJob, r.RedisCPUMSPerJob)
		}
		target := "-"
		if r.Target != "" {
			target = r.Target
			if r.Met != nil && *r.Met {
				target += " ok"
			} else {
				target += " MISSED"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%.2f\t%s\t%.1f\t%.1f / %.1f / %.1f\t%.1f / %.1f\t%.0f / %.0f\t%.3f\t%s\t%s\t%s\t%s\t%s\n",
			r.Scenario, r.Name, depthString(r), r.Nodes, r.Jobs, r.Succeeded,
			durString(r.JobTimeMS), outputString(r.OutputBytes), durString(r.StorageLatencyMS),
			r.JobsPerS, ceiling, r.ExecMS.P50, r.OverheadMS.Mean, r.OverheadMS.P50, r.OverheadMS.P99, r.DispatchMS.Mean, r.AfterMS.Mean, r.HeadMS, r.TailMS,
			r.BusyFraction, mem, recovery, trips, cpu, target)
	}
	return tw.Flush()
}

// depthString is the depth column: each node's depth at the end of an automatic
// run, the fixed depth, or "-".
func depthString(r Result) string {
	switch {
	case len(r.DepthReached) > 0:
		parts := make([]string, len(r.DepthReached))
		for i, d := range r.DepthReached {
			parts[i] = fmt.Sprint(d)
		}
		return strings.Join(parts, ",")
	case r.Depth > 0:
		return fmt.Sprint(r.Depth)
	}
	return "-"
}

func durString(msf float64) string {
	if msf <= 0 {
		return "-"
	}
	return (time.Duration(msf * float64(time.Millisecond))).String()
}

func outputString(n int64) string {
	if n <= 0 {
		return "png"
	}
	return bytesString(n)
}

func bytesString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
