package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/comfyq/comfyq/cmd/comfyq/internal/bench"
	"github.com/comfyq/comfyq/comfy/comfysim"
)

func benchCommand(b base) *cli.Command {
	o := &benchOptions{base: b}
	return &cli.Command{
		Name:      "bench",
		Usage:     "benchmark comfyq against simulated ComfyUI nodes",
		ArgsUsage: "[--scenario pipelining|throughput|roundtrips|memory|baseline|recovery|all] [--skip S] [--jobs N] [--nodes K] [--depth D] [--redis URL] [--storage URL] [--json]",
		Description: `Runs benchmark scenarios end to end on this machine: simulated ComfyUI nodes on
loopback ports, Redis (--redis, or a redis-server from PATH started for the run),
storage (--storage, or a temporary directory) with a latency added to each request, a
worker and concurrent producers. Prints a table, or JSON with --json.

Scenarios:
  pipelining  node busy fraction at depth 1, 2 and auto; 200 ms jobs, 100 ms uploads
              (50 jobs)
  throughput  jobs/s and added latency per job for 5 ms jobs on 1 and 4 nodes: the
              nodes' ceiling, the naive sequential client and comfyq (1000 jobs
              per node)
  roundtrips  Redis round trips and bytes per job, producers and worker, by kind
              (200 5 ms jobs on 1 node; the worker in this process)
  memory      the worker process's peak memory while it moves a 1 GiB output
  baseline    the guides' naive sequential client vs direct submission (the node's
              ceiling) vs comfyq: 2 s jobs, 5 MiB outputs, 50 ms storage latency
              (10 jobs), then memory while the naive client and comfyq each move
              one 256 MiB output
  recovery    a worker process killed with SIGKILL (kill -9) while its node executes a
              prompt and holds another: seconds until its jobs end after a restart
              2 s later, and when it stays dead and a worker on another node takes
              them over (2 s jobs; ~2–3 min, most of it waiting until asynq
              hands the killed worker's tasks out again and they are found done)
  all         every scenario in turn (the default; ~5 min), but those --skip names

--jobs, --nodes and --depth replace a scenario's defaults; --time-scale shortens (or
lengthens) every job time and storage latency. Each run uses a queue of its
own in Redis and deletes its outputs afterwards. The memory scenario runs the worker as
a child process of this binary ('comfyq worker') and reads its peak resident memory
from /proc; --in-process measures this process's heap instead.

Examples:

  comfyq bench                          # every number of docs/benchmarks.md
  comfyq bench --skip recovery,memory   # the quicker ones
  comfyq bench --scenario pipelining --time-scale 0.1 --json`,
		Flags: flagList([]cli.Flag{
			stringFlag(&o.Scenario, "scenario", "", bench.ScenarioAll, "scenario: "+strings.Join(bench.Scenarios(), ", ")),
			listFlag(&o.Skip, "skip", "", "scenarios that all leaves out, comma-separated"),
			intFlag(&o.Jobs, "jobs", "", 0, "jobs per run (default: the scenario's)"),
			intFlag(&o.Nodes, "nodes", "", 0, "simulated ComfyUI nodes (default: the scenario's)"),
			stringFlag(&o.DepthFlag, "depth", "", "", "pipelining depth, auto or a number (default: the scenario's; auto, and pipelining runs 1, 2 and auto)"),
			intFlag(&o.Producers, "producers", "", 4, "goroutines enqueueing jobs at once"),
			stringFlag(&o.RedisURL, "redis", "COMFYQ_BENCH_REDIS_URL", "", "Redis URL (default: start redis-server on a free port)"),
			stringFlag(&o.StorageURL, "storage", "COMFYQ_BENCH_STORAGE_URL", "", "storage URL, file:///dir or s3://bucket/prefix?endpoint=… (default: a temporary directory)"),
			int64Flag(&o.LargeOutput, "large-output", "", 1<<30, "bytes of the output the memory scenario moves"),
			int64Flag(&o.BaselineLargeOutput, "baseline-large-output", "", 256<<20, "bytes of the output the baseline scenario moves with the naive client and comfyq to compare memory"),
			stringFlag(&o.ComfyUIVersion, "comfyui-version", "", comfysim.NewestVersion, "the ComfyUI release the simulated nodes speak: "+strings.Join(comfysim.Versions(), " or ")),
			stringFlag(&o.Dir, "dir", "", "", "temporary files: the simulated nodes' folders and the default file store (default: /dev/shm where it exists, else the system's temporary directory)"),
			floatFlag(&o.TimeScale, "time-scale", 1, "multiply the scenarios' job times and storage latencies (e.g. 0.1 for a quick run)"),
			boolFlag(&o.InProcess, "in-process", "", false, "memory scenario: run the worker in this process and report heap, not a worker process's peak RSS"),
			boolFlag(&o.JSON, "json", "", false, "print the results as JSON"),
			stringFlag(&o.CPUProfile, "cpuprofile", "", "", "write a CPU profile of the whole run (this process: producers, simulators and an in-process worker) to this file, and each worker process's to FILE.worker-N, for go tool pprof"),
		}, o.log.flags()),
		Action: action(o, nil),
	}
}

// benchOptions are the flags of comfyq bench.
type benchOptions struct {
	base
	Scenario, RedisURL, StorageURL   string
	Skip                             []string
	CPUProfile, ComfyUIVersion, Dir  string
	DepthFlag                        string
	Jobs, Nodes, Depth, Producers    int
	LargeOutput, BaselineLargeOutput int64
	TimeScale                        float64
	InProcess, JSON                  bool
	log                              logOptions
}

func (o *benchOptions) Validate() error {
	if !slices.Contains(bench.Scenarios(), o.Scenario) {
		return usagef("--scenario %q: want one of %s", o.Scenario, strings.Join(bench.Scenarios(), ", "))
	}
	o.Skip = splitList(o.Skip)
	for _, s := range o.Skip {
		if s == bench.ScenarioAll || !slices.Contains(bench.Scenarios(), s) {
			return usagef("--skip %q: want scenarios of %s", s, strings.Join(bench.Scenarios()[:len(bench.Scenarios())-1], ", "))
		}
	}
	if o.DepthFlag != "" {
		d, err := parseDepth(o.DepthFlag)
		if err != nil {
			return err
		}
		o.Depth = d
		if d == 0 {
			o.Depth = bench.DepthAuto
		}
	}
	if !slices.Contains(comfysim.Versions(), o.ComfyUIVersion) {
		return usagef("--comfyui-version %q: want %s", o.ComfyUIVersion, strings.Join(comfysim.Versions(), " or "))
	}
	if o.Jobs < 0 || o.Nodes < 0 || o.Producers <= 0 || o.LargeOutput <= 0 || o.BaselineLargeOutput <= 0 || o.TimeScale <= 0 {
		return usagef("--jobs and --nodes must not be negative; --producers, --large-output, --baseline-large-output and --time-scale must be positive")
	}
	return o.log.Validate()
}

func (o *benchOptions) Run(ctx context.Context) error {
	log := o.log.logger(o.Err)
	cfg := bench.Config{
		RedisURL: o.RedisURL, StorageURL: o.StorageURL,
		Jobs: o.Jobs, Nodes: o.Nodes, Depth: o.Depth, Producers: o.Producers,
		LargeOutput: o.LargeOutput, BaselineLargeOutput: o.BaselineLargeOutput, TimeScale: o.TimeScale, Logger: log,
		ComfyUIVersion: o.ComfyUIVersion, Dir: o.Dir, WorkerProfile: o.CPUProfile, Skip: o.Skip,
	}
	if !o.InProcess {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this binary to run the worker process (or use --in-process): %w", err)
		}
		cfg.WorkerCommand = []string{exe, "worker"}
	} else if o.Scenario == bench.ScenarioAll && !slices.Contains(cfg.Skip, bench.ScenarioRecovery) {
		log.Info("--in-process: skipping the recovery scenario, which kills a worker process")
		cfg.Skip = append(cfg.Skip, bench.ScenarioRecovery)
	}
	// This process hosts the simulated nodes (and the naive and direct clients): their
	// garbage, which on the GPU machines they stand for would be collected elsewhere,
	// is collected less often here, so that less of the machine's CPU goes to the
	// harness. A worker process started for a run keeps Go's default.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if o.CPUProfile != "" {
		stop, err := startCPUProfile(o.CPUProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	results, err := bench.Run(ctx, cfg, o.Scenario)
	if len(results) > 0 {
		if o.JSON {
			if perr := printJSON(o.Out, results); perr != nil && err == nil {
				err = perr
			}
		} else if werr := bench.WriteTable(o.Out, results); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Met != nil && !*r.Met {
			log.Warn("target missed", "scenario", r.Scenario, "run", r.Name, "target", r.Target)
		}
	}
	return nil
}
