package worker_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/job"
)

// testComfyUIVersion is the ComfyUI version the worker suite's simulator speaks unless a
// test picks one: COMFYQ_TEST_COMFYUI_VERSION, default the newest. The whole suite runs
// against 0.3.64 with COMFYQ_TEST_COMFYUI_VERSION=0.3.64; TestEveryVersion runs a
// representative subset against every version in each run.
func testComfyUIVersion() string {
	if v := os.Getenv("COMFYQ_TEST_COMFYUI_VERSION"); v != "" {
		return v
	}
	return comfysim.NewestVersion
}

// TestEveryVersion runs the paths that differ between versions (locating and
// cancelling a prompt, a node restart) and a plain end-to-end job against each
// simulated ComfyUI version.
func TestEveryVersion(t *testing.T) {
	t.Parallel()
	for _, v := range comfysim.Versions() {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			t.Run("EndToEnd", func(t *testing.T) {
				t.Parallel()
				b := setup(t, setupOpts{sim: comfysim.Options{ComfyUIVersion: v}})
				j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)}).ID)
				require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
				require.Len(t, j.Outputs, 1)
				require.Equal(t, b.view(t, "test_00001_.png", "", "output"), b.object(t, j.Outputs[0].Key))
			})
			t.Run("CancelWhileRunning", func(t *testing.T) {
				t.Parallel()
				b := setup(t, setupOpts{sim: comfysim.Options{ComfyUIVersion: v, StepDelay: 20 * time.Millisecond}})
				j := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(1000, "1"))})
				b.waitStatus(t, j.ID, job.StatusRunning)
				_, err := b.producer.Cancel(b.ctx, j.ID)
				require.NoError(t, err)
				require.Equal(t, job.StatusCanceled, b.wait(t, j.ID).Status)
				require.Eventually(t, func() bool { return b.sim.Stats().PromptsInterrupted == 1 }, 10*time.Second, 10*time.Millisecond,
					"the prompt was interrupted on the node")
			})
			t.Run("NodeCrashMidRun", func(t *testing.T) {
				t.Parallel()
				b := setup(t, setupOpts{sim: comfysim.Options{ComfyUIVersion: v, StepDelay: 20 * time.Millisecond}})
				id := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(50, "13"))}).ID
				b.waitStatus(t, id, job.StatusRunning)
				b.sim.Crash()
				j := b.wait(t, id)
				require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
				require.Equal(t, 2, b.sim.Executions(id), "submitted again only because the node lost it")
			})
			t.Run("ExecutionError", func(t *testing.T) {
				t.Parallel()
				b := setup(t, setupOpts{sim: comfysim.Options{ComfyUIVersion: v}})
				b.sim.FailNode("SaveImage", "RuntimeError", "disk full")
				j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow), MaxAttempts: 1}).ID)
				require.Equal(t, job.StatusFailed, j.Status)
				require.Contains(t, j.Error.Message, "disk full")
			})
		})
	}
}
