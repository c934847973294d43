package worker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	_ "github.com/comfyq/comfyq/storage/s3"
	"github.com/comfyq/comfyq/worker"
)

// bundle is what a worker test needs: a real Redis, real S3, a simulated ComfyUI node,
// a producer and a running worker.
type bundle struct {
	ctx      context.Context
	redisURL string
	rdb      redis.UniversalClient
	producer *producer.Client
	store    storage.Store
	sim      *comfysim.Server
	simURL   string
	stop     func() // stops the worker (drain) and waits for it
}

type setupOpts struct {
	sim      comfysim.Options
	worker   func(*worker.Config)
	noWorker bool
}

func setup(t *testing.T, o setupOpts) *bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	redisURL := testenv.NewRedis(t)
	rdb, err := producer.OpenRedis(redisURL)
	require.NoError(t, err)
	t.Cleanup(func() { rdb.Close() })
	store, err := storage.Open(ctx, testenv.S3URL(t))
	require.NoError(t, err)
	sim, simURL := simtest.NewServer(t, o.sim)
	p, err := producer.New(producer.Config{Redis: rdb})
	require.NoError(t, err)
	b := &bundle{ctx: ctx, redisURL: redisURL, rdb: rdb, producer: p, store: store, sim: sim, simURL: simURL, stop: func() {}}
	if !o.noWorker {
		b.stop = startWorker(t, b, o.worker)
	}
	return b
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("COMFYQ_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startWorker runs a worker on the bundle's node until the returned stop is called or
// the test ends.
func startWorker(t *testing.T, b *bundle, tweak func(*worker.Config)) func() {
	t.Helper()
	cfg := worker.Config{
		Redis:          b.rdb,
		Storage:        b.store,
		Nodes:          []worker.NodeConfig{{URL: b.simURL, Name: "sim"}},
		HealthInterval: 100 * time.Millisecond,
		StallTimeout:   2 * time.Second,
		ShutdownGrace:  10 * time.Second,
		RetryBackoff:   100 * time.Millisecond,
		Logger:         testLogger(t),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	w, err := worker.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, nil) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop within 30s")
		}
	}
	t.Cleanup(stop)
	return stop
}

const emptyImageWorkflow = `{
 "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 16711680}},
 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "test"}}
}`

func (b *bundle) submit(t *testing.T, spec job.Spec) *job.Job {
	t.Helper()
	j, err := b.producer.Enqueue(b.ctx, spec)
	require.NoError(t, err)
	return j
}

func (b *bundle) wait(t *testing.T, id string) *job.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	j, err := b.producer.Wait(ctx, id)
	require.NoError(t, err, "job %s did not end", id)
	if b.sim.Executions(id) > 0 && j.Node == b.simURL {
		simtest.RequireTimes(t, j, b.sim) // every job that ran says so, with true times
	}
	return j
}

// view reads a file straight from the simulator, as a client of ComfyUI would.
func (b *bundle) view(t *testing.T, filename, subfolder, typ string) []byte {
	t.Helper()
	q := url.Values{"filename": {filename}, "subfolder": {subfolder}, "type": {typ}}
	resp, err := http.Get(b.simURL + "/view?" + q.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return data
}

func (b *bundle) object(t *testing.T, key string) []byte {
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
func (b *bundle) output(t *testing.T, o job.Output) []byte {
	t.Helper()
	key, ok := storage.Unlocate(b.store, storage.Location{Bucket: o.Bucket, Key: o.Key})
	require.True(t, ok, "output %s/%s is outside the store %s", o.Bucket, o.Key, b.store)
	return b.object(t, key)
}

func TestEndToEndImage(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	submitted := b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow), Metadata: map[string]any{"user": "42"}})
	require.Equal(t, job.StatusQueued, submitted.Status)

	j := b.wait(t, submitted.ID)
	require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
	require.Len(t, j.Outputs, 1)
	o := j.Outputs[0]
	require.Equal(t, "2", o.NodeID)
	require.Equal(t, job.KindImage, o.Kind)
	require.Equal(t, "test_00001_.png", o.Filename)
	require.Equal(t, storage.Locate(b.store, "jobs/"+j.ID+"/2/test_00001_.png"), storage.Location{Bucket: o.Bucket, Key: o.Key})
	require.Equal(t, "image/png", o.ContentType)
	require.NotEmpty(t, o.URL)

	served := b.view(t, "test_00001_.png", "", "output")
	stored := b.output(t, o)
	require.Equal(t, served, stored, "the object in S3 is byte-identical to what ComfyUI serves")
	sum := sha256.Sum256(stored)
	require.Equal(t, hex.EncodeToString(sum[:]), o.SHA256)
	require.Equal(t, int64(len(stored)), o.Size)
	img, err := png.Decode(bytes.NewReader(stored))
	require.NoError(t, err)
	require.Equal(t, 64, img.Bounds().Dx())
	require.Equal(t, 48, img.Bounds().Dy())

	require.Equal(t, 1, j.Attempt)
	require.Equal(t, "sim", j.NodeName)
	require.Equal(t, map[string]any{"user": "42"}, j.Metadata)
	require.NotNil(t, j.StartedAt)
	require.NotNil(t, j.FinishedAt)
	require.NotNil(t, j.Timings)
	require.GreaterOrEqual(t, j.Timings.TotalMS, j.Timings.ExecutionMS)
	require.Equal(t, 1, b.sim.Executions(j.ID), "the job id is the prompt id")
}

func TestValidationFailedIsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	wf := `{"1": {"class_type": "NoSuchNode", "inputs": {}},
	        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}`
	j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(wf), MaxAttempts: 3}).ID)
	require.Equal(t, job.StatusFailed, j.Status)
	require.NotNil(t, j.Error)
	require.Equal(t, job.CodeValidationFailed, j.Error.Code)
	require.Contains(t, j.Error.Message, "NoSuchNode")
	require.Equal(t, 1, j.Attempt, "validation errors are never retried")
	require.Equal(t, 0, b.sim.Executions(j.ID))

	// asynq archived the task after one attempt.
	insp := asynq.NewInspectorFromRedisClient(b.rdb)
	require.Eventually(t, func() bool {
		info, err := insp.GetTaskInfo("default", j.ID)
		return err == nil && info.State == asynq.TaskStateArchived && info.Retried == 0
	}, 10*time.Second, 10*time.Millisecond, "the task is archived after its one attempt")
}

func TestValidationNodeErrorsKept(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	wf := `{"1": {"class_type": "EmptyImage", "inputs": {"width": 999999, "height": 64, "batch_size": 1, "color": 0}},
	        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}`
	j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(wf)}).ID)
	require.Equal(t, job.StatusFailed, j.Status)
	require.Equal(t, job.CodeValidationFailed, j.Error.Code)
	var nodeErrors map[string]struct {
		ClassType string `json:"class_type"`
		Errors    []struct {
			Type string `json:"type"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(j.Error.NodeErrors, &nodeErrors), "node errors: %s", j.Error.NodeErrors)
	require.Equal(t, "EmptyImage", nodeErrors["1"].ClassType)
	require.Equal(t, "value_bigger_than_max", nodeErrors["1"].Errors[0].Type)
}

func TestInvalidWorkflowRefusedAtSubmit(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noWorker: true})
	for name, wf := range map[string]string{
		"dangling link": `{"2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}`,
		"numeric link":  `{"1": {"class_type": "EmptyImage", "inputs": {}}, "2": {"class_type": "SaveImage", "inputs": {"images": [1, 0]}}}`,
		"no class":      `{"1": {"inputs": {}}}`,
		"not json":      `{"1": `,
		"array":         `[1, 2]`,
	} {
		_, err := b.producer.Enqueue(b.ctx, job.Spec{Workflow: json.RawMessage(wf)})
		var se *job.SpecError
		require.ErrorAs(t, err, &se, name)
		require.Equal(t, job.CodeInvalidWorkflow, se.Code, name)
	}
	jobs, _, err := b.producer.List(b.ctx, job.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, jobs, "nothing is enqueued for bad input")
}

func TestExecutionErrorRetriedThenFails(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.sim.FailNode("SaveImage", "torch.OutOfMemoryError", "CUDA out of memory")
	j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow), MaxAttempts: 2}).ID)
	require.Equal(t, job.StatusFailed, j.Status)
	require.Equal(t, job.CodeExecutionError, j.Error.Code)
	require.Equal(t, "torch.OutOfMemoryError", j.Error.ExceptionType)
	require.Equal(t, "2", j.Error.NodeID)
	require.Equal(t, "SaveImage", j.Error.NodeClass)
	require.Equal(t, 2, j.Attempt)
	require.Equal(t, 2, b.sim.Executions(j.ID), "each attempt ran the prompt once")
}

func TestExecutionErrorThenSuccess(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.sim.FailNode("SaveImage", "RuntimeError", "flaky")
	// RuntimeError is retried only because the job lists it.
	id := b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow), MaxAttempts: 3, RetryOn: []string{"RuntimeError"}}).ID
	require.Eventually(t, func() bool {
		j, err := b.producer.Get(b.ctx, id)
		return err == nil && j.Error != nil && j.Error.Retryable
	}, 30*time.Second, 10*time.Millisecond, "the first attempt fails and the job is requeued")
	b.sim.ClearFaults()
	j := b.wait(t, id)
	require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
	require.Equal(t, 2, j.Attempt)
}

// A deterministic execution error (not out of memory, not a device error, not listed
// in retry_on) fails the job after one run, with its exception and traceback kept.
func TestDeterministicErrorRunsOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.sim.FailNode("SaveImage", "RuntimeError", "Sizes of tensors must match except in dimension 0")
	j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow), MaxAttempts: 4}).ID)
	require.Equal(t, job.StatusFailed, j.Status)
	require.Equal(t, job.CodeExecutionError, j.Error.Code)
	require.Equal(t, "RuntimeError", j.Error.ExceptionType)
	require.Contains(t, j.Error.Message, "Sizes of tensors")
	require.NotEmpty(t, j.Error.Traceback, "the traceback is kept")
	require.False(t, j.Error.Retryable)
	require.Equal(t, 1, j.Attempt)
	require.Equal(t, 1, b.sim.Executions(j.ID), "a deterministic error runs once")
}

func TestOutputsOfEveryKind(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{sim: comfysim.Options{VideoSize: 300 << 10}})
	wf := `{
	 "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 2, "color": 255}},
	 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "batch"}},
	 "3": {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 24}},
	 "4": {"class_type": "SaveVideo", "inputs": {"video": ["3", 0], "filename_prefix": "video/clip", "format": "auto", "codec": "auto"}},
	 "5": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}},
	 "6": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
	}`
	j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(wf)}).ID)
	require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
	kinds := map[string]int{}
	for _, o := range j.Outputs {
		kinds[o.Kind]++
		switch o.Kind {
		case job.KindVideo:
			require.Equal(t, int64(300<<10), o.Size)
			require.True(t, strings.HasSuffix(o.Filename, ".mp4"), o.Filename)
			require.Equal(t, "video/mp4", o.ContentType)
			require.Equal(t, b.view(t, o.Filename, "video", "output"), b.output(t, o))
		case job.KindText:
			require.NotEmpty(t, o.Text)
			require.Equal(t, "5", o.NodeID)
		case job.KindImage:
			require.Equal(t, "2", o.NodeID, "temporary previews are not uploaded")
		}
	}
	require.Equal(t, map[string]int{job.KindImage: 2, job.KindVideo: 1, job.KindText: 1}, kinds)
}

func TestInputImageUploaded(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	// Make a PNG with the simulator itself, then feed it back as an input.
	first := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)}).ID)
	require.Equal(t, job.StatusSucceeded, first.Status)
	pngBytes := b.output(t, first.Outputs[0])

	wf := `{
	 "1": {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}},
	 "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
	 "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "inverted"}}
	}`
	for name, src := range map[string]job.ImageSource{
		"base64": {Base64: base64.StdEncoding.EncodeToString(pngBytes), Filename: "red.png"},
		"key":    {Key: first.Outputs[0].Key},
	} {
		j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(wf),
			Images: map[string]job.ImageSource{"1.inputs.image": src}}).ID)
		require.Equal(t, job.StatusSucceeded, j.Status, "%s: error: %+v", name, j.Error)
		require.Len(t, j.Outputs, 1, name)
		img, err := png.Decode(bytes.NewReader(b.output(t, j.Outputs[0])))
		require.NoError(t, err, name)
		require.Equal(t, 64, img.Bounds().Dx(), name)
	}
}

func TestForbiddenInputURLFailsClearly(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	wf := `{
	 "1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
	 "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}
	}`
	j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(wf),
		Images: map[string]job.ImageSource{"1.inputs.image": {URL: b.simURL + "/view?filename=x.png"}}}).ID)
	require.Equal(t, job.StatusFailed, j.Status)
	require.Contains(t, j.Error.Message, "loopback")
	require.Equal(t, job.CodeInvalidInput, j.Error.Code)
	require.Equal(t, 1, j.Attempt, "a forbidden input is not retried")
	require.Equal(t, 0, b.sim.Executions(j.ID))
}

func TestCancelWhileQueued(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noWorker: true})
	j := b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)})
	got, err := b.producer.Cancel(b.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusCanceled, got.Status)
	startWorker(t, b, nil)
	// A second job submitted after the cancel runs; the canceled one never does.
	other := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow), RandomizeSeeds: true}).ID)
	require.Equal(t, job.StatusSucceeded, other.Status)
	require.Equal(t, 0, b.sim.Executions(j.ID))
	final, err := b.producer.Get(b.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusCanceled, final.Status)
	_, err = b.producer.Cancel(b.ctx, j.ID)
	require.ErrorIs(t, err, job.ErrTerminal)
}

// slowWorkflow runs a KSampler for steps steps.
func slowWorkflow(steps int, seed string) string {
	return fmt.Sprintf(`{
	 "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sim-v1-5.safetensors"}},
	 "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
	 "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
	 "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
	 "3": {"class_type": "KSampler", "inputs": {"seed": %s, "steps": %d, "cfg": 8, "sampler_name": "euler",
	       "scheduler": "normal", "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
	 "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
	 "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "fox"}}
	}`, seed, steps)
}

func TestCancelWhileRunning(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{sim: comfysim.Options{StepDelay: 50 * time.Millisecond}})
	j := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(1000, "1"))})
	require.Eventually(t, func() bool {
		cur, err := b.producer.Get(b.ctx, j.ID)
		return err == nil && cur.Status == job.StatusRunning && cur.Progress != nil && cur.Progress.Step > 0
	}, 30*time.Second, 20*time.Millisecond, "the job runs and reports sampler progress")
	asked, err := b.producer.Cancel(b.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusCanceling, asked.Status, "a cancel answers canceling at once")
	final := b.wait(t, j.ID)
	require.Equal(t, job.StatusCanceled, final.Status)
	require.Equal(t, job.CodeCanceled, final.Error.Code)
	require.Equal(t, 0, b.nodeQueueLen(t), "canceled is recorded once the node stopped the prompt")
}

// nodeQueueLen is how many prompts the node has running or pending.
func (b *bundle) nodeQueueLen(t *testing.T) int {
	t.Helper()
	q, err := http.Get(b.simURL + "/queue")
	require.NoError(t, err)
	defer q.Body.Close()
	var state struct {
		Running []any `json:"queue_running"`
		Pending []any `json:"queue_pending"`
	}
	require.NoError(t, json.NewDecoder(q.Body).Decode(&state))
	return len(state.Running) + len(state.Pending)
}

func TestCancelWhileQueuedOnNode(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{sim: comfysim.Options{StepDelay: 20 * time.Millisecond}})
	running := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(9000, "1"))})
	b.waitStatus(t, running.ID, job.StatusRunning)
	waiting := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(100, "2"))})
	// With pipelining depth 2 the second job waits in the node's own queue.
	eventually(t, 60*time.Second, func() (bool, string) {
		r, _ := b.producer.Get(b.ctx, running.ID)
		w, _ := b.producer.Get(b.ctx, waiting.ID)
		return r != nil && w != nil && r.Status == job.StatusRunning && w.Node != "" && w.Status == job.StatusQueued,
			"running " + describe(r) + "\nwaiting " + describe(w)
	})
	_, err := b.producer.Cancel(b.ctx, waiting.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusCanceled, b.wait(t, waiting.ID).Status)
	r, err := b.producer.Get(b.ctx, running.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusRunning, r.Status, "the running job is untouched")
	require.Equal(t, 0, b.sim.Executions(waiting.ID), "the canceled job never ran")
	_, err = b.producer.Cancel(b.ctx, running.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusCanceled, b.wait(t, running.ID).Status)
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{sim: comfysim.Options{StepDelay: 100 * time.Millisecond}})
	j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(1000, "1")), TimeoutS: 1}).ID)
	require.Equal(t, job.StatusFailed, j.Status)
	require.Equal(t, job.CodeTimeout, j.Error.Code)
	require.Equal(t, 1, j.Attempt)
}

func TestIdempotentSubmit(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	a := b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow), IdempotencyKey: "order-7"})
	c := b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow), IdempotencyKey: "order-7"})
	require.Equal(t, a.ID, c.ID)
	require.Equal(t, job.StatusSucceeded, b.wait(t, a.ID).Status)
}
