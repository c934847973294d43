package worker_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/internal/faultproxy"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/worker"
)

// eventually polls cond until it holds, failing with cond's last description.
func eventually(t *testing.T, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("condition not reached within %s; last state: %s", d, last)
}

func describe(j *job.Job) string {
	data, _ := json.Marshal(j)
	return string(data)
}

// waitStatus waits until the job reaches status.
func (b *bundle) waitStatus(t *testing.T, id string, status job.Status) *job.Job {
	t.Helper()
	var cur *job.Job
	require.Eventually(t, func() bool {
		var err error
		cur, err = b.producer.Get(b.ctx, id)
		return err == nil && cur.Status == status
	}, 60*time.Second, 10*time.Millisecond, "job %s never reached %s", id, status)
	return cur
}

func TestNodeDownJobWaitsAndResumes(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noWorker: true})
	b.sim.SetDown(true)
	startWorker(t, b, nil)
	id := b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow), MaxAttempts: 1}).ID
	time.Sleep(1500 * time.Millisecond) // several health probes fail meanwhile
	cur, err := b.producer.Get(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, job.StatusQueued, cur.Status, "a job waits while its only node is down")
	b.sim.SetDown(false)
	j := b.wait(t, id)
	require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
	require.Equal(t, 1, j.Attempt, "a node that is down costs the job no attempt")
}

func TestWebSocketDroppedMidRun(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{sim: comfysim.Options{StepDelay: 20 * time.Millisecond}})
	id := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(40, "11"))}).ID
	b.waitStatus(t, id, job.StatusRunning)
	b.sim.DropWebSockets()
	j := b.wait(t, id)
	require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
	require.Equal(t, 1, b.sim.Executions(id), "the prompt ran once")
	require.Len(t, j.Outputs, 1)
}

func TestWebSocketSilentMidRun(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{sim: comfysim.Options{StepDelay: 10 * time.Millisecond}})
	id := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(20, "12"))}).ID
	b.waitStatus(t, id, job.StatusRunning)
	b.sim.SilenceWebSockets(time.Hour) // executing-null never arrives
	j := b.wait(t, id)
	require.Equal(t, job.StatusSucceeded, j.Status, "a silent socket never hangs a job; error: %+v", j.Error)
	require.Equal(t, 1, b.sim.Executions(id))
}

func TestNodeCrashMidRun(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{sim: comfysim.Options{StepDelay: 20 * time.Millisecond}})
	id := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(50, "13"))}).ID
	b.waitStatus(t, id, job.StatusRunning)
	b.sim.Crash() // queue and history lost, as a restarted ComfyUI
	j := b.wait(t, id)
	require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
	require.Equal(t, 2, b.sim.Executions(id), "submitted again only because the node lost it")
	require.Equal(t, 1, j.Attempt, "a node restart costs the job no attempt")
}

// s3Behind returns a storage whose S3 endpoint is a fault-injecting proxy.
func s3Behind(t *testing.T) (storage.Store, *faultproxy.Proxy) {
	t.Helper()
	raw := testenv.S3URL(t)
	u, err := url.Parse(raw)
	require.NoError(t, err)
	q := u.Query()
	proxy, err := faultproxy.New(q.Get("endpoint"))
	require.NoError(t, err)
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	q.Set("endpoint", srv.URL)
	u.RawQuery = q.Encode()
	store, err := storage.Open(t.Context(), u.String())
	require.NoError(t, err)
	return store, proxy
}

func TestStorageFailsThenRecovers(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noWorker: true})
	store, proxy := s3Behind(t)
	b.store = store
	startWorker(t, b, nil)
	proxy.Set(faultproxy.Fail, 0)
	id := b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)}).ID
	require.Eventually(t, func() bool { return proxy.Faulted() >= 3 }, 30*time.Second, 10*time.Millisecond)
	proxy.Set(faultproxy.Drop, 0)
	require.Eventually(t, func() bool { return proxy.Faulted() >= 6 }, 30*time.Second, 10*time.Millisecond)
	proxy.Set(faultproxy.Pass, 0)
	j := b.wait(t, id)
	require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
	require.Equal(t, 1, b.sim.Executions(id), "upload failures never re-run the prompt")
	require.Equal(t, b.view(t, j.Outputs[0].Filename, "", "output"), b.output(t, j.Outputs[0]))
}

func TestDrainFinishesRunningAndHandsBackQueued(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{sim: comfysim.Options{StepDelay: 20 * time.Millisecond}})
	running := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(250, "21"))}).ID
	b.waitStatus(t, running, job.StatusRunning)
	waiting := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(5, "22"))}).ID
	eventually(t, 60*time.Second, func() (bool, string) {
		r, _ := b.producer.Get(b.ctx, running)
		w, _ := b.producer.Get(b.ctx, waiting)
		return r != nil && w != nil && r.Status == job.StatusRunning && r.Progress != nil && r.Progress.Step > 0 &&
			w.Node != "" && w.Status == job.StatusQueued, "running " + describe(r) + "\nwaiting " + describe(w)
	})
	b.stop() // SIGTERM: drain
	r, err := b.producer.Get(b.ctx, running)
	require.NoError(t, err)
	require.Equal(t, job.StatusSucceeded, r.Status, "the job on the GPU finished within the grace period")
	w, err := b.producer.Get(b.ctx, waiting)
	require.NoError(t, err)
	require.Equal(t, job.StatusQueued, w.Status, "the job waiting on the node was handed back")
	require.Equal(t, 0, b.sim.Executions(waiting))

	startWorker(t, b, nil)
	require.Equal(t, job.StatusSucceeded, b.wait(t, waiting).Status)
	require.Equal(t, 1, b.sim.Executions(waiting))
	require.Equal(t, 1, b.sim.Executions(running))
}

// buildComfyq builds the comfyq binary once per test binary.
var buildComfyq = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "comfyq-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "comfyq")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/comfyq")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", &buildError{out.String(), err}
	}
	return bin, nil
})

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return "go build ./cmd/comfyq: " + e.err.Error() + "\n" + e.out }

// TestWorkerKilledMidJob kills a worker process with SIGKILL while its job runs on the
// node. asynq recovers the task once its lease expires (about a minute); the next
// worker finds the prompt on the node and re-attaches (or collects it) instead of
// running it again.
func TestWorkerKilledMidJob(t *testing.T) {
	t.Parallel()
	bin, err := buildComfyq()
	require.NoError(t, err)
	b := setup(t, setupOpts{noWorker: true, sim: comfysim.Options{StepDelay: 50 * time.Millisecond}})
	s3URL := testenv.S3URL(t)
	store, err := storage.Open(b.ctx, s3URL)
	require.NoError(t, err)
	b.store = store

	cmd := exec.Command(bin, "worker", "--redis", b.redisURL, "--storage", s3URL,
		"--comfy", "sim="+b.simURL, "--health-interval", "100ms", "--log-level", "warn")
	cmd.Env = os.Environ()
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	// The process is already gone when the test killed it: both errors only say so.
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	id := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(60, "31"))}).ID
	b.waitStatus(t, id, job.StatusRunning)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait() // "signal: killed" is the expected outcome

	startWorker(t, b, func(c *worker.Config) { c.Storage = store })
	ctxWait := 3 * time.Minute
	deadline := time.Now().Add(ctxWait)
	var j *job.Job
	for time.Now().Before(deadline) {
		j, err = b.producer.Get(b.ctx, id)
		require.NoError(t, err)
		if j.Status.Terminal() {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v\nkilled worker's log:\n%s", j.Error, logs.String())
	require.Equal(t, 1, b.sim.Executions(id), "the prompt was not executed twice because of the restart")
	require.Len(t, j.Outputs, 1)
}
