package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/comfyq/comfyq/cmd/comfyq/internal/bench"
)

func init() {
	register(&command{
		name:    "bench",
		summary: "benchmark comfyq against simulated ComfyUI nodes",
		usage:   "[--scenario pipelining|throughput|memory|baseline|all] [--jobs N] [--nodes K] [--depth D] [--redis URL] [--storage URL] [--json]",
		help: `Runs benchmark scenarios end to end on this machine: simulated ComfyUI nodes on
loopback ports, Redis (--redis, or a redis-server from PATH started for the run),
storage (--storage, or a temporary directory) with a latency added to each request, a
worker and concurrent producers. Prints a table, or JSON with --json.

Scenarios:
  pipelining  node busy fraction at depth 1 and 2; 200 ms jobs, 100 ms uploads (50 jobs)
  throughput  jobs/s and overhead per job for tiny jobs on 1 and 4 nodes (200 jobs)
  memory      the worker process's peak memory while it moves a 1 GiB output
  baseline    the guides' naive sequential client vs direct submission (the node's
              ceiling) vs comfyq: 2 s jobs, 5 MiB outputs, 50 ms storage latency
              (10 jobs), then memory while the naive client and comfyq each move
              one 256 MiB output
  all         every scenario in turn (the default)

--jobs, --nodes and --depth replace a scenario's defaults; --time-scale shortens (or
lengthens) every job time and storage latency. Each run uses a queue of its
own in Redis and deletes its outputs afterwards. The memory scenario runs the worker as
a child process of this binary ('comfyq worker') and reads its peak resident memory
from /proc; --in-process measures this process's heap instead.`,
		flags: benchFlags,
	})
}

func benchFlags(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	scenario := fs.String("scenario", bench.ScenarioAll, "scenario: "+strings.Join(bench.Scenarios(), ", "))
	jobs := fs.Int("jobs", 0, "jobs per run (default: the scenario's)")
	nodes := fs.Int("nodes", 0, "simulated ComfyUI nodes (default: the scenario's)")
	depth := fs.Int("depth", 0, "pipelining depth (default: the scenario's; pipelining runs 1 and 2)")
	producers := fs.Int("producers", 4, "goroutines enqueueing jobs at once")
	redisURL := envString(fs, "redis", "COMFYQ_BENCH_REDIS_URL", "", "Redis URL (default: start redis-server on a free port)")
	storageURL := envString(fs, "storage", "COMFYQ_BENCH_STORAGE_URL", "", "storage URL, file:///dir or s3://bucket/prefix?endpoint=… (default: a temporary directory)")
	large := fs.Int64("large-output", 1<<30, "bytes of the output the memory scenario moves")
	baselineLarge := fs.Int64("baseline-large-output", 256<<20, "bytes of the output the baseline scenario moves with the naive client and comfyq to compare memory")
	timeScale := fs.Float64("time-scale", 1, "multiply the scenarios' job times and storage latencies (e.g. 0.1 for a quick run)")
	inProcess := fs.Bool("in-process", false, "memory scenario: run the worker in this process and report heap, not a worker process's peak RSS")
	jsonOut := fs.Bool("json", false, "print the results as JSON")
	logger := logFlags(fs)
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected arguments %q", args)
		}
		if !slices.Contains(bench.Scenarios(), *scenario) {
			return usagef("--scenario %q: want one of %s", *scenario, strings.Join(bench.Scenarios(), ", "))
		}
		if *jobs < 0 || *nodes < 0 || *depth < 0 || *producers <= 0 || *large <= 0 || *baselineLarge <= 0 || *timeScale <= 0 {
			return usagef("--jobs, --nodes and --depth must not be negative; --producers, --large-output, --baseline-large-output and --time-scale must be positive")
		}
		log := logger()
		cfg := bench.Config{
			RedisURL: *redisURL, StorageURL: *storageURL,
			Jobs: *jobs, Nodes: *nodes, Depth: *depth, Producers: *producers,
			LargeOutput: *large, BaselineLargeOutput: *baselineLarge, TimeScale: *timeScale, Logger: log,
		}
		if !*inProcess {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find this binary to run the worker process (or use --in-process): %w", err)
			}
			cfg.WorkerCommand = []string{exe, "worker"}
		}
		results, err := bench.Run(ctx, cfg, *scenario)
		if len(results) > 0 {
			if *jsonOut {
				if perr := printJSON(stdout(ctx), results); perr != nil && err == nil {
					err = perr
				}
			} else if werr := bench.WriteTable(stdout(ctx), results); werr != nil && err == nil {
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
}
