package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/api/apiclient"
	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
	"github.com/comfyq/comfyq/internal/fixtures"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	_ "github.com/comfyq/comfyq/storage/file"
	_ "github.com/comfyq/comfyq/storage/s3"
	"github.com/comfyq/comfyq/worker"
)

const (
	userKey  = "user-key-0123456789abcdef"
	adminKey = "admin-key-0123456789abcdef"
)

// simModel is the checkpoint the fixture workflows load; the simulator offers it.
const simModel = "v1-5-pruned-emaonly-fp16.safetensors"

type bundle struct {
	ctx   context.Context
	rdb   redis.UniversalClient
	store storage.Store
	srv   *api.Server
	ts    *httptest.Server
	url   string
	cfg   api.Config
}

type setupOpts struct {
	s3     bool                  // real S3 instead of a file store without URLs
	worker bool                  // a simulated ComfyUI node and a worker
	sim    comfysim.Options      // simulator options (with worker)
	config func(cfg *api.Config) // adjusts the server's configuration
	redis  redis.UniversalClient // an existing Redis instead of a private one
	store  storage.Store         // an existing store
	logger *slog.Logger
}

func testLogger() *slog.Logger {
	if os.Getenv("COMFYQ_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// objectInfo reads the object_info fixture of ComfyUI 0.3.64.
func objectInfo(t testing.TB) func(ctx context.Context) (comfy.ObjectInfo, error) {
	info, err := comfy.ParseObjectInfo(fixtures.ReadObjectInfo(t))
	require.NoError(t, err)
	return func(context.Context) (comfy.ObjectInfo, error) { return info, nil }
}

func setup(t testing.TB, o setupOpts) *bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	rdb := o.redis
	if rdb == nil {
		var err error
		rdb, err = producer.OpenRedis(testenv.NewRedis(t))
		require.NoError(t, err)
		t.Cleanup(func() { rdb.Close() })
	}
	store := o.store
	if store == nil {
		u := "file://" + t.TempDir()
		if o.s3 {
			u = testenv.S3URL(t)
		}
		var err error
		store, err = storage.Open(ctx, u)
		require.NoError(t, err)
	}
	cfg := api.Config{
		Redis:      rdb,
		Storage:    store,
		ObjectInfo: objectInfo(t),
		APIKeys:    []string{userKey},
		AdminKeys:  []string{adminKey},
		Logger:     o.logger,
		Heartbeat:  time.Second,
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	if o.config != nil {
		o.config(&cfg)
	}
	srv, err := api.New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	b := &bundle{ctx: ctx, rdb: rdb, store: store, srv: srv, ts: ts, url: ts.URL, cfg: cfg}
	if o.worker {
		startWorker(t, b, o.sim)
	}
	return b
}

// startWorker runs a simulated ComfyUI node and a worker on it until the test ends.
func startWorker(t testing.TB, b *bundle, simOpts comfysim.Options) {
	t.Helper()
	if simOpts.Models == nil {
		simOpts.Models = []string{simModel, "sim-v1-5.safetensors"}
	}
	_, simURL := simtest.NewServer(t, simOpts)
	runWorker(t, worker.Config{
		Redis:          b.rdb,
		Storage:        b.store,
		Nodes:          []worker.NodeConfig{{URL: simURL, Name: "sim"}},
		HealthInterval: 100 * time.Millisecond,
		StallTimeout:   2 * time.Second,
		ShutdownGrace:  5 * time.Second,
		Depth:          2, // fixed: tests bound orders by it
		Logger:         testLogger(),
	})
}

// runWorker runs a worker of cfg until the test ends, and checks that it stops cleanly.
func runWorker(t testing.TB, cfg worker.Config) {
	t.Helper()
	w, err := worker.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop within 30s")
		}
	})
}

// response is a decoded HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	require.NoError(t, dec.Decode(v), "body: %s", r.body)
}

// apiError decodes an error body, checking its shape: an "error" object with a code and
// a message, and nothing else at the top level.
func (r response) apiError(t testing.TB) api.ErrorInfo {
	t.Helper()
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(r.body, &raw), "error body: %s", r.body)
	require.Len(t, raw, 1, "error body has only \"error\": %s", r.body)
	var eb api.ErrorBody
	r.json(t, &eb)
	require.NotEmpty(t, eb.Error.Code, "error code: %s", r.body)
	require.NotEmpty(t, eb.Error.Message, "error message: %s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	return eb.Error
}

type reqOpt func(*http.Request)

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

// withHost sends the request with another Host header than the server's address.
func withHost(host string) reqOpt { return func(r *http.Request) { r.Host = host } }

// do sends a request with key as Bearer token (none if empty). A body that is a string
// or []byte is sent as is; anything else as JSON.
func (b *bundle) do(t testing.TB, method, path, key string, body any, opts ...reqOpt) response {
	t.Helper()
	var rd io.Reader
	isJSON := false
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
		isJSON = true
	case []byte:
		rd = bytes.NewReader(v)
		isJSON = true
	default:
		data, err := json.Marshal(v)
		require.NoError(t, err)
		rd = bytes.NewReader(data)
		isJSON = true
	}
	req, err := http.NewRequestWithContext(b.ctx, method, b.url+path, rd)
	require.NoError(t, err)
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// submit posts a job and returns the 202 answer.
func (b *bundle) submit(t testing.TB, spec any, opts ...reqOpt) api.Accepted {
	t.Helper()
	r := b.do(t, "POST", "/v1/jobs", userKey, spec, opts...)
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	var acc api.Accepted
	r.json(t, &acc)
	return acc
}

func (b *bundle) getJob(t testing.TB, id string) *job.Job {
	t.Helper()
	r := b.do(t, "GET", "/v1/jobs/"+id, userKey, nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	var j job.Job
	r.json(t, &j)
	return &j
}

// waitJob polls the job until it ends.
func (b *bundle) waitJob(t testing.TB, id string) *job.Job {
	t.Helper()
	c := b.client(t, userKey)
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	j, err := c.Wait(ctx, id)
	require.NoError(t, err, "job %s did not end", id)
	return j
}

func (b *bundle) client(t testing.TB, key string) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(b.url, key, nil)
	require.NoError(t, err)
	return c
}

// fetch GETs an absolute URL (an output URL) with an optional key.
func fetch(t testing.TB, ctx context.Context, rawURL, key string) (int, []byte) {
	t.Helper()
	_, err := url.Parse(rawURL)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, "GET", rawURL, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, data
}

func (b *bundle) object(t testing.TB, key string) []byte {
	t.Helper()
	rc, _, err := b.store.Get(b.ctx, key)
	require.NoError(t, err)
	defer rc.Close()
	data, err := io.ReadAll(rc)
	require.NoError(t, err)
	return data
}

// output reads an output's object through the store, from the key and bucket the
// Job JSON gives.
func (b *bundle) output(t testing.TB, o job.Output) []byte {
	t.Helper()
	key, ok := storage.Unlocate(b.store, storage.Location{Bucket: o.Bucket, Key: o.Key})
	require.True(t, ok, "output %s/%s is outside the store %s", o.Bucket, o.Key, b.store)
	return b.object(t, key)
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	return fixtures.ReadWorkflow(t, name)
}

// imageWorkflow makes one small PNG with the simulator's core nodes.
const imageWorkflow = `{
 "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 16711680}},
 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "api"}}
}`

// samplerWorkflow is a txt2img graph whose KSampler reports progress step by step.
const samplerWorkflow = `{
 "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "` + simModel + `"}},
 "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
 "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
 "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
 "3": {"class_type": "KSampler", "inputs": {"seed": 7, "steps": 8, "cfg": 7, "sampler_name": "euler", "scheduler": "normal",
       "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
 "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
 "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "fox"}}
}`

func jsonRaw(s string) json.RawMessage { return json.RawMessage(s) }

// pngBase64 is a 1x1 PNG, for submissions that need a real image.
const pngBase64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
