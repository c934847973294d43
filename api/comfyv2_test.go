package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"lukechampine.com/blake3"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/worker"
)

const otherKey = "other-key-0123456789abcdef"

func txt2img(t testing.TB) json.RawMessage {
	t.Helper()
	data, err := os.ReadFile("../cmd/comfyq/examples/txt2img.json")
	require.NoError(t, err)
	return data
}

// lockedBuffer collects logs from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// promptRecorder sits between the worker and the simulated node and keeps every
// POST /prompt body, to see what the node received.
type promptRecorder struct {
	mu      sync.Mutex
	prompts [][]byte
}

func (p *promptRecorder) bodies() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(bytes.Join(p.prompts, []byte("\n")))
}

func recordingProxy(t testing.TB, target string) (string, *promptRecorder) {
	u, err := url.Parse(target)
	require.NoError(t, err)
	rec := &promptRecorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/prompt" {
			body, _ := io.ReadAll(r.Body)
			rec.mu.Lock()
			rec.prompts = append(rec.prompts, body)
			rec.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL, rec
}

// v2Stack is an API with the v2 seal key and a worker on a simulated node behind a
// recording proxy, all logging into one buffer.
type v2Stack struct {
	*bundle
	sim     *comfysim.Server
	logs    *lockedBuffer
	prompts *promptRecorder
}

func newV2Stack(t *testing.T, s3 bool, sim comfysim.Options) *v2Stack {
	t.Helper()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sealKey := make([]byte, 32)
	_, _ = rand.Read(sealKey)
	b := setup(t, setupOpts{s3: s3, logger: logger, config: func(c *api.Config) {
		c.SealKey = sealKey
		c.APIKeys = append(c.APIKeys, otherKey)
	}})
	if sim.Models == nil {
		sim.Models = []string{simModel, "sim-v1-5.safetensors"}
	}
	simServer, simURL := simtest.NewServer(t, sim)
	proxyURL, prompts := recordingProxy(t, simURL)
	runWorker(t, worker.Config{
		Redis: b.rdb, Storage: b.store, Nodes: []worker.NodeConfig{{URL: proxyURL, Name: "sim"}},
		HealthInterval: 100 * time.Millisecond, StallTimeout: 2 * time.Second, ShutdownGrace: 5 * time.Second,
		SealKey: sealKey, Logger: logger,
	})
	return &v2Stack{bundle: b, sim: simServer, logs: logs, prompts: prompts}
}

// v2Job decodes a Job answer, checking that every required field of the contract is
// there (null where it may be).
func v2Job(t testing.TB, r response) map[string]any {
	t.Helper()
	var m map[string]any
	r.json(t, &m)
	for _, k := range []string{"id", "status", "created_at", "started_at", "completed_at", "expires_at",
		"queue_position", "progress", "outputs", "error", "urls"} {
		require.Contains(t, m, k, "Job has %s: %s", k, r.body)
	}
	require.NotNil(t, m["outputs"], "outputs is an array, never null")
	return m
}

func (b *bundle) waitV2(t testing.TB, id string) map[string]any {
	t.Helper()
	for {
		m := v2Job(t, b.do(t, "GET", "/api/v2/jobs/"+id, userKey, nil))
		switch m["status"] {
		case "succeeded", "failed", "canceled", "expired":
			return m
		}
		select {
		case <-b.ctx.Done():
			t.Fatalf("job %s did not end: %v", id, m["status"])
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// redisDump returns every key and value of the Redis database, whatever their type.
func redisDump(t testing.TB, ctx context.Context, rdb redis.UniversalClient) string {
	t.Helper()
	var b strings.Builder
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		b.WriteString(k + "\n")
		typ, err := rdb.Type(ctx, k).Result()
		require.NoError(t, err)
		var v any
		switch typ {
		case "string":
			v, err = rdb.Get(ctx, k).Result()
		case "hash":
			v, err = rdb.HGetAll(ctx, k).Result()
		case "list":
			v, err = rdb.LRange(ctx, k, 0, -1).Result()
		case "set":
			v, err = rdb.SMembers(ctx, k).Result()
		case "zset":
			v, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "stream":
			v, err = rdb.XRange(ctx, k, "-", "+").Result()
		case "none":
			continue
		default:
			t.Fatalf("key %s has a type the dump does not read: %s", k, typ)
		}
		if err != nil && err != redis.Nil {
			require.NoError(t, err)
		}
		fmt.Fprintf(&b, "%v\n", v)
	}
	require.NoError(t, iter.Err())
	return b.String()
}

func TestV2JobLifecycle(t *testing.T) {
	t.Parallel()
	st := newV2Stack(t, true, comfysim.Options{StepDelay: 30 * time.Millisecond, PreviewMethod: "auto"})
	partnerKey := "comfyui-partner-" + hex.EncodeToString(randBytes(12))
	body := map[string]any{"workflow": txt2img(t), "extra_data": map[string]any{"api_key_comfy_org": partnerKey}}
	idem := withHeader("Idempotency-Key", "lifecycle-"+hex.EncodeToString(randBytes(4)))

	r := st.do(t, "POST", "/api/v2/jobs", userKey, body, idem)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	created := v2Job(t, r)
	id := created["id"].(string)
	require.Empty(t, r.header.Get("Idempotency-Replayed"))
	require.Contains(t, []any{"queued", "running"}, created["status"])
	urls := created["urls"].(map[string]any)
	require.Equal(t, "/api/v2/jobs/"+id+"/events", urls["events"])

	// Same key, same body: the same job, replayed. Same key, another body: refused.
	r = st.do(t, "POST", "/api/v2/jobs", userKey, body, idem)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, "true", r.header.Get("Idempotency-Replayed"))
	require.Equal(t, id, v2Job(t, r)["id"])
	other := map[string]any{"workflow": txt2img(t)}
	r = st.do(t, "POST", "/api/v2/jobs", userKey, other, idem)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "body: %s", r.body)
	require.Equal(t, "idempotency_key_reuse", r.apiError(t).Code)

	// Live events to the terminal status.
	events := st.readEvents(t, id)
	require.NotEmpty(t, events)
	require.Equal(t, "status", events[0].kind, "the stream starts with the status")
	lastEv := events[len(events)-1]
	require.Equal(t, "status", lastEv.kind)
	require.Equal(t, "succeeded", lastEv.data["status"], "events: %v", events)
	kinds := map[string]int{}
	for _, e := range events {
		kinds[e.kind]++
	}
	require.Positive(t, kinds["output"], "an output event: %v", events)
	require.Positive(t, kinds["progress"], "a progress event: %v", events)
	require.Positive(t, kinds["preview"], "a preview event: %v", kinds)
	for _, e := range events {
		if e.kind == "preview" {
			require.Equal(t, "image/jpeg", e.data["content_type"])
			require.Equal(t, "3", e.data["node_id"], "the KSampler's preview")
			img, err := base64.StdEncoding.DecodeString(e.data["data_base64"].(string))
			require.NoError(t, err)
			require.Equal(t, []byte{0xff, 0xd8}, img[:2], "a JPEG")
		}
	}

	done := st.waitV2(t, id)
	require.Equal(t, "succeeded", done["status"])
	require.NotNil(t, done["completed_at"])
	require.NotNil(t, done["started_at"])
	require.Nil(t, done["error"])
	outs := done["outputs"].([]any)
	require.Len(t, outs, 1)
	out := outs[0].(map[string]any)
	require.Equal(t, "9", out["node_id"])
	require.Equal(t, "image", out["type"])
	require.Equal(t, "image/png", out["content_type"])
	assetID := out["id"].(string)

	// The same job through /v1.
	v1 := st.getJob(t, id)
	require.Equal(t, id, v1.ID)
	require.Len(t, v1.Outputs, 1)

	// The output is an asset: metadata, then a redirect to a presigned URL on S3.
	r = st.do(t, "GET", "/api/v2/assets/"+assetID, userKey, nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(st.ctx, "GET", st.url+"/api/v2/assets/"+assetID+"/content", nil)
	req.Header.Set("Authorization", "Bearer "+userKey)
	resp, err := noRedirect.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	status, data := fetch(t, st.ctx, resp.Header.Get("Location"), "")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, st.output(t, v1.Outputs[0]), data, "the asset is the output's bytes")
	require.Equal(t, blakeOf(data), out["hash"], "outputs carry their blake3")

	r = st.do(t, "GET", "/api/v2/jobs/"+id+"/workflow", userKey, nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	var wf api.V2JobWorkflow
	r.json(t, &wf)
	require.Equal(t, "api", wf.Format)
	require.Contains(t, string(wf.Workflow), "KSampler")

	// Cancel is idempotent on a finished job: the terminal state.
	r = st.do(t, "POST", "/api/v2/jobs/"+id+"/cancel", userKey, nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, "succeeded", v2Job(t, r)["status"])

	// The partner key reached the node's extra_data, and nowhere else.
	require.Contains(t, st.prompts.bodies(), `"api_key_comfy_org":"`+partnerKey+`"`)
	require.NotContains(t, redisDump(t, st.ctx, st.rdb), partnerKey, "the partner key is in Redis")
	require.NotContains(t, st.logs.String(), partnerKey, "the partner key is in the logs")
	require.NotContains(t, string(r.body), partnerKey)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

type v2Event struct {
	kind string
	data map[string]any
}

// streamEvents follows a job's v2 event stream, sending each event until the server
// ends the stream (then it closes the channel).
func (b *bundle) streamEvents(t testing.TB, id string) <-chan v2Event {
	t.Helper()
	req, err := http.NewRequestWithContext(b.ctx, "GET", b.url+"/api/v2/jobs/"+id+"/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+userKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	out := make(chan v2Event, 64)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		var kind string
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				kind = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var m map[string]any
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m) != nil {
					m = map[string]any{"malformed": line}
				}
				out <- v2Event{kind: kind, data: m}
			case strings.HasPrefix(line, "id:"):
				out <- v2Event{kind: "id-line", data: map[string]any{"line": line}}
			}
		}
	}()
	return out
}

// readEvents follows a job's v2 event stream until the server ends it.
func (b *bundle) readEvents(t testing.TB, id string) []v2Event {
	t.Helper()
	var out []v2Event
	for e := range b.streamEvents(t, id) {
		require.NotEqual(t, "id-line", e.kind, "v2 events carry no id")
		require.NotContains(t, e.data, "malformed")
		out = append(out, e)
	}
	return out
}

func TestV2CancelRunning(t *testing.T) {
	t.Parallel()
	st := newV2Stack(t, false, comfysim.Options{StepDelay: 200 * time.Millisecond})
	r := st.do(t, "POST", "/api/v2/jobs", userKey, map[string]any{"workflow": txt2img(t)})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	id := v2Job(t, r)["id"].(string)
	for {
		m := v2Job(t, st.do(t, "GET", "/api/v2/jobs/"+id, userKey, nil))
		if m["status"] == "running" {
			break
		}
		require.Equal(t, "queued", m["status"])
		time.Sleep(20 * time.Millisecond)
	}
	r = st.do(t, "POST", "/api/v2/jobs/"+id+"/cancel", userKey, nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, "canceling", v2Job(t, r)["status"], "a running job is canceling until its node confirms")
	r = st.do(t, "POST", "/api/v2/jobs/"+id+"/cancel", userKey, nil)
	require.Equal(t, http.StatusOK, r.status, "cancel again: %s", r.body)
	done := st.waitV2(t, id)
	require.Equal(t, "canceled", done["status"])
	require.Equal(t, "canceled", done["error"].(map[string]any)["code"])
}

func TestV2SubmitRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{config: func(c *api.Config) { c.MaxQueueDepth = 1 }})
	wf := txt2img(t)
	cases := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"no workflow", map[string]any{}, 400, "invalid_request"},
		{"workflow not an object", map[string]any{"workflow": []int{1}}, 400, "invalid_request"},
		{"reserved field", map[string]any{"workflow": wf, "webhook_url": "https://x"}, 400, "invalid_request"},
		{"extra_data of another shape", map[string]any{"workflow": wf, "extra_data": map[string]any{"other": 1}}, 400, "invalid_request"},
		{"partner key without a seal key", map[string]any{"workflow": wf, "extra_data": map[string]any{"api_key_comfy_org": "k"}}, 400, "invalid_request"},
		{"UI format", map[string]any{"workflow": json.RawMessage(readFixture(t, "default_graph.ui.json"))}, 422, "workflow_format_ui"},
		{"link to a missing node", map[string]any{"workflow": json.RawMessage(`{"1": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "x"}}}`)}, 422, "invalid_workflow"},
		{"unknown class", map[string]any{"workflow": json.RawMessage(`{"1": {"class_type": "NoSuchNode", "inputs": {}}}`)}, 422, "invalid_workflow"},
		{"missing asset", map[string]any{"workflow": json.RawMessage(`{"1": {"class_type": "LoadImage", "inputs": {"image": {"__type": "core/ASSET", "info": {"id": "0190a5a4-0000-7000-8000-000000000000"}}}}}`)}, 422, "missing_asset"},
	}
	for _, c := range cases {
		r := b.do(t, "POST", "/api/v2/jobs", userKey, c.body)
		require.Equal(t, c.status, r.status, "%s: %s", c.name, r.body)
		e := r.apiError(t)
		require.Equal(t, c.code, e.Code, "%s: %s", c.name, r.body)
		if c.code == "invalid_workflow" {
			ne := e.Details.(map[string]any)["node_errors"].(map[string]any)
			require.Contains(t, ne, "1", "%s: per-node details: %s", c.name, r.body)
		}
	}
	r := b.do(t, "POST", "/api/v2/jobs", userKey, "{}", withHeader("Content-Type", "text/plain"))
	require.Equal(t, http.StatusUnsupportedMediaType, r.status)
	r = b.do(t, "GET", "/api/v2/jobs/"+"0190a5a4-0000-7000-8000-000000000000", userKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	require.Equal(t, "not_found", r.apiError(t).Code)
	r = b.do(t, "GET", "/api/v2/jobs/x", "", nil)
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, "unauthorized", r.apiError(t).Code)
	r = b.do(t, "GET", "/api/v2/jobs/x/events", userKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)

	// No worker: the first job waits, the queue is at its bound of 1.
	r = b.do(t, "POST", "/api/v2/jobs", userKey, map[string]any{"workflow": wf})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	first := v2Job(t, r)
	require.Equal(t, json.Number("0"), first["queue_position"], "next in line")
	r = b.do(t, "POST", "/api/v2/jobs", userKey, map[string]any{"workflow": wf}, withHeader("Idempotency-Key", "full"))
	require.Equal(t, http.StatusTooManyRequests, r.status, "body: %s", r.body)
	require.Equal(t, "queue_full", r.apiError(t).Code)
	require.NotEmpty(t, r.header.Get("Retry-After"))
	// A queued job cancels at once, which frees the queue.
	id := first["id"].(string)
	r = b.do(t, "POST", "/api/v2/jobs/"+id+"/cancel", userKey, nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, "canceled", v2Job(t, r)["status"])
	// A refused request leaves its key free: the retry is not a replay.
	r = b.do(t, "POST", "/api/v2/jobs", userKey, map[string]any{"workflow": wf}, withHeader("Idempotency-Key", "full"))
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Empty(t, r.header.Get("Idempotency-Replayed"))
}

// The full validator's findings come back per node, in the contract's node_errors and
// as ComfyUI would have answered, before anything is queued.
func TestV2ValidationDetails(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	var wf map[string]map[string]any
	require.NoError(t, json.Unmarshal(txt2img(t), &wf))
	wf["3"]["inputs"].(map[string]any)["steps"] = 100000 // KSampler's max is 10000
	wf["99"] = map[string]any{"class_type": "NoSuchNode", "inputs": map[string]any{}}
	r := b.do(t, "POST", "/api/v2/jobs", userKey, map[string]any{"workflow": wf})
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "body: %s", r.body)
	e := r.apiError(t)
	require.Equal(t, "invalid_workflow", e.Code)
	require.Contains(t, e.Message, "steps", "the message names the problem")
	var d struct {
		NodeErrors map[string][]struct {
			Field, Reason, Message, Type, Details string
			ClassType                             string `json:"class_type"`
		} `json:"node_errors"`
		ComfyUI comfy.ValidationError `json:"comfyui"`
	}
	data, err := json.Marshal(e.Details)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &d), "details: %s", data)

	require.Len(t, d.NodeErrors["3"], 1, "details: %s", data)
	steps := d.NodeErrors["3"][0]
	require.Equal(t, "steps", steps.Field)
	require.Equal(t, "value_out_of_range", steps.Reason)
	require.Equal(t, "value_bigger_than_max", steps.Type)
	require.Equal(t, "KSampler", steps.ClassType)
	require.NotEmpty(t, steps.Message)
	require.Len(t, d.NodeErrors["99"], 1, "details: %s", data)
	require.Equal(t, "unknown_class_type", d.NodeErrors["99"][0].Reason)
	require.Equal(t, "missing_node_type", d.NodeErrors["99"][0].Type)

	// ComfyUI's own shape, as a node would have answered POST /prompt.
	require.Equal(t, "KSampler", d.ComfyUI.NodeErrors["3"].ClassType)
	require.Equal(t, "value_bigger_than_max", d.ComfyUI.NodeErrors["3"].Errors[0].Type)
	require.Equal(t, "steps", d.ComfyUI.NodeErrors["3"].Errors[0].ExtraInfo["input_name"])
	require.Equal(t, "missing_node_type", d.ComfyUI.NodeErrors["99"].Errors[0].Type)

	// Nothing was queued or recorded.
	n, err := b.rdb.LLen(b.ctx, "asynq:{default}:pending").Result()
	require.NoError(t, err)
	require.Zero(t, n)
	r = b.do(t, "GET", "/v1/jobs", adminKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	var l api.JobList
	r.json(t, &l)
	require.Empty(t, l.Jobs)

	// A graph without an output node is a problem of the whole graph, under "".
	r = b.do(t, "POST", "/api/v2/jobs", userKey, map[string]any{"workflow": json.RawMessage(
		`{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}}`)})
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "body: %s", r.body)
	ne := r.apiError(t).Details.(map[string]any)["node_errors"].(map[string]any)
	require.Contains(t, ne, "", "body: %s", r.body)
	require.Equal(t, "prompt_no_outputs", ne[""].([]any)[0].(map[string]any)["type"])
}

func pngBytes(t testing.TB, seed uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = seed + uint8(i)
	}
	img.Set(0, 0, color.RGBA{R: seed, A: 255})
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

func blakeOf(data []byte) string {
	sum := blake3.Sum256(data)
	return "blake3:" + hex.EncodeToString(sum[:])
}

// upload posts a multipart asset.
func (b *bundle) upload(t testing.TB, key string, data []byte, fields map[string]string) response {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, k := range []string{"content_type", "file_path", "expected_hash", "tags"} {
		if v, ok := fields[k]; ok {
			require.NoError(t, mw.WriteField(k, v))
		}
	}
	fw, err := mw.CreateFormFile("file", "upload.png")
	require.NoError(t, err)
	_, _ = fw.Write(data)
	require.NoError(t, mw.Close())
	return b.do(t, "POST", "/api/v2/assets", key, body.Bytes(), withHeader("Content-Type", mw.FormDataContentType()))
}

func countObjects(t testing.TB, dir string) int {
	t.Helper()
	n := 0
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0
	}
	require.NoError(t, err)
	for _, e := range entries {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

func TestV2Assets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := setup(t, setupOpts{store: openFileStore(t, dir), config: func(c *api.Config) {
		c.APIKeys = append(c.APIKeys, otherKey)
		c.MaxAssetBytes = 4096
	}})
	data := pngBytes(t, 3)
	hash := blakeOf(data)
	fields := map[string]string{"content_type": "image/png", "file_path": "photo.png", "expected_hash": hash, "tags": "input"}

	r := b.upload(t, userKey, data, fields)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	var a api.V2Asset
	r.json(t, &a)
	require.Equal(t, hash, *a.Hash)
	require.True(t, *a.CreatedNew)
	require.EqualValues(t, len(data), a.SizeBytes)
	require.Equal(t, "/api/v2/assets/"+a.ID+"/content", a.URL, "a store without URLs: the API serves the bytes (relative without a public URL)")
	require.Equal(t, 1, countObjects(t, dir+"/assets"))

	// The same bytes again, by another tenant: a new asset over the same blob, answered
	// as new (the tenant does not learn that someone had them).
	r = b.upload(t, otherKey, data, fields)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	var again api.V2Asset
	r.json(t, &again)
	require.True(t, *again.CreatedNew)
	require.NotEqual(t, a.ID, again.ID)
	require.Equal(t, 1, countObjects(t, dir+"/assets"), "stored once")

	// A wrong expected_hash stores nothing; too large is 413.
	r = b.upload(t, userKey, pngBytes(t, 9), fields)
	require.Equal(t, http.StatusConflict, r.status, "body: %s", r.body)
	require.Equal(t, "hash_mismatch", r.apiError(t).Code)
	require.Equal(t, 1, countObjects(t, dir+"/assets"), "nothing stored on a mismatch")
	r = b.upload(t, userKey, bytes.Repeat([]byte{1}, 5000), map[string]string{"content_type": "image/png", "file_path": "big.png"})
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status, "body: %s", r.body)
	require.Equal(t, "too_large", r.apiError(t).Code)
	require.Equal(t, 1, countObjects(t, dir+"/assets"))
	r = b.upload(t, userKey, data, map[string]string{"file_path": "x.png"})
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "invalid_request", r.apiError(t).Code)

	// By hash: a tenant that never uploaded the bytes sees nothing.
	const thirdKey = adminKey
	r = b.do(t, "HEAD", "/api/v2/assets/by-hash/"+hash, userKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	r = b.do(t, "HEAD", "/api/v2/assets/by-hash/blake3:"+strings.Repeat("0", 64), userKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	r = b.do(t, "POST", "/api/v2/assets/from-hash", userKey, map[string]any{"hash": hash, "file_path": "again.png"})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	var minted api.V2Asset
	r.json(t, &minted)
	require.Equal(t, "again.png", *minted.FilePath)
	r = b.do(t, "POST", "/api/v2/assets/from-hash", userKey, map[string]any{"hash": "sha256:x"})
	require.Equal(t, http.StatusBadRequest, r.status)

	// Another tenant's asset is a 404 like a missing one.
	r = b.do(t, "GET", "/api/v2/assets/"+a.ID, otherKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	require.Equal(t, "not_found", r.apiError(t).Code)
	r = b.do(t, "GET", "/api/v2/assets/"+a.ID, thirdKey, nil)
	require.Equal(t, http.StatusOK, r.status, "an admin key sees every asset")

	// Content: whole, a range, a range outside.
	r = b.do(t, "GET", "/api/v2/assets/"+a.ID+"/content", userKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, data, r.body)
	r = b.do(t, "GET", "/api/v2/assets/"+a.ID+"/content", userKey, nil, withHeader("Range", "bytes=2-9"))
	require.Equal(t, http.StatusPartialContent, r.status)
	require.Equal(t, data[2:10], r.body)
	require.Equal(t, fmt.Sprintf("bytes 2-9/%d", len(data)), r.header.Get("Content-Range"))
	r = b.do(t, "GET", "/api/v2/assets/"+a.ID+"/content", userKey, nil, withHeader("Range", "bytes=-4"))
	require.Equal(t, http.StatusPartialContent, r.status)
	require.Equal(t, data[len(data)-4:], r.body)
	r = b.do(t, "GET", "/api/v2/assets/"+a.ID+"/content", userKey, nil, withHeader("Range", "bytes=99999-"))
	require.Equal(t, http.StatusRequestedRangeNotSatisfiable, r.status)
	require.Equal(t, "range_not_satisfiable", r.apiError(t).Code)

	// Delete: the blob stays while another asset uses it, and goes with the last.
	for _, del := range []struct{ key, id string }{{userKey, a.ID}, {userKey, minted.ID}} {
		r = b.do(t, "DELETE", "/api/v2/assets/"+del.id, del.key, nil)
		require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
	}
	r = b.do(t, "GET", "/api/v2/assets/"+a.ID, userKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	r = b.do(t, "HEAD", "/api/v2/assets/by-hash/"+hash, userKey, nil)
	require.Equal(t, http.StatusNotFound, r.status, "the tenant has no asset over the blob any more")
	require.Equal(t, 1, countObjects(t, dir+"/assets"), "the other tenant's asset keeps the blob")
	r = b.do(t, "DELETE", "/api/v2/assets/"+again.ID, otherKey, nil)
	require.Equal(t, http.StatusNoContent, r.status)
	require.Equal(t, 0, countObjects(t, dir+"/assets"), "the blob goes with its last asset")

	// An upload retried with its Idempotency-Key is the same asset.
	key := withHeader("Idempotency-Key", "upload-1")
	plain := map[string]string{"content_type": "image/png", "file_path": "k.png"}
	upload := func(data []byte) response {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for k, v := range plain {
			require.NoError(t, mw.WriteField(k, v))
		}
		fw, err := mw.CreateFormFile("file", "k.png")
		require.NoError(t, err)
		_, _ = fw.Write(data)
		require.NoError(t, mw.Close())
		return b.do(t, "POST", "/api/v2/assets", userKey, body.Bytes(), withHeader("Content-Type", mw.FormDataContentType()), key)
	}
	r = upload(data)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	var first api.V2Asset
	r.json(t, &first)
	r = upload(data)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, "true", r.header.Get("Idempotency-Replayed"))
	var replayed api.V2Asset
	r.json(t, &replayed)
	require.Equal(t, first.ID, replayed.ID)
	r = upload(pngBytes(t, 77))
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "body: %s", r.body)
	require.Equal(t, "idempotency_key_reuse", r.apiError(t).Code)
	require.Equal(t, 1, countObjects(t, dir+"/assets"), "neither the replay nor the refusal stored a copy")
}

func TestV2AssetIntoLoadImage(t *testing.T) {
	t.Parallel()
	st := newV2Stack(t, false, comfysim.Options{})
	data := pngBytes(t, 42)
	r := st.upload(t, userKey, data, map[string]string{"content_type": "image/png", "file_path": "in.png"})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	var a api.V2Asset
	r.json(t, &a)
	wf := fmt.Sprintf(`{
	  "1": {"class_type": "LoadImage", "inputs": {"image": {"__type": "core/ASSET", "info": {"id": %q, "file_path": "in.png"}}}},
	  "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
	  "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "inv"}}}`, a.ID)
	r = st.do(t, "POST", "/api/v2/jobs", userKey, map[string]any{"workflow": json.RawMessage(wf)})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	id := v2Job(t, r)["id"].(string)
	done := st.waitV2(t, id)
	require.Equal(t, "succeeded", done["status"], "job: %v", done)
	out := done["outputs"].([]any)[0].(map[string]any)
	r = st.do(t, "GET", "/api/v2/assets/"+out["id"].(string)+"/content", userKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	img, err := png.Decode(bytes.NewReader(r.body))
	require.NoError(t, err)
	require.Equal(t, 8, img.Bounds().Dx(), "the node loaded the uploaded image")

	// Another tenant cannot use the asset.
	r = st.do(t, "POST", "/api/v2/jobs", otherKey, map[string]any{"workflow": json.RawMessage(wf)})
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "body: %s", r.body)
	require.Equal(t, "missing_asset", r.apiError(t).Code)
}

func openFileStore(t testing.TB, dir string) storage.Store {
	t.Helper()
	s, err := storage.Open(t.Context(), "file://"+dir)
	require.NoError(t, err)
	return s
}

// While a job waits, its stream sends a status each time its queue position changes.
func TestV2EventsQueuePosition(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{}) // no worker: jobs wait
	submit := func() string {
		r := b.do(t, "POST", "/api/v2/jobs", userKey, map[string]any{"workflow": txt2img(t)})
		require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
		return v2Job(t, r)["id"].(string)
	}
	first, second := submit(), submit()
	events := b.streamEvents(t, second)
	var statuses []v2Event
	next := func() v2Event {
		select {
		case e, ok := <-events:
			require.True(t, ok, "the stream ended early: %v", statuses)
			if e.kind == "status" {
				statuses = append(statuses, e)
			}
			return e
		case <-b.ctx.Done():
			t.Fatalf("no event: %v", statuses)
		}
		return v2Event{}
	}
	e := next()
	require.Equal(t, "status", e.kind)
	require.Equal(t, float64(1), e.data["queue_position"], "one job ahead")
	// The first job leaves the queue: the second is next.
	r := b.do(t, "POST", "/api/v2/jobs/"+first+"/cancel", userKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	e = next()
	require.Equal(t, "status", e.kind)
	require.Equal(t, float64(0), e.data["queue_position"], "statuses: %v", statuses)
	r = b.do(t, "POST", "/api/v2/jobs/"+second+"/cancel", userKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	for e := range events {
		if e.kind == "status" {
			statuses = append(statuses, e)
		}
	}
	last := statuses[len(statuses)-1]
	require.Equal(t, "canceled", last.data["status"], "the stream ends with the terminal status")
	require.Nil(t, last.data["queue_position"])
}

// Every /api/v2 route answers bad input with the contract's envelope and code.
func TestV2ErrorEnvelopes(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	const missing = "0190a5a4-0000-7000-8000-000000000000"
	routes := []struct{ method, path string }{
		{"POST", "/api/v2/jobs"}, {"GET", "/api/v2/jobs/" + missing}, {"GET", "/api/v2/jobs/" + missing + "/workflow"},
		{"POST", "/api/v2/jobs/" + missing + "/cancel"}, {"GET", "/api/v2/jobs/" + missing + "/events"},
		{"POST", "/api/v2/assets"}, {"POST", "/api/v2/assets/from-hash"}, {"GET", "/api/v2/assets/" + missing},
		{"GET", "/api/v2/assets/" + missing + "/content"}, {"DELETE", "/api/v2/assets/" + missing},
	}
	for _, rt := range routes {
		r := b.do(t, rt.method, rt.path, "", nil)
		require.Equal(t, http.StatusUnauthorized, r.status, "%s %s", rt.method, rt.path)
		require.Equal(t, "unauthorized", r.apiError(t).Code)
		r = b.do(t, rt.method, rt.path, "not-a-key-0123456789", nil)
		require.Equal(t, http.StatusUnauthorized, r.status, "%s %s", rt.method, rt.path)
	}
	for _, rt := range routes[1:5] {
		r := b.do(t, rt.method, rt.path, userKey, nil)
		require.Equal(t, http.StatusNotFound, r.status, "%s %s: %s", rt.method, rt.path, r.body)
		require.Equal(t, "not_found", r.apiError(t).Code)
	}
	for _, rt := range routes[7:] {
		r := b.do(t, rt.method, rt.path, userKey, nil)
		require.Equal(t, http.StatusNotFound, r.status, "%s %s: %s", rt.method, rt.path, r.body)
		require.Equal(t, "not_found", r.apiError(t).Code)
	}
	for _, path := range []string{"/api/v2/jobs", "/api/v2/assets/from-hash"} {
		r := b.do(t, "POST", path, userKey, "{", withHeader("Content-Type", "application/json"))
		require.Equal(t, http.StatusBadRequest, r.status, "%s: %s", path, r.body)
		require.Equal(t, "invalid_request", r.apiError(t).Code)
		r = b.do(t, "POST", path, userKey, "x", withHeader("Content-Type", "text/plain"))
		require.Equal(t, http.StatusUnsupportedMediaType, r.status)
		require.Equal(t, "unsupported_media_type", r.apiError(t).Code)
	}
	r := b.do(t, "POST", "/api/v2/assets", userKey, "x", withHeader("Content-Type", "text/plain"))
	require.Equal(t, http.StatusUnsupportedMediaType, r.status)
	r = b.do(t, "POST", "/api/v2/assets", userKey, "--x--", withHeader("Content-Type", "multipart/form-data; boundary=zz"))
	require.Equal(t, http.StatusBadRequest, r.status, "body: %s", r.body)
	require.Equal(t, "invalid_request", r.apiError(t).Code)
	r = b.do(t, "POST", "/api/v2/assets/from-hash", userKey, map[string]any{"hash": "blake3:" + strings.Repeat("a", 64)})
	require.Equal(t, http.StatusNotFound, r.status)
	require.Equal(t, "blob_not_found", r.apiError(t).Code)
	r = b.do(t, "HEAD", "/api/v2/assets/by-hash/md5:x", userKey, nil)
	require.Equal(t, http.StatusBadRequest, r.status)
	r = b.do(t, "GET", "/api/v2/assets/"+missing+"/other", userKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	r = b.do(t, "POST", "/api/v2/jobs", userKey, map[string]any{"workflow": txt2img(t)}, withHeader("Idempotency-Key", strings.Repeat("k", 300)))
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "invalid_request", r.apiError(t).Code)
}

// A job submitted through /v1 is readable through /api/v2, its outputs as assets.
func TestV2ReadsV1Jobs(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{worker: true})
	acc := b.submit(t, map[string]any{"workflow": json.RawMessage(imageWorkflow)})
	b.waitJob(t, acc.ID)
	m := v2Job(t, b.do(t, "GET", "/api/v2/jobs/"+acc.ID, userKey, nil))
	require.Equal(t, "succeeded", m["status"])
	out := m["outputs"].([]any)[0].(map[string]any)
	r := b.do(t, "GET", "/api/v2/assets/"+out["id"].(string)+"/content", userKey, nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, blakeOf(r.body), out["hash"])
	r = b.do(t, "GET", "/api/v2/jobs/"+acc.ID+"/workflow", userKey, nil)
	require.Equal(t, http.StatusNotFound, r.status, "a /v1 job's workflow is on /v1")
}

// A worker without the seal key fails a job that carries a partner-node key, saying
// why, rather than run it without its key.
func TestV2WorkerWithoutSealKey(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{worker: true, config: func(c *api.Config) { c.SealKey = randBytes(32) }})
	r := b.do(t, "POST", "/api/v2/jobs", userKey, map[string]any{"workflow": json.RawMessage(imageWorkflow),
		"extra_data": map[string]any{"api_key_comfy_org": "comfyui-partner-key"}})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	done := b.waitV2(t, v2Job(t, r)["id"].(string))
	require.Equal(t, "failed", done["status"])
	e := done["error"].(map[string]any)
	require.Equal(t, "invalid_request", e["code"])
	require.Contains(t, e["message"], "COMFYQ_SEAL_KEY")
}

// outputs fill as each output is committed: with slow downloads from the node, the job
// shows its first output while it is still running.
func TestV2OutputsAsCommitted(t *testing.T) {
	t.Parallel()
	st := newV2Stack(t, false, comfysim.Options{})
	st.sim.SetViewFault(comfysim.ViewFault{Delay: 300 * time.Millisecond})
	wf := `{
	 "1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 3, "color": 255}},
	 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "batch"}}}`
	r := st.do(t, "POST", "/api/v2/jobs", userKey, map[string]any{"workflow": json.RawMessage(wf)})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	id := v2Job(t, r)["id"].(string)
	// Each /view takes 300 ms: polling sees the job running with some outputs.
	var partial map[string]any
	for {
		m := v2Job(t, st.do(t, "GET", "/api/v2/jobs/"+id, userKey, nil))
		n := len(m["outputs"].([]any))
		if m["status"] == "running" && n > 0 && n < 3 && partial == nil {
			partial = m
		}
		if m["status"] == "succeeded" {
			require.Len(t, m["outputs"], 3)
			break
		}
		require.Contains(t, []any{"queued", "running"}, m["status"])
		time.Sleep(20 * time.Millisecond)
	}
	require.NotNil(t, partial, "the job showed its first outputs while running")
	out := partial["outputs"].([]any)[0].(map[string]any)
	r = st.do(t, "GET", "/api/v2/assets/"+out["id"].(string)+"/content", userKey, nil)
	require.Equal(t, http.StatusOK, r.status, "an output committed early is readable")
}

// A text output is an asset too: its bytes are the text.
func TestV2TextOutput(t *testing.T) {
	t.Parallel()
	st := newV2Stack(t, false, comfysim.Options{})
	wf := `{"3": {"class_type": "PreviewAny", "inputs": {"source": "hello from v2"}}}`
	r := st.do(t, "POST", "/api/v2/jobs", userKey, map[string]any{"workflow": json.RawMessage(wf)})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	done := st.waitV2(t, v2Job(t, r)["id"].(string))
	require.Equal(t, "succeeded", done["status"], "job: %v", done)
	var text map[string]any
	for _, o := range done["outputs"].([]any) {
		if m := o.(map[string]any); m["type"] == "text" {
			text = m
		}
	}
	require.NotNil(t, text, "outputs: %v", done["outputs"])
	require.Equal(t, blakeOf([]byte("hello from v2")), text["hash"])
	r = st.do(t, "GET", "/api/v2/assets/"+text["id"].(string)+"/content", userKey, nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, "hello from v2", string(r.body))
	require.Equal(t, text["url"], "/api/v2/assets/"+text["id"].(string)+"/content")
	r = st.do(t, "GET", "/api/v2/assets/"+text["id"].(string)+"/content", userKey, nil, withHeader("Range", "bytes=0-4"))
	require.Equal(t, http.StatusPartialContent, r.status)
	require.Equal(t, "hello", string(r.body))
}
