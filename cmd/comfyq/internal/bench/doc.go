// Package bench runs comfyq's benchmark scenarios end to end in one process: simulated
// ComfyUI nodes (comfysim) on loopback ports, a Redis (given, or a redis-server it
// starts), storage (given, or a temporary file store) with a latency added to each
// request, a worker with a given pipelining depth (automatic unless given) and
// producers that enqueue jobs at once. `comfyq bench` prints its results; docs/benchmarks.md records them.
//
//	results, err := bench.Run(ctx, bench.Config{}, bench.ScenarioPipelining)
//	bench.WriteTable(os.Stdout, results)
//
// # Scenarios
//
//   - pipelining: busy fraction of a node at depth 1, 2 and auto, jobs of 200 ms
//     whose upload takes 100 ms.
//   - throughput: jobs per second and added latency per job for 5 ms jobs on 1 and
//     4 nodes: the nodes' ceiling (measured before and after the others), the naive
//     sequential client and comfyq at the automatic depth, in the same run.
//   - memory: the worker's peak memory while it moves a 1 GiB output to storage.
//   - baseline: the naive sequential client of the ComfyUI-as-API guides
//     (NaiveClient), direct submission over one shared socket with the node's queue
//     kept full (the node's ceiling: the best any client can do) and comfyq, with
//     2 s jobs, 5 MiB outputs and 50 ms per storage request.
//
// # What is measured
//
// Every job is timed from its creation by the client (comfyq: the record's
// created_at; naive: when it starts on the job; direct: its POST /prompt) to its end
// (comfyq: finished_at, written after the outputs are stored; naive: outputs saved
// and socket closed; direct: `executing` null received). Its execution on the node
// comes from the node's /history (execution_start to execution_success, millisecond
// timestamps).
//
//   - jobs/s: succeeded jobs over the time from the first creation to the last end.
//   - overhead per job: end-to-end time minus the job's execution minus the time it
//     waited while its node executed earlier jobs; that is, the time before execution
//     while the node sat idle (dispatch) plus the time after execution (history,
//     download, upload, status writes). For a sequential client this is simply
//     end-to-end minus execution; queueing behind other work is not overhead.
//   - busy fraction: per node, execution time over the span from its first
//     execution's start to its last one's end (comfysim.Stats.BusyFraction),
//     averaged over the nodes.
//   - memory: the peak resident set (VmHWM) of a worker process when
//     Config.WorkerCommand is given, else the peak of this process's in-use heap
//     above its level before the run, sampled every 10 ms.
package bench
