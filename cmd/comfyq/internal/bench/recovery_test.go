package bench

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/testenv"
)

// TestRunRecovery runs the recovery scenario with short jobs, its workers as processes
// of their own, and checks that both rows are complete: the killed worker's jobs all
// succeeded and a recovery time was measured. The times are what `comfyq bench
// --scenario recovery` reports, not checked here.
func TestRunRecovery(t *testing.T) {
	t.Setenv(fakeWorkerEnv, "1")
	cfg := Config{
		RedisURL:      testenv.NewRedis(t),
		TimeScale:     0.5,
		Dir:           t.TempDir(),
		WorkerCommand: []string{os.Args[0], "worker"},
		noLeaseWait:   true,
	}
	results, err := Run(t.Context(), cfg, ScenarioRecovery)
	require.NoError(t, err)
	require.Len(t, results, 2)
	for _, r := range results {
		require.Equal(t, ScenarioRecovery, r.Scenario)
		require.GreaterOrEqual(t, r.Jobs, 2, "%s: jobs in flight at the kill", r.Name)
		require.Equal(t, r.Jobs, r.Succeeded, "%s: every job the killed worker had succeeds", r.Name)
		require.Positive(t, r.RecoveryS, r.Name)
		require.NotNil(t, r.Met, r.Name)
	}
	require.Equal(t, 1, results[0].Nodes)
	require.Equal(t, 2, results[1].Nodes)
}
