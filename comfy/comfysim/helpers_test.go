package comfysim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
)

// waitTimeout bounds every wait on the simulator; it is a deadline for
// conditions, never an assertion on timing.
const waitTimeout = 10 * time.Second

type bundle struct {
	sim  *comfysim.Server
	base string
}

// setup starts a simulator; with no ComfyUIVersion in opts it is comfysim's zero-value
// default, as comfysim.New gives it (simtest.NewServer would pick the test run's).
func setup(t *testing.T, opts comfysim.Options) *bundle {
	t.Helper()
	if opts.ComfyUIVersion == "" {
		opts.ComfyUIVersion = comfysim.DefaultOptions().ComfyUIVersion
	}
	s, base := simtest.NewServer(t, opts)
	return &bundle{sim: s, base: base}
}

// msg is one WebSocket frame.
type msg struct {
	Type   string         // JSON event type, or "binary"
	Data   map[string]any // JSON data
	Raw    []byte         // the frame as received
	Binary bool
}

type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	ch   chan msg
	done chan struct{}
}

func dialWS(t *testing.T, base, clientID string) *wsClient {
	t.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	if clientID != "" {
		u += "?clientId=" + clientID
	}
	conn, _, err := websocket.DefaultDialer.Dial(u, nil)
	require.NoError(t, err)
	c := &wsClient{t: t, conn: conn, ch: make(chan msg, 4096), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer close(c.ch)
		for {
			mt, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			m := msg{Raw: data}
			if mt == websocket.BinaryMessage {
				m.Type, m.Binary = "binary", true
			} else {
				var env struct {
					Type string         `json:"type"`
					Data map[string]any `json:"data"`
				}
				dec := json.NewDecoder(bytes.NewReader(data))
				dec.UseNumber()
				if err := dec.Decode(&env); err != nil {
					panic(fmt.Sprintf("bad frame %q: %v", data, err))
				}
				m.Type, m.Data = env.Type, env.Data
			}
			c.ch <- m
		}
	}()
	t.Cleanup(func() { c.close() })
	return c
}

func (c *wsClient) close() {
	_ = c.conn.Close()
	<-c.done
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	require.NoError(c.t, c.conn.WriteJSON(v))
}

// next returns the next frame, failing the test after waitTimeout.
func (c *wsClient) next() msg {
	c.t.Helper()
	select {
	case m, ok := <-c.ch:
		require.True(c.t, ok, "websocket closed")
		return m
	case <-time.After(waitTimeout):
		c.t.Fatalf("no websocket message within %v", waitTimeout)
	}
	return msg{}
}

// closed waits until the server closes the connection.
func (c *wsClient) closed() {
	c.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-c.ch:
			if !ok {
				return
			}
		case <-deadline:
			c.t.Fatal("websocket not closed")
		}
	}
}

// until collects frames up to and including the first one matching stop.
func (c *wsClient) until(stop func(m msg) bool) []msg {
	c.t.Helper()
	var out []msg
	for {
		m := c.next()
		out = append(out, m)
		if stop(m) {
			return out
		}
	}
}

// untilDone collects frames up to `executing {node: null, prompt_id}`.
func (c *wsClient) untilDone(promptID string) []msg {
	c.t.Helper()
	return c.until(func(m msg) bool { return isDone(m, promptID) })
}

func isDone(m msg, promptID string) bool {
	return m.Type == "executing" && m.Data["node"] == nil && m.Data["prompt_id"] == promptID
}

func types(ms []msg) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Type
	}
	return out
}

// forPrompt keeps status frames and frames about promptID.
func forPrompt(ms []msg, promptID string) []msg {
	var out []msg
	for _, m := range ms {
		if m.Type == "status" || m.Binary || m.Data["prompt_id"] == promptID {
			out = append(out, m)
		}
	}
	return out
}

// httpDo sends a request and returns status, headers and body.
func httpDo(t *testing.T, method, url string, body any) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(t, err)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, r)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, data
}

// decode parses JSON with exact numbers.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	require.NoError(t, dec.Decode(&m), "body %q", b)
	return m
}

func (b *bundle) post(t *testing.T, path string, body any) (int, map[string]any) {
	t.Helper()
	code, _, data := httpDo(t, http.MethodPost, b.base+path, body)
	if len(data) == 0 {
		return code, nil
	}
	return code, decode(t, data)
}

func (b *bundle) get(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	code, _, data := httpDo(t, http.MethodGet, b.base+path, nil)
	return code, decode(t, data)
}

// queue posts a prompt and requires a 200.
func (b *bundle) queue(t *testing.T, req map[string]any) string {
	t.Helper()
	code, resp := b.post(t, "/prompt", req)
	require.Equal(t, http.StatusOK, code, "response %v", resp)
	return resp["prompt_id"].(string)
}

func (b *bundle) history(t *testing.T, id string) map[string]any {
	t.Helper()
	_, h := b.get(t, "/history/"+id)
	entry, _ := h[id].(map[string]any)
	return entry
}

// emptyImageSave is the model-free workflow of protocol §10.
func emptyImageSave(prefix string) map[string]any {
	return map[string]any{
		"1": map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 64, "height": 64, "batch_size": 1, "color": 0}},
		"2": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"1", 0}, "filename_prefix": prefix}},
	}
}

// txt2img is a checkpoint → clip → latent → KSampler → decode → save graph.
func txt2img(seed any, steps int) map[string]any {
	return map[string]any{
		"4": map[string]any{"class_type": "CheckpointLoaderSimple", "inputs": map[string]any{"ckpt_name": "sim-v1-5.safetensors"}},
		"6": map[string]any{"class_type": "CLIPTextEncode", "inputs": map[string]any{"text": "a cat", "clip": []any{"4", 1}}},
		"7": map[string]any{"class_type": "CLIPTextEncode", "inputs": map[string]any{"text": "blurry", "clip": []any{"4", 1}}},
		"5": map[string]any{"class_type": "EmptyLatentImage", "inputs": map[string]any{"width": 64, "height": 64, "batch_size": 1}},
		"3": map[string]any{"class_type": "KSampler", "inputs": map[string]any{"seed": seed, "steps": steps, "cfg": 8, "sampler_name": "euler",
			"scheduler": "normal", "denoise": 1, "model": []any{"4", 0}, "positive": []any{"6", 0}, "negative": []any{"7", 0}, "latent_image": []any{"5", 0}}},
		"8": map[string]any{"class_type": "VAEDecode", "inputs": map[string]any{"samples": []any{"3", 0}, "vae": []any{"4", 2}}},
		"9": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"filename_prefix": "ComfyUI", "images": []any{"8", 0}}},
	}
}

// pollInterval is how often a condition is re-checked while waiting.
const pollInterval = 2 * time.Millisecond

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// waitExecuted waits until n executions ended and sent their last message.
func waitExecuted(t *testing.T, b *bundle, n int64) {
	t.Helper()
	require.Eventually(t, func() bool { return b.sim.Stats().PromptsExecuted >= n }, waitTimeout, pollInterval)
}
