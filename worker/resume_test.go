package worker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/worker"
)

// A worker process that resumes a prompt queued by an earlier process on the same node
// gets that prompt's events (ComfyUI sends them to the socket of the client id that
// queued it): its record shows sampler steps again, not only what polling sees.
func TestResumedPromptEventsReachTheNewProcess(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noWorker: true, sim: comfysim.Options{StepDelay: 30 * time.Millisecond}})
	cfg := worker.Config{
		Redis: b.rdb, Storage: b.store,
		Nodes:          []worker.NodeConfig{{URL: b.simURL, Name: "sim"}},
		HealthInterval: 100 * time.Millisecond, StallTimeout: 2 * time.Second,
		RetryBackoff: 100 * time.Millisecond, Logger: testLogger(t),
	}
	first, err := worker.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	force := make(chan struct{})
	stopped := make(chan error, 1)
	go func() { stopped <- first.Run(ctx, force) }()

	j := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(400, "3"))})
	eventually(t, 60*time.Second, func() (bool, string) {
		cur, err := b.producer.Get(b.ctx, j.ID)
		return err == nil && cur.Status == job.StatusRunning && cur.Progress != nil && cur.Progress.Step > 0, describe(cur)
	})
	// The first process goes away without touching the prompt on the node.
	cancel()
	close(force)
	require.NoError(t, <-stopped)
	b.waitStatus(t, j.ID, job.StatusQueued)

	startWorker(t, b, nil)
	resumedStep := 0
	eventually(t, 60*time.Second, func() (bool, string) {
		cur, err := b.producer.Get(b.ctx, j.ID)
		if err != nil {
			return false, err.Error()
		}
		if cur.Status == job.StatusRunning && cur.Progress != nil {
			resumedStep = max(resumedStep, cur.Progress.Step)
		}
		return cur.Status.Terminal(), describe(cur)
	})
	final := b.wait(t, j.ID)
	require.Equal(t, job.StatusSucceeded, final.Status, describe(final))
	require.Equal(t, 1, b.sim.Executions(j.ID), "the prompt ran once")
	require.Positive(t, resumedStep, "the resuming process got the prompt's progress events")
}

// A cancel of a job whose earlier attempt left its prompt running on the node (the
// worker went away) stops that prompt too, and records canceled once the node confirms.
func TestCancelStopsThePromptOfAnEarlierAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noWorker: true, sim: comfysim.Options{StepDelay: 30 * time.Millisecond}})
	cfg := worker.Config{
		Redis: b.rdb, Storage: b.store,
		Nodes:          []worker.NodeConfig{{URL: b.simURL, Name: "sim"}},
		HealthInterval: 100 * time.Millisecond, StallTimeout: 2 * time.Second,
		RetryBackoff: 100 * time.Millisecond, Logger: testLogger(t),
	}
	first, err := worker.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	force := make(chan struct{})
	stopped := make(chan error, 1)
	go func() { stopped <- first.Run(ctx, force) }()

	j := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(2000, "4"))})
	b.waitStatus(t, j.ID, job.StatusRunning)
	cancel()
	close(force)
	require.NoError(t, <-stopped)
	require.Equal(t, 1, b.nodeQueueLen(t), "the prompt still runs on the node")

	asked, err := b.producer.Cancel(b.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusCanceling, asked.Status)
	startWorker(t, b, nil)
	final := b.wait(t, j.ID)
	require.Equal(t, job.StatusCanceled, final.Status, describe(final))
	require.Equal(t, 0, b.nodeQueueLen(t), "the earlier attempt's prompt was stopped on the node")
	require.LessOrEqual(t, b.sim.Executions(j.ID), 1)
}
