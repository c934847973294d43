package job_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
)

func TestStateMachine(t *testing.T) {
	t.Parallel()
	for _, s := range job.Statuses() {
		for _, next := range job.Statuses() {
			settled, ok := s.Settle(next)
			switch {
			case s.Terminal():
				require.False(t, ok, "%s is final (to %s)", s, next)
			case s == job.StatusCanceling && !next.Terminal():
				require.True(t, ok)
				require.Equal(t, job.StatusCanceling, settled, "a canceling job stays canceling (write of %s)", next)
			default:
				require.True(t, ok, "%s → %s", s, next)
				require.Equal(t, next, settled)
			}
		}
		_, ok := s.Settle("bogus")
		require.False(t, ok, "not a state")
	}
	require.Equal(t, []job.Status{job.StatusQueued, job.StatusRunning, job.StatusUploading}, job.From(job.StatusRunning))
	require.Equal(t, []job.Status{job.StatusQueued, job.StatusRunning, job.StatusUploading, job.StatusCanceling}, job.From(job.StatusCanceled))
	require.Empty(t, job.From("bogus"))
}
