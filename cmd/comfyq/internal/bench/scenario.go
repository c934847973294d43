package bench

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/comfyq/comfyq/internal/redistrips"
	"github.com/comfyq/comfyq/storage"
)

// Scenario names for Run.
const (
	// ScenarioPipelining: the node's busy fraction with pipelining depth 1 and 2
	// when each job executes 200 ms and its upload takes 100 ms (issue 4). Defaults:
	// 50 jobs, 1 node. Target: busy fraction ≥ 0.95 at depth 2.
	ScenarioPipelining = "pipelining"
	// ScenarioThroughput: jobs per second and added latency per job for tiny jobs
	// (EmptyImage → SaveImage, 5 ms on the node) on 1 and 4 nodes: the nodes'
	// ceiling, the naive sequential client and comfyq on the same nodes in the same
	// run (issue 12); the ceiling is measured before and after the others and the
	// better of the two counts. Defaults: 1000 jobs, automatic depth. Targets: comfyq
	// ≥ 0.95 of the ceiling on 1 node, ≥ 0.9 on 4, ahead of the naive client.
	ScenarioThroughput = "throughput"
	// ScenarioMemory: the worker's peak memory while it moves one large output (1 GiB
	// by default) into storage, in a worker process when Config.WorkerCommand is set
	// (file store, and S3 when given), else in this process. Target: < 100 MiB.
	ScenarioMemory = "memory"
	// ScenarioBaseline: the naive sequential client, direct submission (the node's
	// ceiling) and comfyq on the same simulator with realistic timings: each job
	// 2 s on the node, a 5 MiB output, 50 ms per storage request (issue 8); then
	// memory while the naive client and comfyq each move one large output
	// (Config.BaselineLargeOutput, 256 MiB). Defaults:
	// 10 jobs, 1 node, automatic depth. Target: comfyq ≥ 0.95 of the ceiling and ahead of
	// the naive client.
	ScenarioBaseline = "baseline"
	// ScenarioRecovery: a worker process killed with SIGKILL while a prompt executes
	// on its node and another waits there; once restarted after 2 s, once left dead
	// beside a second worker on another node. Rows: seconds from the restart (the
	// death) until its in-flight jobs ended. Needs Config.WorkerCommand. Targets:
	// ≤ 5 s after the restart, ≤ 15 s after the death, each prompt run once. Each run
	// then waits (about a minute) until asynq's redelivery of the killed worker's
	// tasks finds their jobs ended and is acknowledged.
	ScenarioRecovery = "recovery"
	// ScenarioRoundTrips: the Redis round trips and bytes per job of the producers
	// and of a worker in this process (5 ms jobs, the throughput scenario's), counted
	// on their clients from the first submission to the last job's end, by kind.
	// Defaults: 200 jobs, 1 node, automatic depth.
	ScenarioRoundTrips = "roundtrips"
	// ScenarioAll runs every scenario in turn, but those in Config.Skip.
	ScenarioAll = "all"
)

// Scenarios lists the scenario names Run accepts, "all" last.
func Scenarios() []string {
	return append(slices.Clone(scenarioOrder), ScenarioAll)
}

// scenarioOrder is the order in which "all" runs the scenarios.
var scenarioOrder = []string{ScenarioPipelining, ScenarioThroughput, ScenarioRoundTrips, ScenarioMemory, ScenarioBaseline, ScenarioRecovery}

// Targets.
const (
	busyTarget    = 0.95
	ceilingTarget = 0.95
	// ceilingTarget4 is the throughput scenario's target with more than one node.
	ceilingTarget4 = 0.9
	memoryTarget   = 100 << 20
)

// DepthAuto as Config.Depth runs comfyq with the automatic depth (--depth auto) in
// every scenario. Within a run, depth 0 is the automatic depth.
const DepthAuto = -1

// depthName names a depth in a row: a number, or auto.
func depthName(d int) string {
	if d <= 0 {
		return "auto"
	}
	return fmt.Sprint(d)
}

// depthOr returns the configured depth, or def when none is configured (0 in a run:
// automatic).
func (e *env) depthOr(def int) int {
	switch {
	case e.cfg.Depth == DepthAuto:
		return 0
	case e.cfg.Depth > 0:
		return e.cfg.Depth
	}
	return def
}

// Run runs a scenario end to end and returns its rows. It starts what cfg does not
// provide (redis-server, a temporary file store, simulated nodes on loopback ports)
// and stops it before returning.
func Run(ctx context.Context, cfg Config, scenario string) ([]Result, error) {
	if !slices.Contains(Scenarios(), scenario) {
		return nil, fmt.Errorf("bench: unknown scenario %q (want %s)", scenario, strings.Join(Scenarios(), ", "))
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	e, err := newEnv(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer e.close()
	var all []Result
	for _, s := range scenarioOrder {
		if scenario != s && (scenario != ScenarioAll || slices.Contains(cfg.Skip, s)) {
			continue
		}
		e.log.Info("scenario", "name", s)
		var rs []Result
		switch s {
		case ScenarioPipelining:
			rs, err = e.pipelining(ctx)
		case ScenarioThroughput:
			rs, err = e.throughput(ctx)
		case ScenarioRoundTrips:
			rs, err = e.roundTrips(ctx)
		case ScenarioMemory:
			rs, err = e.memory(ctx)
		case ScenarioBaseline:
			rs, err = e.baseline(ctx)
		case ScenarioRecovery:
			rs, err = e.recovery(ctx)
		}
		all = append(all, rs...)
		if err != nil {
			return all, fmt.Errorf("bench: scenario %s: %w", s, err)
		}
	}
	return all, nil
}

// scaled multiplies d by Config.TimeScale.
func (e *env) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * e.cfg.TimeScale)
}

func or(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func (e *env) pipelining(ctx context.Context) ([]Result, error) {
	w := Workload{JobTime: e.scaled(200 * time.Millisecond)}
	latency := e.scaled(100 * time.Millisecond)
	jobs, nodes := or(e.cfg.Jobs, 50), or(e.cfg.Nodes, 1)
	depths := []int{1, 2, 0}
	if e.cfg.Depth != 0 {
		depths = []int{e.depthOr(0)}
	}
	var out []Result
	for _, d := range depths {
		e.log.Info("run", "client", "comfyq", "depth", depthName(d), "jobs", jobs, "nodes", nodes)
		o, err := e.runComfyq(ctx, comfyqRun{workload: w, jobs: jobs, nodes: nodes, depth: d, latency: latency})
		if err != nil {
			return out, err
		}
		r := e.comfyqResult(ScenarioPipelining, "comfyq depth="+depthName(d), w, latency, nodes, d, o)
		if d != 1 {
			r.check(fmt.Sprintf("busy>=%.2f", busyTarget), r.BusyFraction >= busyTarget)
		}
		out = append(out, r)
	}
	return out, nil
}

func (e *env) throughput(ctx context.Context) ([]Result, error) {
	w := Workload{JobTime: e.scaled(5 * time.Millisecond)}
	depth := e.depthOr(0)
	counts := []int{1, 4}
	if e.cfg.Nodes > 0 {
		counts = []int{e.cfg.Nodes}
	}
	var out []Result
	for _, k := range counts {
		// 1000 jobs per node, so that each node runs as long (~7 s) whatever their
		// number and the ramp of the automatic depth is as small a part of it.
		jobs := or(e.cfg.Jobs, 1000*k)
		e.log.Info("run", "client", "direct", "jobs", jobs, "nodes", k)
		ceil, err := e.directResult(ctx, ScenarioThroughput, w, jobs, k)
		if err != nil {
			return out, err
		}
		out = append(out, ceil)
		e.log.Info("run", "client", "naive", "jobs", jobs, "nodes", k)
		naive, err := e.naiveResult(ctx, ScenarioThroughput, w, 0, jobs, k)
		if err != nil {
			return out, err
		}
		out = append(out, naive)
		e.log.Info("run", "client", "comfyq", "depth", depthName(depth), "jobs", jobs, "nodes", k)
		o, err := e.runComfyq(ctx, comfyqRun{workload: w, jobs: jobs, nodes: k, depth: depth, process: len(e.cfg.WorkerCommand) > 0})
		if err != nil {
			return out, err
		}
		r := e.comfyqResult(ScenarioThroughput, "comfyq depth="+depthName(depth), w, 0, k, depth, o)
		// The ceiling again, after comfyq: on a shared machine the nodes' own speed
		// moves with the load, and the better of the two is the ceiling.
		e.log.Info("run", "client", "direct", "jobs", jobs, "nodes", k)
		again, err := e.directResult(ctx, ScenarioThroughput, w, jobs, k)
		if err != nil {
			return out, err
		}
		again.Name = "direct (node ceiling), again"
		best := max(ceil.JobsPerS, again.JobsPerS)
		naive.OfCeiling = ratio(naive.JobsPerS, best)
		r.OfCeiling = ratio(r.JobsPerS, best)
		target := ceilingTarget
		if k > 1 {
			target = ceilingTarget4
		}
		r.check(fmt.Sprintf(">=%.2f of ceiling, > naive", target), r.OfCeiling >= target && r.JobsPerS > naive.JobsPerS)
		out = append(out, r, again)
	}
	return out, nil
}

func (e *env) roundTrips(ctx context.Context) ([]Result, error) {
	w := Workload{JobTime: e.scaled(5 * time.Millisecond)}
	jobs, nodes, depth := or(e.cfg.Jobs, 200), or(e.cfg.Nodes, 1), e.depthOr(0)
	e.log.Info("run", "client", "comfyq", "depth", depthName(depth), "jobs", jobs, "nodes", nodes, "counting", "redis round trips")
	o, err := e.runComfyq(ctx, comfyqRun{workload: w, jobs: jobs, nodes: nodes, depth: depth, countTrips: true})
	if err != nil {
		return nil, err
	}
	r := e.comfyqResult(ScenarioRoundTrips, "comfyq depth="+depthName(depth)+", redis trips", w, 0, nodes, depth, o)
	n := float64(max(r.Jobs, 1))
	ptrips, wtrips := o.producerTrips.Trips(), o.workerTrips.Trips()
	r.RedisTripsPerJob = round(float64(ptrips+wtrips)/n, 2)
	r.ProducerTripsPerJob = round(float64(ptrips)/n, 2)
	r.WorkerTripsPerJob = round(float64(wtrips)/n, 2)
	r.RedisBytesPerJob = round(float64(o.producerTrips.Bytes()+o.workerTrips.Bytes())/n, 0)
	r.RedisTrips = map[string]float64{}
	for _, side := range []struct {
		client string
		c      *redistrips.Counter
	}{{"producer", o.producerTrips}, {"worker", o.workerTrips}} {
		kinds := side.c.Kinds()
		names := slices.Collect(maps.Keys(kinds))
		slices.SortFunc(names, func(a, b string) int { return cmp.Or(kinds[b]-kinds[a], strings.Compare(a, b)) })
		for _, kind := range names {
			perJob := round(float64(kinds[kind])/n, 3)
			r.RedisTrips[side.client+": "+kind] = perJob
			e.log.Info("redis round trips", "client", side.client, "per_job", perJob, "kind", kind)
		}
	}
	return []Result{r}, nil
}

func (e *env) memory(ctx context.Context) ([]Result, error) {
	w := Workload{OutputSize: e.cfg.LargeOutput}
	jobs, nodes, depth := or(e.cfg.Jobs, 1), or(e.cfg.Nodes, 1), e.depthOr(0)
	type variant struct {
		process, file bool
	}
	var vs []variant
	if len(e.cfg.WorkerCommand) > 0 {
		vs = append(vs, variant{process: true, file: true})
		if e.s3 != nil {
			vs = append(vs, variant{process: true})
		}
	} else {
		vs = append(vs, variant{file: true})
		if e.s3 != nil {
			vs = append(vs, variant{})
		}
	}
	var out []Result
	for _, v := range vs {
		kind := "s3"
		if v.file {
			kind = "file"
		}
		name := "comfyq worker process → " + kind
		if !v.process {
			name = "comfyq in-process → " + kind
		}
		e.log.Info("run", "client", name, "output_bytes", w.OutputSize, "jobs", jobs)
		o, err := e.runComfyq(ctx, comfyqRun{workload: w, jobs: jobs, nodes: nodes, depth: depth,
			useFile: v.file, process: v.process, sampleHeap: !v.process})
		if err != nil {
			return out, err
		}
		r := e.comfyqResult(ScenarioMemory, name, w, 0, nodes, depth, o)
		r.check("memory<100MiB", r.MemoryBytes < memoryTarget)
		out = append(out, r)
	}
	return out, nil
}

func (e *env) baseline(ctx context.Context) ([]Result, error) {
	w := Workload{JobTime: e.scaled(2 * time.Second), OutputSize: 5 << 20}
	latency := e.scaled(50 * time.Millisecond)
	jobs, nodes, depth := or(e.cfg.Jobs, 10), or(e.cfg.Nodes, 1), e.depthOr(0)

	e.log.Info("run", "client", "naive", "jobs", jobs, "nodes", nodes)
	naive, err := e.naiveResult(ctx, ScenarioBaseline, w, latency, jobs, nodes)
	if err != nil {
		return nil, err
	}
	e.log.Info("run", "client", "direct", "jobs", jobs, "nodes", nodes)
	ceil, err := e.directResult(ctx, ScenarioBaseline, w, jobs, nodes)
	if err != nil {
		return nil, err
	}
	e.log.Info("run", "client", "comfyq", "depth", depthName(depth), "jobs", jobs, "nodes", nodes)
	o, err := e.runComfyq(ctx, comfyqRun{workload: w, jobs: jobs, nodes: nodes, depth: depth, latency: latency, sampleHeap: true})
	if err != nil {
		return nil, err
	}
	cq := e.comfyqResult(ScenarioBaseline, "comfyq depth="+depthName(depth), w, latency, nodes, depth, o)
	naive.OfCeiling = ratio(naive.JobsPerS, ceil.JobsPerS)
	cq.OfCeiling = ratio(cq.JobsPerS, ceil.JobsPerS)
	cq.check(fmt.Sprintf(">=%.2f of ceiling, > naive", ceilingTarget), cq.OfCeiling >= ceilingTarget && cq.JobsPerS > naive.JobsPerS)
	out := []Result{naive, ceil, cq}

	// Memory for large outputs: one job each, the same measurement for both.
	large := Workload{OutputSize: e.cfg.BaselineLargeOutput}
	e.log.Info("run", "client", "naive", "output_bytes", large.OutputSize)
	nl, err := e.naiveResult(ctx, ScenarioBaseline, large, 0, 1, 1)
	if err != nil {
		return out, err
	}
	nl.Name = "naive, large output"
	out = append(out, nl)
	e.log.Info("run", "client", "comfyq", "output_bytes", large.OutputSize)
	lo, err := e.runComfyq(ctx, comfyqRun{workload: large, jobs: 1, nodes: 1, depth: depth, sampleHeap: true})
	if err != nil {
		return out, err
	}
	cl := e.comfyqResult(ScenarioBaseline, "comfyq, large output", large, 0, 1, depth, lo)
	out = append(out, cl)
	return out, nil
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return round(a/b, 3)
}

func (e *env) comfyqResult(scenario, name string, w Workload, latency time.Duration, nodes, depth int, o *comfyqOutcome) Result {
	r := Result{Scenario: scenario, Name: name, Client: "comfyq", Nodes: nodes, Depth: depth,
		JobTimeMS: ms(w.JobTime), OutputBytes: w.OutputSize, StorageLatencyMS: ms(latency), Storage: o.storeName}
	r.fill(&o.tl, o.busy)
	r.DepthReached = o.depths
	o.cpu.perJob(&r, r.Jobs)
	switch {
	case o.procPeak > 0:
		r.MemoryBytes, r.MemoryMethod = o.procPeak, "worker_vmhwm"
	case o.heapPeak > 0:
		r.MemoryBytes, r.MemoryMethod = o.heapPeak, "process_heap"
	}
	return r
}

// directResult runs the direct client: the nodes' ceiling.
func (e *env) directResult(ctx context.Context, scenario string, w Workload, jobs, nodes int) (Result, error) {
	ns, err := e.startNodes(nodes, w)
	if err != nil {
		return Result{}, err
	}
	defer closeNodes(ns)
	parts := make([][]sample, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	cpuStart := readCPU(ctx, e.rdb, 0)
	for k := range ns {
		first, count := split(jobs, nodes, k)
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[k], errs[k] = runDirect(ctx, ns[k], k, w, first, count)
		}()
	}
	wg.Wait()
	cpu := readCPU(ctx, e.rdb, 0).since(cpuStart)
	var tl timeline
	for k := range ns {
		if errs[k] != nil {
			return Result{}, errs[k]
		}
		tl.samples = append(tl.samples, parts[k]...)
	}
	if err := fillExecutions(ctx, ns, tl.samples); err != nil {
		return Result{}, err
	}
	r := Result{Scenario: scenario, Name: "direct (node ceiling)", Client: "direct", Nodes: nodes,
		JobTimeMS: ms(w.JobTime), OutputBytes: w.OutputSize}
	r.fill(&tl, busyFraction(ns))
	cpu.perJob(&r, r.Jobs)
	return r, nil
}

// naiveResult runs one naive client per node, each taking its share of the jobs in
// turn, and measures this process's heap meanwhile.
func (e *env) naiveResult(ctx context.Context, scenario string, w Workload, latency time.Duration, jobs, nodes int) (Result, error) {
	ns, err := e.startNodes(nodes, w)
	if err != nil {
		return Result{}, err
	}
	defer closeNodes(ns)
	store, plain := e.mainStore(latency)
	parts := make([][]sample, nodes)
	errs := make([]error, nodes)
	var saved []storage.Object
	var mu sync.Mutex
	heap := startHeapSampler(10 * time.Millisecond)
	cpuStart := readCPU(ctx, e.rdb, 0)
	var wg sync.WaitGroup
	for k := range ns {
		first, count := split(jobs, nodes, k)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &NaiveClient{BaseURL: ns[k].url, Store: store, KeyPrefix: "bench-naive"}
			for i := first; i < first+count; i++ {
				res, err := c.Run(ctx, w.prompt(i))
				if err != nil {
					errs[k] = err
					return
				}
				parts[k] = append(parts[k], sample{node: k, id: res.PromptID, created: res.Started, finished: res.Finished, ok: res.Succeeded})
				mu.Lock()
				saved = append(saved, res.Outputs...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	cpu := readCPU(ctx, e.rdb, 0).since(cpuStart)
	peak := heap.Stop()
	for _, o := range saved {
		_ = plain.Delete(ctx, o.Key)
	}
	var tl timeline
	for k := range ns {
		if errs[k] != nil {
			return Result{}, errs[k]
		}
		tl.samples = append(tl.samples, parts[k]...)
	}
	if err := fillExecutions(ctx, ns, tl.samples); err != nil {
		return Result{}, err
	}
	r := Result{Scenario: scenario, Name: "naive sequential client", Client: "naive", Nodes: nodes,
		JobTimeMS: ms(w.JobTime), OutputBytes: w.OutputSize, StorageLatencyMS: ms(latency), Storage: plain.String(),
		MemoryBytes: peak, MemoryMethod: "process_heap"}
	r.fill(&tl, busyFraction(ns))
	cpu.perJob(&r, r.Jobs)
	return r, nil
}

// split gives node k of n its share of jobs: the first job index and the count.
func split(jobs, n, k int) (first, count int) {
	first = k * jobs / n
	return first, (k+1)*jobs/n - first
}
