package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/flight"
	"github.com/comfyq/comfyq/job"
)

// A task whose job another live worker process owns (a taker of a dead worker's job)
// is handed back without touching the job or the node, without counting a failure.
// Once that owner's heartbeat is gone, this worker takes the job over and runs it,
// once.
func TestJobOwnedByALiveWorkerIsLeftToIt(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noWorker: true})
	j := b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)})

	other := flight.New(b.rdb, 3*time.Second)
	beat := func() { require.NoError(t, other.Beat(b.ctx, flight.Heartbeat{Process: "other"})) }
	beat()
	holder, err := other.Own(b.ctx, j.ID)
	require.NoError(t, err)
	require.Empty(t, holder)
	ctx, stopBeating := context.WithCancel(b.ctx)
	beating := make(chan struct{})
	go func() {
		defer close(beating)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_ = other.Beat(b.ctx, flight.Heartbeat{Process: "other"})
			}
		}
	}()

	startWorker(t, b, nil)
	insp := asynq.NewInspectorFromRedisClient(b.rdb)
	eventually(t, 30*time.Second, func() (bool, string) {
		info, infoErr := insp.GetTaskInfo("default", j.ID)
		if infoErr != nil {
			return false, infoErr.Error()
		}
		return info.State == asynq.TaskStateRetry && strings.Contains(info.LastErr, "handled by another worker"),
			info.State.String() + " " + info.LastErr
	})
	cur, err := b.producer.Get(b.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusQueued, cur.Status, describe(cur))
	require.Empty(t, cur.Node, "the worker did not start the job")
	require.Zero(t, b.sim.Executions(j.ID))
	info, err := insp.GetTaskInfo("default", j.ID)
	require.NoError(t, err)
	require.Zero(t, info.Retried, "handing back is not a failure")

	// The owner dies: its heartbeat expires, and the worker runs the job.
	stopBeating()
	<-beating
	final := b.wait(t, j.ID)
	require.Equal(t, job.StatusSucceeded, final.Status, describe(final))
	require.Equal(t, 1, b.sim.Executions(j.ID))
	require.Equal(t, 1, final.Attempt)
}
