package simtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/job"
)

// RequireTimes requires of a job that ended after its prompt ran on a node (sim, or
// another when sim is nil) the record of that run: started_at, and timings that are
// true. queued_ms runs from created_at to started_at and total_ms from created_at to
// finished_at; the execution lies inside the job, and uploads (which may overlap it:
// outputs are copied as their nodes finish) too. For a job that succeeded on sim,
// execution_ms is the node's own span of the prompt's last execution (the simulator's
// clock, which ComfyUI's messages give to the millisecond), whichever worker saw it.
func RequireTimes(t testing.TB, j *job.Job, sim *comfysim.Server) {
	t.Helper()
	desc, _ := json.Marshal(j)
	require.NotNil(t, j.StartedAt, "job %s ran but has no started_at: %s", j.ID, desc)
	require.NotNil(t, j.FinishedAt, "job %s: %s", j.ID, desc)
	tm := j.Timings
	require.NotNil(t, tm, "job %s ran but has no timings: %s", j.ID, desc)
	ms := func(from, to time.Time) int64 { return to.Sub(from).Milliseconds() }
	require.InDelta(t, ms(j.CreatedAt, *j.StartedAt), tm.QueuedMS, 1, "job %s: queued_ms: %s", j.ID, desc)
	require.InDelta(t, ms(j.CreatedAt, *j.FinishedAt), tm.TotalMS, 1, "job %s: total_ms: %s", j.ID, desc)
	require.LessOrEqual(t, tm.QueuedMS+tm.ExecutionMS, tm.TotalMS+2,
		"job %s: started and executed for longer than the job took: %s", j.ID, desc)
	require.True(t, tm.UploadMS >= 0 && tm.UploadMS <= tm.TotalMS, "job %s: upload_ms: %s", j.ID, desc)
	if j.Status != job.StatusSucceeded || sim == nil {
		return
	}
	span, ok := sim.ExecutionSpan(j.ID)
	require.True(t, ok, "job %s succeeded but its node saw no execution end", j.ID)
	require.InDelta(t, span.End.Sub(span.Start).Milliseconds(), tm.ExecutionMS, 1,
		"job %s: execution_ms is the node's own: %s", j.ID, desc)
}
