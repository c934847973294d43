package comfysim_test

import (
	"bytes"
	"encoding/json"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

// TestEmptyImageSave checks the §10 run message for message, the history
// entry and the PNG.
func TestEmptyImageSave(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ws := dialWS(t, b.base, "29f6c0e0aa3b4a1e9d6b0c1b2a3c4554")
	first := ws.next()
	require.Equal(t, "status", first.Type)
	require.Equal(t, "29f6c0e0aa3b4a1e9d6b0c1b2a3c4554", first.Data["sid"])
	require.Equal(t, `{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "29f6c0e0aa3b4a1e9d6b0c1b2a3c4554"}}`, string(first.Raw))

	code, _, body := httpDo(t, http.MethodPost, b.base+"/prompt", map[string]any{
		"prompt": emptyImageSave("test"), "client_id": "29f6c0e0aa3b4a1e9d6b0c1b2a3c4554", "prompt_id": "e1b6e3ee-956d-4354-ab4c-66237e3e0f75",
	})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, `{"prompt_id": "e1b6e3ee-956d-4354-ab4c-66237e3e0f75", "number": 0, "node_errors": {}}`, string(body))
	p := "e1b6e3ee-956d-4354-ab4c-66237e3e0f75"

	ms := ws.untilDone(p)
	require.Equal(t, []string{"status", "status", "execution_start", "execution_cached", "progress_state", "executing",
		"progress_state", "progress_state", "executing", "executed", "progress_state", "execution_success", "status", "executing"}, types(ms))
	require.EqualValues(t, "1", ms[0].Data["status"].(map[string]any)["exec_info"].(map[string]any)["queue_remaining"].(json.Number))
	require.EqualValues(t, "1", ms[1].Data["status"].(map[string]any)["exec_info"].(map[string]any)["queue_remaining"].(json.Number))
	require.EqualValues(t, "0", ms[12].Data["status"].(map[string]any)["exec_info"].(map[string]any)["queue_remaining"].(json.Number))
	require.Contains(t, ms[2].Data, "timestamp")
	require.Equal(t, []any{}, ms[3].Data["nodes"])
	require.Contains(t, string(ms[4].Raw), `{"prompt_id": "`+p+`", "nodes": {"1": {"value": 0.0, "max": 1.0, "state": "running", "node_id": "1", "prompt_id": "`+p+`", "display_node_id": "1", "parent_node_id": null, "real_node_id": "1"}}}`)
	require.Equal(t, `{"type": "executing", "data": {"node": "1", "display_node": "1", "prompt_id": "`+p+`"}}`, string(ms[5].Raw))
	require.Contains(t, string(ms[6].Raw), `"1": {"value": 1.0, "max": 1.0, "state": "finished"`)
	require.NotContains(t, string(ms[6].Raw), `"2": `)
	require.Contains(t, string(ms[7].Raw), `"2": {"value": 0.0, "max": 1.0, "state": "running"`)
	require.Equal(t, `{"type": "executed", "data": {"node": "2", "display_node": "2", "output": {"images": [{"filename": "test_00001_.png", "subfolder": "", "type": "output"}]}, "prompt_id": "`+p+`"}}`, string(ms[9].Raw))
	require.Contains(t, string(ms[10].Raw), `"2": {"value": 1.0, "max": 1.0, "state": "finished"`)
	require.NotContains(t, ms[5].Data, "timestamp")
	require.Equal(t, `{"type": "executing", "data": {"node": null, "prompt_id": "`+p+`"}}`, string(ms[13].Raw))

	h := b.history(t, p)
	require.NotNil(t, h, "history is written before executing null")
	raw, _ := json.Marshal(h["prompt"])
	require.JSONEq(t, `[0, "`+p+`", {"1": {"class_type": "EmptyImage", "inputs": {"batch_size": 1, "color": 0, "height": 64, "width": 64}}, "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "test", "images": ["1", 0]}}}, {"client_id": "29f6c0e0aa3b4a1e9d6b0c1b2a3c4554"}, ["2"]]`, string(raw))
	raw, _ = json.Marshal(h["outputs"])
	require.JSONEq(t, `{"2": {"images": [{"filename": "test_00001_.png", "subfolder": "", "type": "output"}]}}`, string(raw))
	raw, _ = json.Marshal(h["meta"])
	require.JSONEq(t, `{"2": {"node_id": "2", "display_node": "2", "parent_node": null, "real_node_id": "2"}}`, string(raw))
	status := h["status"].(map[string]any)
	require.Equal(t, "success", status["status_str"])
	require.Equal(t, true, status["completed"])
	var kinds []string
	for _, m := range status["messages"].([]any) {
		kinds = append(kinds, m.([]any)[0].(string))
	}
	require.Equal(t, []string{"execution_start", "execution_cached", "execution_success"}, kinds)
	require.Equal(t, 1, b.sim.Executions(p))

	// The PNG: decodable, 64×64, black, with the prompt chunk.
	code, hdr, data := httpDo(t, http.MethodGet, b.base+"/view?filename=test_00001_.png&subfolder=&type=output", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "image/png", hdr.Get("Content-Type"))
	require.Equal(t, `filename="test_00001_.png"`, hdr.Get("Content-Disposition"))
	require.NotEmpty(t, hdr.Get("Content-Length"))
	img, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, 64, img.Bounds().Dx())
	require.Equal(t, 64, img.Bounds().Dy())
	r, g, bl, a := img.At(10, 10).RGBA()
	require.Equal(t, []uint32{0, 0, 0, 0xffff}, []uint32{r, g, bl, a})
	require.Contains(t, string(data), "tEXtprompt\x00{\"1\": {\"class_type\": \"EmptyImage\"")
	require.NotContains(t, string(data), "workflow")
	_, err = os.Stat(filepath.Join(b.sim.Dir(), "output", "test_00001_.png"))
	require.NoError(t, err)
}

// TestCachedRerun: an identical prompt is a full cache hit (§10): old file
// name, no executing for nodes, no new file.
func TestCachedRerun(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ws := dialWS(t, b.base, "c1")
	ws.next()
	p1 := b.queue(t, map[string]any{"prompt": emptyImageSave("cache"), "client_id": "c1"})
	ws.untilDone(p1)
	p2 := b.queue(t, map[string]any{"prompt": emptyImageSave("cache"), "client_id": "c1"})
	ms := ws.untilDone(p2)
	require.Equal(t, []string{"status", "status", "execution_start", "execution_cached", "executed", "progress_state",
		"execution_success", "status", "executing"}, types(ms))
	require.Equal(t, []any{"1", "2"}, ms[3].Data["nodes"])
	require.Contains(t, string(ms[4].Raw), `"output": {"images": [{"filename": "cache_00001_.png"`)
	require.Contains(t, string(ms[5].Raw), `"nodes": {"2": {"value": 1.0, "max": 1.0, "state": "finished"`)
	entries, err := os.ReadDir(filepath.Join(b.sim.Dir(), "output"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "a full cache hit writes no file")
	h := b.history(t, p2)
	raw, _ := json.Marshal(h["outputs"])
	require.JSONEq(t, `{"2": {"images": [{"filename": "cache_00001_.png", "subfolder": "", "type": "output"}]}}`, string(raw))

	// Changing a constant re-executes that node and everything downstream.
	prompt := emptyImageSave("cache")
	prompt["1"].(map[string]any)["inputs"].(map[string]any)["color"] = 255
	p3 := b.queue(t, map[string]any{"prompt": prompt, "client_id": "c1"})
	ms = ws.untilDone(p3)
	require.Equal(t, []any{}, ms[3].Data["nodes"])
	require.Contains(t, string(ms[9].Raw), "cache_00002_.png")
	waitExecuted(t, b, 3)
	st := b.sim.Stats()
	require.EqualValues(t, 1, st.PromptsCached)
	require.EqualValues(t, 4, st.NodesExecuted)
	require.Greater(t, st.BusyFraction(), 0.0)
}

func TestSmokeTxt2Img(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ws := dialWS(t, b.base, "c1")
	ws.next()
	p := b.queue(t, map[string]any{"prompt": txt2img(42, 3), "client_id": "c1"})
	ms := ws.untilDone(p)
	require.True(t, strings.Contains(strings.Join(types(ms), ","), "progress_state,progress,progress_state,progress,progress_state,progress"), "%v", types(ms))
}
