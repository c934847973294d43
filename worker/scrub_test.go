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

// TestOutputFilenameSanitised: an output's filename is reported as stored: no NUL,
// no bidi control that would disguise its extension, no path. (A NUL never reaches
// a file on the node; the API's test gives a record holding one.)
func TestOutputFilenameSanitised(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	wf := `{
	 "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
	 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "report\u202egnp.exe"}}
	}`
	j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(wf)}).ID)
	require.Equal(t, job.StatusSucceeded, j.Status, describe(j))
	require.Len(t, j.Outputs, 1)
	name := j.Outputs[0].Filename
	t.Logf("reported filename %q, key %q", name, j.Outputs[0].Key)
	require.NotContains(t, name, "\u202e")
	require.NotContains(t, name, "/")
	require.NotContains(t, name, `\`)
	require.True(t, strings.HasSuffix(j.Outputs[0].Key, "/"+name), "the filename is the key's last segment")
}
