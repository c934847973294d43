package worker_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/worker"
)

// TestEveryVersion runs the paths that differ between versions (locating and
// cancelling a prompt, a node restart) and a plain end-to-end job against each
// simulated ComfyUI version in every run. The rest of the suite runs against the run's
// version (simtest.Version: COMFYQ_TEST_COMFYUI_VERSION, default the newest);
// scripts/test.sh runs it on both.
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
				require.Equal(t, b.view(t, "test_00001_.png", "", "output"), b.output(t, j.Outputs[0]))
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

// TestCustomNodeOutputShapes: the output shapes of custom nodes are collected the same
// way on both versions, whether the node reports them raw (/history) or normalised
// (0.38's /api/jobs/{id}): VideoHelperSuite's gifs with a format, an animated flag,
// a 3D file given as a bare string, text; each file record says its type.
func TestCustomNodeOutputShapes(t *testing.T) {
	t.Parallel()
	for _, v := range comfysim.Versions() {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{sim: comfysim.Options{ComfyUIVersion: v}, worker: func(c *worker.Config) { c.UploadPreviews = true }})
			for name, data := range map[string]string{"clip.mp4": "mp4 bytes", "anim.webp": "RIFFxxxxWEBP", "mesh.glb": "glTF"} {
				require.NoError(t, b.sim.WriteOutputFile("", name, []byte(data)))
			}
			require.NoError(t, b.sim.SetNodeUI("SaveImage", map[string]any{
				"gifs":     []any{map[string]any{"filename": "clip.mp4", "subfolder": "", "type": "output", "format": "video/h264-mp4", "frame_rate": 8}},
				"images":   []any{map[string]any{"filename": "anim.webp", "subfolder": "", "type": "output"}},
				"animated": []any{true},
				"result":   []any{"mesh.glb", map[string]any{"camera": 1}},
				"text":     []any{"hello"},
			}))
			wf := `{
			 "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
			 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "custom"}},
			 "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
			}`
			j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(wf)}).ID)
			require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
			byName := map[string]job.Output{}
			for _, o := range j.Outputs {
				byName[o.Filename+o.Text] = o
			}
			require.Equal(t, job.KindText, byName["hello"].Kind)
			require.Equal(t, "video/h264-mp4", byName["clip.mp4"].Format)
			require.Equal(t, job.KindVideo, byName["clip.mp4"].Kind)
			require.True(t, byName["anim.webp"].Animated)
			require.Equal(t, "output", byName["mesh.glb"].Type, "a 3D file given as a string is an output file")
			require.Equal(t, []byte("glTF"), b.output(t, byName["mesh.glb"]))
			var temp int
			for _, o := range j.Outputs {
				if o.Type == "temp" {
					temp++
					require.Equal(t, "3", o.NodeID)
				}
			}
			require.Equal(t, 1, temp, "the PreviewImage file is recorded as temp")
		})
	}
}

// TestInputsNamedByContent: ComfyUI cannot delete inputs, so the worker names them
// after their content; jobs sharing an input leave one file on the node.
func TestInputsNamedByContent(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	first := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)}).ID)
	require.Equal(t, job.StatusSucceeded, first.Status)
	wf := `{"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
	 "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
	 "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "in"}}}`
	for range 3 {
		j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(wf),
			Images: map[string]job.ImageSource{"1.inputs.image": {Key: first.Outputs[0].Key}}}).ID)
		require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
	}
	uploaded, err := filepath.Glob(filepath.Join(b.sim.Dir(), "input", "comfyq-*"))
	require.NoError(t, err)
	require.Len(t, uploaded, 1, "three jobs, one input file")
	sum := sha256.Sum256(b.output(t, first.Outputs[0]))
	require.Equal(t, "comfyq-"+hex.EncodeToString(sum[:])[:32]+".png", filepath.Base(uploaded[0]))
}

// TestNodeCapabilitiesMetric: the worker detects each node's version and jobs API at
// attach and exports them as comfyq_node_info.
func TestNodeCapabilitiesMetric(t *testing.T) {
	t.Parallel()
	for _, v := range comfysim.Versions() {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{noWorker: true, sim: comfysim.Options{ComfyUIVersion: v}})
			name := "caps-" + v
			b.stop = startWorker(t, b, func(c *worker.Config) { c.Nodes[0].Name = name })
			jobsAPI := strconv.FormatBool(v != comfysim.Version0364)
			reg := prometheus.NewRegistry()
			require.NoError(t, reg.Register(metrics.NodeInfo))
			require.Eventually(t, func() bool {
				families, err := reg.Gather()
				if err != nil {
					return false
				}
				for _, f := range families {
					for _, m := range f.GetMetric() {
						labels := map[string]string{}
						for _, l := range m.GetLabel() {
							labels[l.GetName()] = l.GetValue()
						}
						if labels["node"] == name {
							return labels["comfyui_version"] == v && labels["jobs_api"] == jobsAPI && m.GetGauge().GetValue() == 1
						}
					}
				}
				return false
			}, 10*time.Second, 10*time.Millisecond)
			j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)}).ID)
			require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
		})
	}
}
