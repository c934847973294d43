package comfy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeNode is a purpose-built HTTP fake for conditions the simulator does not produce
// (malformed bodies, exact request capture). Most endpoint tests run against comfysim.
type fakeNode struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []capturedRequest
	// routes maps "METHOD /path" to a handler.
	routes map[string]http.HandlerFunc
}

type capturedRequest struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

func newFakeNode(t *testing.T) *fakeNode {
	t.Helper()
	f := &fakeNode{t: t, routes: map[string]http.HandlerFunc{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, capturedRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		h := f.routes[r.Method+" "+r.URL.Path]
		f.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		h(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeNode) handle(route string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[route] = h
}

func (f *fakeNode) json(route string, status int, body string) {
	f.handle(route, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

func (f *fakeNode) last() capturedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotEmpty(f.t, f.reqs)
	return f.reqs[len(f.reqs)-1]
}

func newTestClient(t *testing.T, base string, mod ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: base, RequestTimeout: 5 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, base, ws string
	}{
		{"http://127.0.0.1:8188", "http://127.0.0.1:8188", "ws://127.0.0.1:8188/ws?clientId=abc"},
		{"http://127.0.0.1:8188/", "http://127.0.0.1:8188", "ws://127.0.0.1:8188/ws?clientId=abc"},
		{"https://gpu-1.example/comfy/", "https://gpu-1.example/comfy", "wss://gpu-1.example/comfy/ws?clientId=abc"},
		{"HTTP://h:1/a/b", "http://h:1/a/b", "ws://h:1/a/b/ws?clientId=abc"},
	} {
		c, err := New(Config{BaseURL: tc.in, ClientID: "abc"})
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.base, c.BaseURL())
		require.Equal(t, tc.ws, c.WebSocketURL())
		require.Equal(t, "abc", c.ClientID())
		require.NoError(t, c.Close())
		require.NoError(t, c.Close(), "closing twice is safe")
	}
	for _, bad := range []string{"", "127.0.0.1:8188", "ftp://h/", "http://", "http://u:p@h/", "http://h/?x=1", "://"} {
		_, err := New(Config{BaseURL: bad})
		require.Error(t, err, bad)
	}
	_, err := New(Config{BaseURL: "http://h", RequestTimeout: -1})
	require.Error(t, err)

	c, err := New(Config{BaseURL: "http://h"})
	require.NoError(t, err)
	require.Regexp(t, "^[0-9a-f]{32}$", c.ClientID(), "default client id looks like uuid4().hex")
}

func TestQueuePromptRequestBody(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t)
	f.json("POST /prompt", 200, `{"prompt_id":"p1","number":5.0,"node_errors":{}}`)
	c := newTestClient(t, f.srv.URL, func(cfg *Config) {
		cfg.ClientID = "client-1"
		cfg.Header = http.Header{"X-Token": {"secret"}, "Origin": {"http://evil.example"}}
	})
	wf, err := ParseWorkflow([]byte(`{"1":{"class_type":"KSampler","inputs":{"seed":18446744073709551615,"model":["4",0]}}}`))
	require.NoError(t, err)
	num := 5.0
	resp, err := c.QueuePrompt(context.Background(), PromptRequest{
		Prompt: wf, PromptID: "p1", Number: &num, Front: true,
		ExtraData:               map[string]any{"extra_pnginfo": map[string]any{"workflow": map[string]any{}}},
		PartialExecutionTargets: []string{"1"},
	})
	require.NoError(t, err)
	require.Equal(t, "p1", resp.PromptID)
	require.Equal(t, json.Number("5.0"), resp.Number, "a float number is tolerated")
	require.Empty(t, resp.NodeErrors)

	req := f.last()
	require.Equal(t, "secret", req.Header.Get("X-Token"))
	require.Empty(t, req.Header.Get("Origin"), "no Origin header (§0)")
	require.Contains(t, string(req.Body), `"seed":18446744073709551615`, "seed sent exactly")
	var body map[string]any
	require.NoError(t, json.Unmarshal(req.Body, &body))
	require.Equal(t, "client-1", body["client_id"])
	require.Equal(t, "p1", body["prompt_id"])
	require.Equal(t, 5.0, body["number"])
	require.Equal(t, true, body["front"])
	require.Equal(t, []any{"1"}, body["partial_execution_targets"])
	require.Contains(t, body["extra_data"], "extra_pnginfo")

	// Minimal request: optional fields are left out; an empty non-nil target list is sent.
	_, err = c.QueuePrompt(context.Background(), PromptRequest{Prompt: wf, PartialExecutionTargets: []string{}})
	require.NoError(t, err)
	body = nil
	require.NoError(t, json.Unmarshal(f.last().Body, &body))
	require.NotContains(t, body, "prompt_id")
	require.NotContains(t, body, "number")
	require.NotContains(t, body, "front")
	require.Equal(t, []any{}, body["partial_execution_targets"])

	_, err = c.QueuePrompt(context.Background(), PromptRequest{})
	require.Error(t, err, "empty prompt is refused locally")
}

func TestQueuePromptValidationError(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t)
	f.json("POST /prompt", 400, `{"error":{"type":"prompt_outputs_failed_validation","message":"Prompt outputs failed validation","details":"Value not in list: ckpt_name: 'x.safetensors' not in (list of length 31)","extra_info":{}},
	 "node_errors":{"4":{"class_type":"CheckpointLoaderSimple","dependent_outputs":["9"],
	 "errors":[{"type":"value_not_in_list","message":"Value not in list","details":"ckpt_name: 'x.safetensors' not in (list of length 31)",
	 "extra_info":{"input_name":"ckpt_name","input_config":null,"received_value":"x.safetensors"}}]}}}`)
	c := newTestClient(t, f.srv.URL)
	wf := Workflow{"4": {ClassType: "CheckpointLoaderSimple", Inputs: map[string]any{"ckpt_name": "x.safetensors"}}}
	_, err := c.QueuePrompt(context.Background(), PromptRequest{Prompt: wf})
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, 400, ve.StatusCode)
	require.Equal(t, "prompt_outputs_failed_validation", ve.Err.Type)
	require.Equal(t, "CheckpointLoaderSimple", ve.NodeErrors["4"].ClassType)
	require.Equal(t, []string{"9"}, ve.NodeErrors["4"].DependentOutputs)
	require.Equal(t, "value_not_in_list", ve.NodeErrors["4"].Errors[0].Type)
	require.Equal(t, "ckpt_name", ve.NodeErrors["4"].Errors[0].ExtraInfo["input_name"])
	require.Contains(t, string(ve.Raw), "node_errors")
	require.Equal(t, "comfy: prompt rejected: prompt_outputs_failed_validation: Prompt outputs failed validation (Value not in list: ckpt_name: 'x.safetensors' not in (list of length 31))", ve.Error())

	// A 400 that is not ComfyUI's JSON (a proxy's page) is an HTTPError.
	f.handle("POST /prompt", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>bad request</html>", 400)
	})
	_, err = c.QueuePrompt(context.Background(), PromptRequest{Prompt: wf})
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, 400, he.StatusCode)
	require.False(t, errors.As(err, &ve))
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t)
	f.json("GET /queue", 503, `upstream down`)
	f.json("GET /system_stats", 500, `Traceback…`)
	f.json("GET /features", 200, `{"broken"`)
	f.json("GET /history/p1", 200, `{}`)
	f.json("GET /object_info/Nope", 200, `{}`)
	f.handle("GET /prompt", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	})
	c := newTestClient(t, f.srv.URL, func(cfg *Config) { cfg.RequestTimeout = 200 * time.Millisecond })
	ctx := context.Background()

	_, err := c.Queue(ctx)
	require.ErrorIs(t, err, ErrUnavailable, "503")
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, "/queue", he.Path)

	_, err = c.SystemStats(ctx)
	require.ErrorAs(t, err, &he)
	require.Equal(t, 500, he.StatusCode)
	require.NotErrorIs(t, err, ErrUnavailable)

	_, err = c.Features(ctx)
	require.ErrorContains(t, err, "decode response")

	_, err = c.History(ctx, "p1")
	require.ErrorIs(t, err, ErrNotFound)

	_, err = c.ObjectInfoClass(ctx, "Nope")
	require.ErrorIs(t, err, ErrNotFound)

	_, err = c.View(ctx, FileRef{Filename: "missing.png"}, nil)
	require.ErrorIs(t, err, ErrNotFound)

	// Per-request timeout: the node does not answer.
	err = c.doJSON(ctx, http.MethodGet, "/prompt", nil, nil, new(any), nil)
	require.ErrorIs(t, err, ErrUnavailable)

	// The caller's own cancellation is not "unavailable".
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.Queue(cctx)
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, ErrUnavailable)

	// Nothing listens: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	down := newTestClient(t, "http://"+addr)
	_, err = down.SystemStats(ctx)
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorIs(t, down.Connect(ctx), ErrUnavailable)

	require.NoError(t, c.Close())
	_, err = c.Queue(ctx)
	require.ErrorIs(t, err, ErrClosed)
}

func TestQueueDecode(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t)
	// Heap order, unsorted; a float number; a sixth element (newer servers).
	f.json("GET /queue", 200, `{"queue_running":[[0,"r",{"1":{"class_type":"EmptyImage","inputs":{"width":64}}},{"client_id":"c"},["2"]]],
	 "queue_pending":[[3,"c",{},{},["9"]],[1.5,"a",{},{},["9"],{"auth_token_comfy_org":"x"}],[-2,"front",{},{},["9"]],[2,"b",{},{},["9"]]]}`)
	c := newTestClient(t, f.srv.URL)
	q, err := c.Queue(context.Background())
	require.NoError(t, err)
	require.Len(t, q.Running, 1)
	require.Equal(t, "r", q.Running[0].PromptID)
	require.Equal(t, json.Number("64"), q.Running[0].Prompt["1"].Inputs["width"])
	require.Equal(t, "c", q.Running[0].ExtraData["client_id"])
	require.Equal(t, []string{"2"}, q.Running[0].OutputsToExecute)
	var ids []string
	for _, it := range q.Pending {
		ids = append(ids, it.PromptID)
	}
	require.Equal(t, []string{"front", "a", "b", "c"}, ids)
	require.Equal(t, json.Number("1.5"), q.Pending[1].Number)
	running, pending := q.Contains("b")
	require.False(t, running)
	require.True(t, pending)

	// Round trip of the tuple.
	b, err := json.Marshal(q.Running[0])
	require.NoError(t, err)
	var back QueueItem
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, q.Running[0], back)
}

const historyFixture = `{"P":{
  "prompt":[0,"P",{"1":{"class_type":"EmptyImage","inputs":{"width":64,"height":64,"batch_size":1,"color":0}},"2":{"class_type":"SaveImage","inputs":{"images":["1",0],"filename_prefix":"test"}}},{"client_id":"c1"},["2"]],
  "outputs":{"2":{"images":[{"filename":"test_00001_.png","subfolder":"","type":"output"}]}},
  "status":{"status_str":"success","completed":true,"messages":[["execution_start",{"prompt_id":"P","timestamp":1728600000000}],["execution_cached",{"nodes":[],"prompt_id":"P","timestamp":1728600000001}],["execution_success",{"prompt_id":"P","timestamp":1728600004000}]]},
  "meta":{"2":{"node_id":"2","display_node":"2","parent_node":null,"real_node_id":"2"}}}}`

func TestHistoryDecode(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t)
	f.json("GET /history/P", 200, historyFixture)
	f.json("GET /history", 200, historyFixture)
	f.json("POST /history", 200, ``)
	c := newTestClient(t, f.srv.URL)
	ctx := context.Background()
	h, err := c.History(ctx, "P")
	require.NoError(t, err)
	require.Equal(t, "P", h.PromptID)
	require.Equal(t, "P", h.Prompt.PromptID)
	require.Equal(t, []string{"2"}, h.Prompt.OutputsToExecute)
	require.Equal(t, "success", h.Status.StatusStr)
	require.True(t, h.Status.Completed)
	require.Len(t, h.Status.Messages, 3)
	require.Equal(t, "execution_cached", h.Status.Messages[1].Type)
	require.Equal(t, time.UnixMilli(1728600004000), h.Status.Messages[2].Timestamp())
	_, failed := h.Failed()
	require.False(t, failed)
	require.False(t, h.Interrupted())
	require.True(t, h.Succeeded())
	require.Equal(t, []NodeFile{{NodeID: "2", OutputFile: OutputFile{Key: "images",
		FileRef: FileRef{Filename: "test_00001_.png", Type: "output"}}}}, h.Files())
	require.Contains(t, h.Meta, "2")

	list, err := c.HistoryList(ctx, 5, 2)
	require.NoError(t, err)
	require.Equal(t, "max_items=5&offset=2", f.last().Query)
	require.Equal(t, "P", list["P"].PromptID)
	_, err = c.HistoryList(ctx, 0, -1)
	require.NoError(t, err)
	require.Equal(t, "", f.last().Query)

	require.NoError(t, c.DeleteHistory(ctx, "a", "b"))
	require.JSONEq(t, `{"delete":["a","b"]}`, string(f.last().Body))
	require.NoError(t, c.ClearHistory(ctx))
	require.JSONEq(t, `{"clear":true}`, string(f.last().Body))
}

func TestHistoryFailedAndInterrupted(t *testing.T) {
	t.Parallel()
	var h HistoryEntry
	require.NoError(t, json.Unmarshal([]byte(`{"prompt":[1,"E",{},{},["3"]],"outputs":{},
	  "status":{"status_str":"error","completed":false,"messages":[["execution_start",{"prompt_id":"E","timestamp":1}],
	  ["execution_error",{"prompt_id":"E","node_id":"3","node_type":"KSampler","executed":["1","2"],
	   "exception_message":"Allocation on device","exception_type":"torch.OutOfMemoryError","traceback":["a","b"],
	   "current_inputs":{"image":["tensor(...)"]},"current_outputs":["3"],"timestamp":2}]]}}`), &h))
	h.PromptID = "E"
	e, failed := h.Failed()
	require.True(t, failed)
	require.False(t, h.Interrupted())
	require.Equal(t, "3", e.NodeID)
	require.Equal(t, []string{"1", "2"}, e.Executed)
	require.True(t, e.IsOOM())
	require.ErrorIs(t, e, ErrExecution)
	require.Equal(t, "comfy: node 3 (KSampler) raised torch.OutOfMemoryError: Allocation on device", e.Error())

	var hi HistoryEntry
	require.NoError(t, json.Unmarshal([]byte(`{"prompt":[1,"I",{},{},["3"]],"outputs":{},
	  "status":{"status_str":"error","completed":false,"messages":[["execution_interrupted",{"prompt_id":"I","node_id":"3","node_type":"KSampler","executed":[],"timestamp":2}], "garbage"]}}`), &hi))
	require.True(t, hi.Interrupted())
	_, failed = hi.Failed()
	require.False(t, failed, "an interrupt is not a failure")
}

func TestNodeOutputFiles(t *testing.T) {
	t.Parallel()
	var o NodeOutput
	require.NoError(t, json.Unmarshal([]byte(`{
	  "images":[{"filename":"a.webp","subfolder":"s","type":"output"},{"filename":"b.webp","subfolder":"","type":"temp"}],
	  "animated":[true],
	  "audio":[{"filename":"x.flac","subfolder":"audio","type":"output"}],
	  "gifs":[{"filename":"v.mp4","subfolder":"","type":"output","format":"video/h264-mp4","frame_rate":8}],
	  "3d":[{"filename":"m.glb","subfolder":"3d","type":"output"}],
	  "result":["m.glb",{"camera":1}],
	  "model":["3d/n.obj","not-3d.txt"],
	  "text":["hello","world"],
	  "latents":[{"filename":"l.latent","subfolder":"","type":"output"}],
	  "custom":[{"filename":null},{"nofile":1},17,"s"],
	  "scalar":{"filename":"not-a-list.png"}
	}`), &o))
	files := o.Files()
	var got []string
	for _, f := range files {
		got = append(got, f.Key+":"+f.Subfolder+"/"+f.Filename+":"+f.Type)
	}
	require.Equal(t, []string{"3d:3d/m.glb:output", "audio:audio/x.flac:output", "gifs:/v.mp4:output",
		"images:s/a.webp:output", "images:/b.webp:temp", "latents:/l.latent:output",
		"model:3d/n.obj:output", "result:/m.glb:output"}, got, "3D files given as strings count, as 0.38's jobs API normalises them")
	require.Equal(t, "video/h264-mp4", files[2].Format)
	require.True(t, files[3].Animated)
	require.True(t, files[4].Animated)
	require.False(t, files[0].Animated)
	require.Equal(t, []string{"hello", "world"}, o.Text())
	require.Nil(t, NodeOutput{}.Text())
	require.Equal(t, "s/a.webp [output]", files[3].LoadImageValue())
	require.Equal(t, "x.png", FileRef{Filename: "x.png", Type: "input"}.LoadImageValue())
}

func TestViewStreamsAndUpload(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t)
	f.handle("GET /view", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Disposition", `filename="out.png"`)
		_, _ = io.WriteString(w, "PNGDATA")
	})
	f.handle("POST /upload/image", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		file, hdr, err := r.FormFile("image")
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		data, _ := io.ReadAll(file)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"name":      hdr.Filename + "|" + string(data) + "|" + r.FormValue("overwrite") + "|" + r.FormValue("original_ref"),
			"subfolder": r.FormValue("subfolder"), "type": r.FormValue("type")})
	})
	f.handle("POST /upload/mask", f.routes["POST /upload/image"])
	c := newTestClient(t, f.srv.URL)
	ctx := context.Background()

	file, err := c.View(ctx, FileRef{Filename: "out.png", Subfolder: "sub", Type: "output"}, &ViewOptions{Preview: "webp;90", Channel: "rgb"})
	require.NoError(t, err)
	data, err := io.ReadAll(file.Body)
	require.NoError(t, err)
	require.NoError(t, file.Body.Close())
	require.Equal(t, "PNGDATA", string(data))
	require.Equal(t, "image/png", file.ContentType)
	require.Equal(t, int64(7), file.Size)
	require.Equal(t, "out.png", file.Filename)
	require.Equal(t, "channel=rgb&filename=out.png&preview=webp%3B90&subfolder=sub&type=output", f.last().Query)

	ref, err := c.UploadImage(ctx, UploadRequest{Name: "in.png", Body: strings.NewReader("BYTES"), Subfolder: "up", Overwrite: true})
	require.NoError(t, err)
	require.Equal(t, FileRef{Filename: "in.png|BYTES|true|", Subfolder: "up", Type: "input"}, ref)

	ref, err = c.UploadMask(ctx, UploadRequest{Name: "mask.png", Body: strings.NewReader("M")}, FileRef{Filename: "in.png"})
	require.NoError(t, err)
	require.Equal(t, `mask.png|M||{"filename":"in.png","subfolder":"","type":"input"}`, ref.Filename)

	_, err = c.UploadImage(ctx, UploadRequest{Name: "x.png", Body: strings.NewReader(""), Type: "models"})
	require.Error(t, err)

	// A failing body reader surfaces as the upload's error, and the writer goroutine ends.
	_, err = c.UploadImage(ctx, UploadRequest{Name: "x.png", Body: io.MultiReader(strings.NewReader("abc"), errReader{})})
	require.ErrorContains(t, err, "boom")
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }
