// Package worker runs comfyq jobs on ComfyUI nodes.
//
// A Worker attaches to one or more ComfyUI nodes. For each node it runs an asynq server
// whose concurrency is the pipelining depth: while job k executes on the GPU, job k+1 is
// already in the node's own queue, so the node goes straight from one to the next while
// job k's outputs upload.
//
// # One job
//
// The handler reads the task payload, looks for the prompt on the node first (the job id
// is the prompt id of every attempt, so a restarted worker re-attaches to a prompt that
// is queued or running, collects one that finished, and submits only when the node does
// not know it), uploads input files, submits the prompt, follows it over the WebSocket
// (with /history as the truth and a stall watchdog), streams every output from /view into
// storage and writes the job record as it goes: queued → running → uploading → succeeded,
// or failed / canceled with a stable error code.
//
// # Faults
//
// A node that stops answering is taken out of rotation: its asynq server is shut down and
// its tasks go back to the queue without counting as failures; it comes back by itself
// when /system_stats answers again. Validation errors are never retried; execution errors
// are retried up to the job's max attempts; upload failures are retried without running
// the prompt again while the outputs are still on the node. SIGTERM drains: jobs on the
// GPU finish within the grace period, the rest are handed back.
package worker
