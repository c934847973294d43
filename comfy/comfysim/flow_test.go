package comfysim_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

// blocker is a prompt whose KSampler runs 10000 steps: it holds the
// executor until interrupted.
func blocker() map[string]any { return txt2img(7, 10000) }

// waitProgress waits for a `progress` frame of promptID, returning the
// frames before it.
func (c *wsClient) waitProgress(promptID string) []msg {
	c.t.Helper()
	return c.until(func(m msg) bool { return m.Type == "progress" && m.Data["prompt_id"] == promptID })
}

// waitRunning polls /queue until id is the running prompt.
func (b *bundle) waitRunning(t *testing.T, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, q := b.get(t, "/queue")
		r := q["queue_running"].([]any)
		return len(r) == 1 && r[0].([]any)[1] == id
	}, waitTimeout, pollInterval)
}

func pendingIDs(t *testing.T, b *bundle) []any {
	t.Helper()
	_, q := b.get(t, "/queue")
	var ids []any
	for _, it := range q["queue_pending"].([]any) {
		ids = append(ids, it.([]any)[1])
	}
	return ids
}

// TestRuntimeError follows §10's runtime error sequence.
func TestRuntimeError(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	b.sim.FailNode("2", "torch.OutOfMemoryError", "Allocation on device")
	ws := dialWS(t, b.base, "c1")
	ws.next()
	prompt := map[string]any{
		"1": map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 8, "height": 8, "batch_size": 1, "color": 0}},
		"2": map[string]any{"class_type": "ImageInvert", "inputs": map[string]any{"image": []any{"1", 0}}},
		"3": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"2", 0}, "filename_prefix": "err"}},
	}
	p := b.queue(t, map[string]any{"prompt": prompt, "client_id": "c1"})
	ms := ws.untilDone(p)
	require.Equal(t, []string{"status", "status", "execution_start", "execution_cached", "progress_state", "executing",
		"progress_state", "progress_state", "executing", "execution_error", "status", "executing"}, types(ms))
	e := ms[9].Data
	require.Equal(t, p, e["prompt_id"])
	require.Equal(t, "2", e["node_id"])
	require.Equal(t, "ImageInvert", e["node_type"])
	require.Equal(t, []any{"1"}, e["executed"])
	require.Equal(t, "torch.OutOfMemoryError", e["exception_type"])
	require.Contains(t, e["exception_message"], "Allocation on device\n")
	require.NotEmpty(t, e["traceback"])
	require.Contains(t, e["current_inputs"].(map[string]any)["image"].([]any)[0], "tensor(")
	require.Equal(t, []any{"1", "2", "3"}, e["current_outputs"])
	require.Contains(t, e, "timestamp")
	require.Contains(t, string(ms[7].Raw), `"2": {"value": 0.0, "max": 1.0, "state": "running"`)

	h := b.history(t, p)
	st := h["status"].(map[string]any)
	require.Equal(t, "error", st["status_str"])
	require.Equal(t, false, st["completed"])
	msgs := st["messages"].([]any)
	require.Equal(t, "execution_error", msgs[len(msgs)-1].([]any)[0])
	require.Empty(t, h["outputs"])

	// Faults persist until cleared; cleared, the same prompt succeeds.
	b.sim.ClearFaults()
	p2 := b.queue(t, map[string]any{"prompt": prompt, "client_id": "c1"})
	ms = ws.untilDone(p2)
	require.Contains(t, types(ms), "execution_success")
	require.Equal(t, []any{"1"}, ms[3].Data["nodes"], "node 1 stayed cached")
}

// TestInterruptRunning: interrupting the running prompt among queued ones.
func TestInterruptRunning(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ws := dialWS(t, b.base, "c1")
	ws.next()
	running := b.queue(t, map[string]any{"prompt": blocker(), "client_id": "c1"})
	q1 := b.queue(t, map[string]any{"prompt": emptyImageSave("q1"), "client_id": "c1"})
	q2 := b.queue(t, map[string]any{"prompt": emptyImageSave("q2"), "client_id": "c1"})
	ws.waitProgress(running)

	// Naming a prompt that is not running interrupts nothing.
	code, body := b.postRaw(t, "/interrupt", map[string]any{"prompt_id": q1})
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, body)
	code, _ = b.postRaw(t, "/interrupt", map[string]any{"prompt_id": running})
	require.Equal(t, http.StatusOK, code)

	ms := forPrompt(ws.untilDone(running), running)
	tail := types(ms[len(ms)-3:])
	require.Equal(t, []string{"execution_interrupted", "status", "executing"}, tail)
	ir := ms[len(ms)-3].Data
	require.Equal(t, "3", ir["node_id"])
	require.Equal(t, "KSampler", ir["node_type"])
	require.Contains(t, ir, "timestamp")
	require.ElementsMatch(t, []any{"4", "6", "7", "5"}, ir["executed"])
	h := b.history(t, running)
	st := h["status"].(map[string]any)
	require.Equal(t, "error", st["status_str"])
	require.Equal(t, false, st["completed"])
	msgs := st["messages"].([]any)
	require.Equal(t, "execution_interrupted", msgs[len(msgs)-1].([]any)[0])

	for _, id := range []string{q1, q2} {
		ms := ws.untilDone(id)
		require.Contains(t, types(ms), "execution_success", "queued prompts are unaffected")
	}
	require.Equal(t, 1, b.sim.Executions(running))
}

// TestQueuePriority: number, front and the heap array of /queue.
func TestQueuePriority(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ws := dialWS(t, b.base, "c1")
	ws.next()
	run := b.queue(t, map[string]any{"prompt": blocker(), "client_id": "c1"}) // number 0
	b.waitRunning(t, run)
	a := b.queue(t, map[string]any{"prompt": emptyImageSave("a"), "client_id": "c1"})                 // 1
	bb := b.queue(t, map[string]any{"prompt": emptyImageSave("b"), "client_id": "c1", "number": 0.5}) // 0.5
	_, resp := b.post(t, "/prompt", map[string]any{"prompt": emptyImageSave("c"), "client_id": "c1", "front": true})
	c := resp["prompt_id"].(string)
	require.Equal(t, json.Number("-2"), resp["number"])
	d := b.queue(t, map[string]any{"prompt": emptyImageSave("d"), "client_id": "c1"}) // 3

	// heapq's array after pushing 1, 0.5, -2, 3.
	require.Equal(t, []any{c, a, bb, d}, pendingIDs(t, b))
	_, q := b.get(t, "/queue")
	require.Equal(t, json.Number("0.5"), q["queue_pending"].([]any)[2].([]any)[0])

	// Deleting re-heapifies; clearing empties. Both broadcast status.
	code, _ := b.post(t, "/queue", map[string]any{"delete": []any{a, "unknown"}})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []any{c, bb, d}, pendingIDs(t, b))
	e := b.queue(t, map[string]any{"prompt": emptyImageSave("e"), "client_id": "c1", "number": 100})

	_, _ = b.postRaw(t, "/interrupt", nil)
	var order []string
	for len(order) < 5 {
		m := ws.next()
		if m.Type == "execution_start" {
			order = append(order, m.Data["prompt_id"].(string))
		}
	}
	require.Equal(t, []string{run, c, bb, d, e}, order)
	require.Nil(t, b.history(t, a), "a deleted prompt never runs")

	// clear
	run2 := b.queue(t, map[string]any{"prompt": blocker(), "client_id": "c1"})
	b.waitRunning(t, run2)
	b.queue(t, map[string]any{"prompt": emptyImageSave("x"), "client_id": "c1"})
	code, _ = b.post(t, "/queue", map[string]any{"clear": true})
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, pendingIDs(t, b))
	_, q = b.get(t, "/queue")
	require.Len(t, q["queue_running"], 1, "the running prompt is untouched by clear")
	_, pr := b.get(t, "/prompt")
	require.Equal(t, json.Number("1"), pr["exec_info"].(map[string]any)["queue_remaining"])
	_, _ = b.postRaw(t, "/interrupt", nil)
	ws.untilDone(run2)
}

// TestQueueShowsSecrets: /queue keeps the secret extra_data keys, history
// strips them.
func TestQueueShowsSecrets(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	run := b.queue(t, map[string]any{"prompt": blocker()})
	b.waitRunning(t, run)
	id := b.queue(t, map[string]any{"prompt": emptyImageSave("s"), "client_id": "c9",
		"extra_data": map[string]any{"auth_token_comfy_org": "secret", "extra_pnginfo": map[string]any{"workflow": map[string]any{"v": 1}}}})
	_, raw := b.getRaw(t, "/queue")
	require.Contains(t, raw, `{"auth_token_comfy_org": "secret", "extra_pnginfo": {"workflow": {"v": 1}}, "client_id": "c9"}`)
	_, _ = b.postRaw(t, "/interrupt", nil)
	waitHistory(t, b, id)
	_, raw = b.getRaw(t, "/history/"+id)
	require.NotContains(t, raw, "secret")
	require.Contains(t, raw, `{"extra_pnginfo": {"workflow": {"v": 1}}, "client_id": "c9"}`)

	// The workflow is embedded in the PNG.
	_, _, png := httpDo(t, http.MethodGet, b.base+"/view?filename=s_00001_.png", nil)
	require.Contains(t, string(png), "tEXtworkflow\x00{\"v\": 1}")
}

func (b *bundle) getRaw(t *testing.T, path string) (int, string) {
	t.Helper()
	code, _, data := httpDo(t, http.MethodGet, b.base+path, nil)
	return code, string(data)
}

// TestHistoryPaging: max_items keeps the newest, offset skips the oldest.
func TestHistoryPaging(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, b.queue(t, map[string]any{"prompt": emptyImageSave("h"), "prompt_id": "p" + string(rune('0'+i))}))
	}
	waitHistory(t, b, ids[4])
	keys := func(path string) []string {
		_, raw := b.getRaw(t, path)
		var out []string
		dec := json.NewDecoder(stringsReader(raw))
		tok, _ := dec.Token() // {
		_ = tok
		for dec.More() {
			k, _ := dec.Token()
			out = append(out, k.(string))
			var skip json.RawMessage
			require.NoError(t, dec.Decode(&skip))
		}
		return out
	}
	require.Equal(t, ids, keys("/history"))
	require.Equal(t, ids[3:], keys("/history?max_items=2"))
	require.Equal(t, ids[1:3], keys("/history?max_items=2&offset=1"))
	require.Equal(t, ids[3:], keys("/history?offset=3"))
	require.Empty(t, keys("/history?max_items=0"))
	require.Equal(t, []string{"p1"}, keys("/history?max_items=0&offset=1"))
	code, _ := b.getRaw(t, "/history?max_items=abc")
	require.Equal(t, http.StatusInternalServerError, code)
	_, raw := b.getRaw(t, "/history/unknown")
	require.Equal(t, "{}", raw)

	code, body := b.postRaw(t, "/history", map[string]any{"delete": []any{"p1", "nope"}})
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, body)
	require.Equal(t, []string{"p0", "p2", "p3", "p4"}, keys("/history"))
	// A prompt id seen again keeps its place.
	b.queue(t, map[string]any{"prompt": emptyImageSave("h"), "prompt_id": "p0", "client_id": "x"})
	require.Eventually(t, func() bool {
		h := b.history(t, "p0")
		return h["prompt"].([]any)[3].(map[string]any)["client_id"] == "x"
	}, waitTimeout, pollInterval)
	require.Equal(t, []string{"p0", "p2", "p3", "p4"}, keys("/history"))
	b.post(t, "/history", map[string]any{"clear": true})
	require.Empty(t, keys("/history"))
}

// TestInterruptDuringLongNode: as in ComfyUI, an interrupt does not stop the
// node that is running; the next node's start sees it.
func TestInterruptDuringLongNode(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{NodeDelay: 300 * time.Millisecond})
	ws := dialWS(t, b.base, "c")
	ws.next()
	p := b.queue(t, map[string]any{"prompt": emptyImageSave("long"), "client_id": "c"})
	ws.until(func(m msg) bool { return m.Type == "executing" && m.Data["node"] == "1" })
	_, _ = b.postRaw(t, "/interrupt", nil)
	ms := ws.untilDone(p)
	require.Equal(t, []string{"progress_state", "progress_state", "executing", "execution_interrupted", "status", "executing"}, types(ms))
	require.Equal(t, "2", ms[3].Data["node_id"], "node 1 ran to its end")
	require.Equal(t, []any{"1"}, ms[3].Data["executed"])
	require.Eventually(t, func() bool { return b.sim.Stats().PromptsInterrupted == 1 }, waitTimeout, pollInterval)
	require.Equal(t, int64(1), b.sim.Stats().NodesExecuted)
}
