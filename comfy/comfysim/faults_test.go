package comfysim_test

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

// TestCrash: a restart loses the running prompt (no more messages), the
// queue, history, sockets and counter; files stay; Executions counts both
// runs of a prompt that is submitted again.
func TestCrash(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ws := dialWS(t, b.base, "c")
	ws.next()
	done := b.queue(t, map[string]any{"prompt": emptyImageSave("kept"), "client_id": "c"})
	ws.untilDone(done)
	run := b.queue(t, map[string]any{"prompt": blocker(), "client_id": "c", "prompt_id": "job-1"})
	b.queue(t, map[string]any{"prompt": emptyImageSave("lost"), "client_id": "c"})
	ws.waitProgress(run)

	b.sim.Crash()
	ws.closed()
	_, q := b.get(t, "/queue")
	require.Empty(t, q["queue_running"])
	require.Empty(t, q["queue_pending"])
	_, raw := b.getRaw(t, "/history")
	require.Equal(t, "{}", raw)
	_, err := os.Stat(filepath.Join(b.sim.Dir(), "output", "kept_00001_.png"))
	require.NoError(t, err, "files on disk stay")

	ws2 := dialWS(t, b.base, "c")
	ws2.next()
	_, resp := b.post(t, "/prompt", map[string]any{"prompt": txt2img(7, 2), "client_id": "c", "prompt_id": "job-1"})
	require.Equal(t, "0", string(resp["number"].(jsonNumber)), "the counter restarted")
	ms := ws2.untilDone("job-1")
	require.Contains(t, types(ms), "execution_success")
	require.Equal(t, []any{}, ms[3].Data["nodes"], "caches were lost")
	require.Equal(t, 2, b.sim.Executions("job-1"))
	require.Equal(t, 0, b.sim.Executions("never"))
	// The file counter continues from the files on disk.
	p := b.queue(t, map[string]any{"prompt": emptyImageSave("kept"), "client_id": "c"})
	require.Contains(t, string(ws2.untilDone(p)[9].Raw), "kept_00002_.png")
}

// TestSetDown: while down, requests fail at the connection level and /ws is
// refused; the node keeps executing.
func TestSetDown(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ws := dialWS(t, b.base, "c")
	ws.next()
	run := b.queue(t, map[string]any{"prompt": txt2img(1, 200), "client_id": "c"})
	ws.waitProgress(run)

	b.sim.SetDown(true)
	ws.closed()
	_, err := http.Get(b.base + "/system_stats")
	require.Error(t, err)
	_, _, err = websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(b.base, "http")+"/ws", nil)
	require.Error(t, err)

	b.sim.SetDown(false)
	h := waitHistory(t, b, run)
	require.Equal(t, "success", h["status"].(map[string]any)["status_str"], "the run went on while unreachable")
}

// TestDropWebSockets: sockets close abruptly; the run continues and a
// reconnecting client gets the rest.
func TestDropWebSockets(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ws := dialWS(t, b.base, "c")
	ws.next()
	run := b.queue(t, map[string]any{"prompt": txt2img(2, 10000), "client_id": "c"})
	ws.waitProgress(run)
	b.sim.DropWebSockets()
	ws.closed()

	ws2 := dialWS(t, b.base, "c")
	require.Equal(t, "status", ws2.next().Type)
	require.Equal(t, `{"type": "executing", "data": {"node": "3"}}`, string(ws2.next().Raw))
	_, _ = b.postRaw(t, "/interrupt", nil)
	ms := ws2.untilDone(run)
	require.Equal(t, "execution_interrupted", ms[len(ms)-3].Type)
}

// TestSilenceWebSockets: sockets stay open but messages of the silent
// period are lost.
func TestSilenceWebSockets(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ws := dialWS(t, b.base, "c")
	ws.next()
	b.sim.SilenceWebSockets(time.Hour)
	p := b.queue(t, map[string]any{"prompt": emptyImageSave("quiet"), "client_id": "c"})
	waitExecuted(t, b, 1) // every message of the run was sent (and lost)
	b.sim.SilenceWebSockets(0)
	p2 := b.queue(t, map[string]any{"prompt": emptyImageSave("loud"), "client_id": "c"})
	ms := ws.untilDone(p2)
	require.Equal(t, "status", ms[0].Type, "nothing of the silent run was delivered")
	for _, m := range ms {
		require.NotEqual(t, p, m.Data["prompt_id"])
	}
}

// TestViewFault: failing, slow and cut /view downloads.
func TestViewFault(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{VideoSize: 1 << 20})
	ws := dialWS(t, b.base, "c")
	ws.next()
	p := b.queue(t, map[string]any{"prompt": videoPrompt(), "client_id": "c"})
	ws.untilDone(p)
	u := b.base + "/view?filename=ComfyUI_00001_.mp4&subfolder=video&type=output"

	b.sim.SetViewFault(comfysim.ViewFault{FailStatus: http.StatusServiceUnavailable, FailCount: 2})
	for i := 0; i < 2; i++ {
		code, _, _ := httpDo(t, http.MethodGet, u, nil)
		require.Equal(t, http.StatusServiceUnavailable, code)
	}
	code, _, body := httpDo(t, http.MethodGet, u, nil)
	require.Equal(t, http.StatusOK, code)
	require.Len(t, body, 1<<20)

	b.sim.SetViewFault(comfysim.ViewFault{CutAfter: 1000})
	resp, err := http.Get(u)
	require.NoError(t, err)
	require.Equal(t, "1048576", resp.Header.Get("Content-Length"))
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Error(t, err)
	require.True(t, errors.Is(err, io.ErrUnexpectedEOF), "%v", err)
	require.Less(t, n, int64(1<<20))
	b.sim.ClearFaults()
	code, _, _ = httpDo(t, http.MethodGet, u, nil)
	require.Equal(t, http.StatusOK, code)
}
