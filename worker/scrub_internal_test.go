package worker

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
)

func TestScrubError(t *testing.T) {
	t.Parallel()
	s := scrubber{nodeURL: "http://10.0.0.5:8188", nodeName: "gpu-1"}
	for in, want := range map[string]string{
		`[Errno 2] No such file or directory: '/home/gpu/ComfyUI/models/checkpoints/sd15.safetensors'`: `[Errno 2] No such file or directory: 'sd15.safetensors'`,
		`  File "/opt/ComfyUI/execution.py", line 323, in execute`:                                     `  File "execution.py", line 323, in execute`,
		`  File "C:\ComfyUI\custom_nodes\x\nodes.py", line 12, in run`:                                 `  File "nodes.py", line 12, in run`,
		`cannot write /var/lib/comfyui/output/`:                                                        `cannot write output`,
		`Post "http://10.0.0.5:8188/prompt": dial tcp 10.0.0.5:8188: connect: connection refused`:      `Post "node gpu-1/prompt": dial tcp node gpu-1: connect: connection refused`,
		// Left alone: relative paths, storage keys, single-segment routes, other URLs, ratios.
		`storage key "jobs/0193/x.png": storage: object not found`:               `storage key "jobs/0193/x.png": storage: object not found`,
		`GET /view?filename=x.png: 404`:                                          `GET /view?filename=x.png: 404`,
		`GET https://cdn.example.com/a/b/c.png: 404 Not Found`:                   `GET https://cdn.example.com/a/b/c.png: 404 Not Found`,
		`width 1/2/3 of the image`:                                               `width 1/2/3 of the image`,
		`Value not in list: ckpt_name: 'x.safetensors' not in ['a.safetensors']`: `Value not in list: ckpt_name: 'x.safetensors' not in ['a.safetensors']`,
	} {
		require.Equal(t, want, s.text(in), in)
	}

	nodeErrors := json.RawMessage(`{"4": {"errors": [{"type": "custom", "message": "File /srv/comfy/models/vae/v.pt is broken", "details": "", "extra_info": {"seed": 18446744073709551615}}], "class_type": "VAELoader"}}`)
	e := &job.Error{Code: job.CodeExecutionError, Message: "OSError: /srv/comfy/models/vae/v.pt: bad header",
		Traceback: []string{`  File "/srv/comfy/nodes.py", line 1, in load` + "\n"}, NodeErrors: nodeErrors}
	got := s.scrubError(e)
	require.Equal(t, "OSError: v.pt: bad header", got.Message)
	require.Equal(t, `  File "nodes.py", line 1, in load`+"\n", got.Traceback[0])
	require.NotContains(t, string(got.NodeErrors), "/srv/comfy")
	require.Contains(t, string(got.NodeErrors), "File v.pt is broken")
	require.Contains(t, string(got.NodeErrors), "18446744073709551615", "numbers stay exact")
	require.Contains(t, e.Message, "/srv/comfy", "the original is left for the log")
	require.Nil(t, s.scrubError(nil))
}
