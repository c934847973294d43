package worker_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/worker"
)

// hookLog records the webhook events a worker emits.
type hookLog struct {
	mu  sync.Mutex
	got map[string][]string // job id → events in order
}

func (e *hookLog) Notify(_ context.Context, event string, j *job.Job) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.got == nil {
		e.got = map[string][]string{}
	}
	e.got[j.ID] = append(e.got[j.ID], event)
}

func (e *hookLog) of(id string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.got[id]...)
}

// nodeExecutionMS is what the node says the prompt took: execution_success minus
// execution_start, from its history.
func nodeExecutionMS(t *testing.T, b *bundle, id string) int64 {
	t.Helper()
	c, err := comfy.New(comfy.Config{BaseURL: b.simURL})
	require.NoError(t, err)
	defer c.Close()
	h, err := c.History(b.ctx, id)
	require.NoError(t, err)
	var start, end time.Time
	for _, m := range h.Status.Messages {
		switch m.Type {
		case "execution_start":
			start = m.Timestamp()
		case "execution_success":
			end = m.Timestamp()
		}
	}
	require.False(t, start.IsZero() || end.IsZero(), "history has both timestamps")
	return end.Sub(start).Milliseconds()
}

// A prompt that is already in /history when the worker first looks (it ran while no
// worker was attached: a restart) still records running, started_at and job.started,
// and its execution_ms is the node's own.
func TestPromptFoundFinishedStillRecordsRunning(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noWorker: true})
	j := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(10, "11"))})

	// An earlier worker process queued the prompt under the job's id, then went away.
	// Like every worker, it recorded the node in the job's record first.
	st := jobstore.New(b.rdb, jobstore.Config{})
	defer st.Close()
	_, err := st.Update(b.ctx, j.ID, func(j *job.Job) error {
		j.Attempt, j.Node, j.NodeName = 1, b.simURL, "sim"
		return nil
	})
	require.NoError(t, err)
	c, err := comfy.New(comfy.Config{BaseURL: b.simURL})
	require.NoError(t, err)
	defer c.Close()
	wf, err := comfy.ParseWorkflow(json.RawMessage(slowWorkflow(10, "11")))
	require.NoError(t, err)
	_, err = c.QueuePrompt(b.ctx, comfy.PromptRequest{Prompt: wf, PromptID: j.ID})
	require.NoError(t, err)
	eventually(t, 30*time.Second, func() (bool, string) {
		loc, _, locErr := c.Locate(b.ctx, j.ID)
		return locErr == nil && loc == comfy.PromptDone, "not finished yet"
	})

	events, err := b.producer.Watch(b.ctx, j.ID)
	require.NoError(t, err)
	var seen []job.Status
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ev := range events {
			if n := len(seen); ev.Job != nil && (n == 0 || seen[n-1] != ev.Job.Status) {
				seen = append(seen, ev.Job.Status)
			}
		}
	}()
	hooks := &hookLog{}
	startWorker(t, b, func(cfg *worker.Config) { cfg.Notifier = hooks })
	final := b.wait(t, j.ID)
	<-watched
	require.Equal(t, job.StatusSucceeded, final.Status, describe(final))
	require.Equal(t, 1, b.sim.Executions(j.ID))
	require.Contains(t, seen, job.StatusRunning, "statuses %v", seen)
	require.NotNil(t, final.StartedAt)
	require.Equal(t, nodeExecutionMS(t, b, j.ID), final.Timings.ExecutionMS, "execution_ms is the node's")
	// The worker notifies after it recorded the end: the waiter may see the end first.
	require.Eventually(t, func() bool { return len(hooks.of(j.ID)) == 2 }, 10*time.Second, 10*time.Millisecond,
		"events %v", hooks.of(j.ID))
	require.Equal(t, []string{job.WebhookStarted, job.WebhookSucceeded}, hooks.of(j.ID))
}

// A job followed live takes execution_ms from the node's timestamps too.
func TestExecutionMSIsTheNodes(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)}).ID)
	require.Equal(t, job.StatusSucceeded, j.Status)
	require.NotNil(t, j.StartedAt)
	require.Equal(t, nodeExecutionMS(t, b, j.ID), j.Timings.ExecutionMS)
}
