package worker_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
)

// TestJobErrorsScrubbed: the error a submitter reads names no directory of the node
// and not its address; the worker's log keeps the original.
func TestJobErrorsScrubbed(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.sim.FailNode("SaveImage", "FileNotFoundError", "[Errno 2] No such file or directory: '/home/gpu/ComfyUI/output/x.png' (node "+b.simURL+")")
	j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow), MaxAttempts: 1}).ID)
	require.Equal(t, job.StatusFailed, j.Status)
	require.Equal(t, job.CodeExecutionError, j.Error.Code)
	require.Contains(t, j.Error.Message, "No such file or directory: 'x.png'")
	require.NotContains(t, j.Error.Message, "/home/gpu")
	require.NotContains(t, j.Error.Message, strings.TrimPrefix(b.simURL, "http://"))
	require.NotEmpty(t, j.Error.Traceback)
	for _, l := range j.Error.Traceback {
		require.NotContains(t, l, "/ComfyUI/", "traceback line %q", l)
	}
	require.Contains(t, strings.Join(j.Error.Traceback, ""), `File "execution.py"`)
}
