// Package faults_test is comfyq's fault-injection suite: each test runs many jobs
// through real processes and services (a real Redis, a real S3 server, simulated
// ComfyUI nodes, workers in this process or as `comfyq worker` subprocesses), injects
// one kind of failure while they are in flight, and then checks the same invariants:
//
//   - every job submitted exists exactly once and ends in exactly one terminal state
//     (the ones the case allows), with its asynq task gone;
//   - every succeeded job's outputs are in storage, byte for byte what the node serves
//     at /view, with the size and SHA-256 its record gives;
//   - no prompt ran twice on a node, unless the node lost it (a crash), counted with
//     the simulator's own execution counter;
//   - every job that ran records it (started_at), with true timings: execution_ms the
//     node's own, queued_ms and total_ms from the record's times
//     (simtest.RequireTimes).
//
// Each case logs one SUMMARY line (go test -v shows them). The load and scale test
// (load_test.go) measures throughput, Redis memory per job and the status endpoint.
//
// There are no known-issue allowances: any prompt that runs again, on its node or on
// another, beyond what a node lost fails the case.
//
// The suite runs in the normal go test ./... (scripts/test.sh provides Redis and S3);
// it takes a couple of minutes, most of it the SIGKILL cases waiting, after their jobs
// ended, for asynq's lease recovery to hand the killed worker's tasks out again (the
// suite requires that no task is left behind).
package faults_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
	"github.com/comfyq/comfyq/internal/faultproxy"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	_ "github.com/comfyq/comfyq/storage/file"
	_ "github.com/comfyq/comfyq/storage/s3"
	"github.com/comfyq/comfyq/worker"
)

// cluster is one case's world: a Redis of its own, storage, simulated nodes, a
// producer, and the jobs submitted so far.
type cluster struct {
	t        *testing.T
	ctx      context.Context
	redis    *testenv.RedisServer
	redisURL string
	rdb      redis.UniversalClient
	prod     *producer.Client
	insp     *asynq.Inspector
	// storeURL and store reach storage directly; workers may be given a proxied URL.
	storeURL string
	store    storage.Store
	fileDir  string // the directory of a file store, else ""
	nodes    []*simNode
	started  time.Time

	mu  sync.Mutex
	ids []string // submitted jobs, in order
}

// simNode is one simulated ComfyUI node.
type simNode struct {
	name string
	sim  *comfysim.Server
	url  string
}

type clusterOpts struct {
	nodes int
	sim   comfysim.Options
	// redis configures the private redis-server (append-only file for restarts).
	redis testenv.RedisOptions
	// file stores outputs in a directory instead of S3 (to list what a job left).
	file bool
}

func newCluster(t *testing.T, o clusterOpts) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	rs := testenv.StartRedis(t, o.redis)
	rdb, err := producer.OpenRedis(rs.URL())
	require.NoError(t, err)
	t.Cleanup(func() { rdb.Close() })
	prod, err := producer.New(producer.Config{Redis: rdb, Logger: testLogger(t)})
	require.NoError(t, err)
	c := &cluster{t: t, ctx: ctx, redis: rs, redisURL: rs.URL(), rdb: rdb, prod: prod,
		insp: asynq.NewInspectorFromRedisClient(rdb), started: time.Now()}
	if o.file {
		c.fileDir = t.TempDir()
		c.storeURL = "file://" + c.fileDir
	} else {
		c.storeURL = testenv.S3URL(t)
	}
	c.store, err = storage.Open(ctx, c.storeURL)
	require.NoError(t, err)
	if o.nodes == 0 {
		o.nodes = 1
	}
	for i := range o.nodes {
		sim, u := simtest.NewServer(t, o.sim)
		c.nodes = append(c.nodes, &simNode{name: fmt.Sprintf("gpu-%d", i+1), sim: sim, url: u})
	}
	return c
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("COMFYQ_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// workerOpts configures an in-process worker.
type workerOpts struct {
	// nodes are indexes into cluster.nodes (default: all).
	nodes []int
	// storeURL overrides the cluster's storage (a proxied S3 endpoint).
	storeURL string
	tweak    func(*worker.Config)
}

// startWorker runs a worker in this process until the returned stop (a drain) is
// called or the test ends.
func (c *cluster) startWorker(o workerOpts) (stop func()) {
	t := c.t
	t.Helper()
	store := c.store
	if o.storeURL != "" {
		var err error
		store, err = storage.Open(c.ctx, o.storeURL)
		require.NoError(t, err)
	}
	cfg := worker.Config{
		Redis:          c.rdb,
		Storage:        store,
		Nodes:          c.nodeConfigs(o.nodes),
		HealthInterval: 100 * time.Millisecond,
		StallTimeout:   2 * time.Second,
		ShutdownGrace:  10 * time.Second,
		RetryBackoff:   100 * time.Millisecond,
		Logger:         testLogger(t),
	}
	if o.tweak != nil {
		o.tweak(&cfg)
	}
	w, err := worker.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, nil) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(60 * time.Second):
				t.Error("worker did not stop within 60s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (c *cluster) nodeConfigs(idx []int) []worker.NodeConfig {
	if idx == nil {
		for i := range c.nodes {
			idx = append(idx, i)
		}
	}
	var out []worker.NodeConfig
	for _, i := range idx {
		out = append(out, worker.NodeConfig{URL: c.nodes[i].url, Name: c.nodes[i].name})
	}
	return out
}

// workerProcess is a `comfyq worker` subprocess.
type workerProcess struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

// binDir holds the comfyq binary built for the worker processes; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildComfyq builds the comfyq binary once for the whole test binary.
var buildComfyq = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "comfyq-faults-bin")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "comfyq")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/comfyq")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/comfyq: %w\n%s", err, out)
	}
	return bin, nil
})

// startWorkerProcess runs `comfyq worker` on the given nodes (default all) with
// storage at storeURL (default the cluster's).
func (c *cluster) startWorkerProcess(storeURL string, nodes []int) *workerProcess {
	t := c.t
	t.Helper()
	bin, err := buildComfyq()
	require.NoError(t, err)
	if storeURL == "" {
		storeURL = c.storeURL
	}
	args := []string{"worker", "--redis", c.redisURL, "--storage", storeURL,
		"--health-interval", "100ms", "--stall-timeout", "2s", "--shutdown-grace", "10s", "--log-level", "warn"}
	if os.Getenv("COMFYQ_TEST_VERBOSE") != "" {
		args[len(args)-1] = "info"
	}
	for _, nc := range c.nodeConfigs(nodes) {
		args = append(args, "--comfy", nc.Name+"="+nc.URL)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	p := &workerProcess{cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	require.NoError(t, cmd.Start())
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("log of comfyq worker (pid %d):\n%s", cmd.Process.Pid, p.logs.String())
		}
	})
	return p
}

// kill sends SIGKILL, as an OOM killer or a lost machine would, and waits for the exit.
func (p *workerProcess) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// samplerWorkflow is a txt2img graph whose KSampler runs steps steps (each takes the
// simulator's StepDelay). The seed makes each job's prompt, and so its PNG, unique.
func samplerWorkflow(steps, seed int, prefix string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{
	 "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sim-v1-5.safetensors"}},
	 "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
	 "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
	 "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
	 "3": {"class_type": "KSampler", "inputs": {"seed": %d, "steps": %d, "cfg": 8, "sampler_name": "euler",
	       "scheduler": "normal", "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
	 "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
	 "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": %q}}
	}`, seed, steps, prefix))
}

// submit enqueues n jobs made by spec and records their ids.
func (c *cluster) submit(n int, spec func(i int) job.Spec) []string {
	c.t.Helper()
	ids := make([]string, 0, n)
	for i := range n {
		j, err := c.prod.Enqueue(c.ctx, spec(i))
		require.NoError(c.t, err)
		ids = append(ids, j.ID)
	}
	c.track(ids...)
	return ids
}

func (c *cluster) track(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, ids...)
}

func (c *cluster) submitted() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ids...)
}

// jobs reads the records of ids; missing ones are absent from the map.
func (c *cluster) jobs(ids []string) (map[string]*job.Job, error) {
	out := make(map[string]*job.Job, len(ids))
	for _, id := range ids {
		j, err := c.prod.Get(c.ctx, id)
		if errors.Is(err, job.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[id] = j
	}
	return out, nil
}

// countStatus counts the records of ids by status (Redis errors count as "error").
func (c *cluster) countStatus(ids []string) map[job.Status]int {
	counts := map[job.Status]int{}
	js, err := c.jobs(ids)
	if err != nil {
		counts["error"]++
		return counts
	}
	for _, j := range js {
		counts[j.Status]++
	}
	return counts
}

// waitFor polls cond every 20ms until it holds, failing after d with what describe
// says about the state.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			state := ""
			if describe != nil {
				state = ": " + describe()
			}
			t.Fatalf("timed out after %s waiting for %s%s", d, what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitTerminal waits until every submitted job is in a terminal state and returns
// the records.
func (c *cluster) waitTerminal(d time.Duration) map[string]*job.Job {
	t := c.t
	t.Helper()
	ids := c.submitted()
	var js map[string]*job.Job
	waitFor(t, d, "every job to end", func() bool {
		var err error
		js, err = c.jobs(ids)
		if err != nil || len(js) != len(ids) {
			return false
		}
		for _, j := range js {
			if !j.Status.Terminal() {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprint(c.countStatus(ids)) })
	return js
}

// expect says what a case allows.
type expect struct {
	// statuses are the allowed terminal states (default: succeeded only).
	statuses []job.Status
	// reexecuted bounds how many prompts may have run twice on one node because the
	// node lost them (each crash of a node loses at most the one prompt it was
	// executing).
	reexecuted int
}

// summary is what a case did, for its SUMMARY line.
type summary struct {
	jobs, succeeded, failed, canceled int
	executions, reexecuted, moved     int
	retried, maxAttempt               int
	outputs                           int
	bytes                             int64
}

func (s summary) String() string {
	return fmt.Sprintf("jobs=%d succeeded=%d canceled=%d failed=%d executions=%d re-executed_same_node=%d "+
		"re-executed_other_node=%d retried_jobs=%d max_attempt=%d outputs=%d output_bytes=%d",
		s.jobs, s.succeeded, s.canceled, s.failed, s.executions, s.reexecuted, s.moved, s.retried, s.maxAttempt, s.outputs, s.bytes)
}

// verify checks the invariants over every submitted job (see the package doc) and
// returns the case's summary.
func (c *cluster) verify(js map[string]*job.Job, e expect) summary {
	t := c.t
	t.Helper()
	if len(e.statuses) == 0 {
		e.statuses = []job.Status{job.StatusSucceeded}
	}
	ids := c.submitted()
	require.Len(t, js, len(ids))

	// Exactly the submitted jobs exist, each once.
	var listed []string
	cursor := ""
	for {
		page, next, err := c.prod.List(c.ctx, job.ListOptions{Limit: 500, Cursor: cursor})
		require.NoError(t, err)
		for _, j := range page {
			listed = append(listed, j.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	sort.Strings(listed)
	want := append([]string(nil), ids...)
	sort.Strings(want)
	require.Equal(t, want, listed, "the job index holds exactly the submitted jobs, each once")

	var s summary
	s.jobs = len(ids)
	byURL := map[string]*simNode{}
	for _, n := range c.nodes {
		byURL[n.url] = n
	}
	for _, id := range ids {
		j := js[id]
		require.Contains(t, e.statuses, j.Status, "job %s: %s", id, describe(j))
		ex, on := 0, 0
		for _, n := range c.nodes {
			k := n.sim.Executions(id)
			ex += k
			if k > 0 {
				on++
				s.reexecuted += k - 1
			}
		}
		s.executions += ex
		if on > 1 {
			s.moved += on - 1
		}
		if j.Attempt > 1 {
			s.retried++
		}
		s.maxAttempt = max(s.maxAttempt, j.Attempt)
		switch j.Status {
		case job.StatusSucceeded:
			s.succeeded++
			require.Nil(t, j.Error, "job %s succeeded with an error: %s", id, describe(j))
			require.GreaterOrEqual(t, ex, 1, "job %s succeeded without running: %s", id, describe(j))
			require.NotEmpty(t, j.Outputs, "job %s: %s", id, describe(j))
			node := byURL[j.Node]
			require.NotNil(t, node, "job %s ran on an unknown node %q", id, j.Node)
			for _, o := range j.Outputs {
				if o.Key == "" {
					continue
				}
				key, ok := storage.Unlocate(c.store, storage.Location{Bucket: o.Bucket, Key: o.Key})
				require.True(c.t, ok, "job %s: output %s/%s outside the store", id, o.Bucket, o.Key)
				stored := c.object(key)
				sum := sha256.Sum256(stored)
				require.Equal(t, o.SHA256, hex.EncodeToString(sum[:]), "job %s: %s: SHA-256 of the stored object", id, o.Key)
				require.Equal(t, o.Size, int64(len(stored)), "job %s: %s: size of the stored object", id, o.Key)
				require.True(t, bytes.Equal(node.view(t, o.Filename), stored),
					"job %s: %s is not byte for byte what the node serves", id, o.Key)
				s.outputs++
				s.bytes += o.Size
			}
		case job.StatusCanceled:
			s.canceled++
			require.NotNil(t, j.Error, "job %s: %s", id, describe(j))
			require.Equal(t, job.CodeCanceled, j.Error.Code, "job %s: %s", id, describe(j))
			require.Empty(t, j.Outputs, "a canceled job shows no outputs: %s", describe(j))
			if ex == 0 && c.fileDir != "" {
				// Never ran: nothing of it may be in storage.
				_, err := os.Stat(filepath.Join(c.fileDir, "jobs", id))
				require.True(t, errors.Is(err, os.ErrNotExist), "job %s was canceled before it ran but has objects in storage", id)
			}
		case job.StatusFailed:
			s.failed++
		}
		if ex > 0 {
			var sim *comfysim.Server
			if n := byURL[j.Node]; n != nil {
				sim = n.sim
			}
			simtest.RequireTimes(t, j, sim)
		}
	}
	if s.reexecuted > e.reexecuted || s.moved > 0 {
		var lines []string
		for _, id := range ids {
			for _, n := range c.nodes {
				if ex := n.sim.Executions(id); ex > 1 || (ex == 1 && byURL[js[id].Node] != n) {
					lines = append(lines, fmt.Sprintf("%s: %d executions on %s; record: %s", id, ex, n.name, describe(js[id])))
				}
			}
		}
		t.Fatalf("prompts executed again beyond what the nodes lost (%d on the same node, allowed %d; %d on another node):\n%s",
			s.reexecuted, e.reexecuted, s.moved, strings.Join(lines, "\n"))
	}

	// No task is left behind: nothing pending, running, waiting for a retry. A killed
	// worker's tasks stay active until asynq's lease recovery hands them out again (60
	// to 120 s after the kill) and a worker acknowledges them: their jobs ended before.
	waitFor(t, 3*time.Minute, "the job queue to drain", func() bool {
		info, err := c.insp.GetQueueInfo("default")
		return err == nil && info.Pending == 0 && info.Active == 0 && info.Scheduled == 0 && info.Retry == 0 &&
			(info.Archived == 0 || s.failed > 0)
	}, func() string {
		info, err := c.insp.GetQueueInfo("default")
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("%+v", *info)
	})
	return s
}

// report logs the case's summary line.
func (c *cluster) report(s summary, extra string) {
	c.t.Helper()
	if extra != "" {
		extra = " " + extra
	}
	c.t.Logf("SUMMARY %s: %s elapsed=%s%s", c.t.Name(), s, time.Since(c.started).Round(100*time.Millisecond), extra)
}

func describe(j *job.Job) string {
	data, _ := json.Marshal(j)
	return string(data)
}

// object reads an object straight from storage.
func (c *cluster) object(key string) []byte {
	c.t.Helper()
	rc, _, err := c.store.Get(c.ctx, key)
	require.NoError(c.t, err, "object %s", key)
	defer rc.Close()
	data, err := io.ReadAll(rc)
	require.NoError(c.t, err)
	return data
}

// view reads an output file from the node, as a ComfyUI client would.
func (n *simNode) view(t *testing.T, filename string) []byte {
	t.Helper()
	q := url.Values{"filename": {filename}, "subfolder": {""}, "type": {"output"}}
	resp, err := http.Get(n.url + "/view?" + q.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "/view %s on %s", filename, n.name)
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return data
}

// running returns the prompt ids the node is executing right now.
func (n *simNode) queue(t *testing.T) (running, pending []string) {
	t.Helper()
	resp, err := http.Get(n.url + "/queue")
	require.NoError(t, err)
	defer resp.Body.Close()
	var q struct {
		Running [][]any `json:"queue_running"`
		Pending [][]any `json:"queue_pending"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&q))
	ids := func(items [][]any) []string {
		var out []string
		for _, it := range items {
			if len(it) > 1 {
				if s, ok := it[1].(string); ok {
					out = append(out, s)
				}
			}
		}
		return out
	}
	return ids(q.Running), ids(q.Pending)
}

// flakyServer serves a handler on a fixed loopback address and can become
// unreachable (connections refused) and reachable again on the same address.
type flakyServer struct {
	t       *testing.T
	handler http.Handler
	addr    string

	mu  sync.Mutex
	srv *http.Server
}

func newFlakyServer(t *testing.T, h http.Handler) *flakyServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &flakyServer{t: t, handler: h, addr: ln.Addr().String()}
	f.serve(ln)
	t.Cleanup(f.down)
	return f
}

// URL is the server's base URL, the same across down and up.
func (f *flakyServer) URL() string { return "http://" + f.addr }

func (f *flakyServer) serve(ln net.Listener) {
	srv := &http.Server{Handler: f.handler, ReadHeaderTimeout: 10 * time.Second}
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	// Serve returns http.ErrServerClosed once down closes the server: nothing to report.
	go func() { _ = srv.Serve(ln) }()
}

// down closes the listener and every open connection: new connections are refused.
func (f *flakyServer) down() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up listens again on the same address.
func (f *flakyServer) up() {
	f.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the old socket may linger for a moment
		if ln, err = net.Listen("tcp", f.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(f.t, err, "listen again on %s", f.addr)
	f.serve(ln)
}

// s3Proxy is the S3 service behind a fault-injecting proxy on a flaky server: it
// can answer errors (faultproxy.Fail), drop connections (faultproxy.Drop), slow
// down, or refuse connections altogether (down).
type s3Proxy struct {
	*faultproxy.Proxy
	*flakyServer
	storeURL string // a storage URL whose endpoint is the proxy
}

func (c *cluster) s3Proxy() *s3Proxy {
	t := c.t
	t.Helper()
	require.Empty(t, c.fileDir, "an S3 proxy needs S3 storage")
	u, err := url.Parse(c.storeURL)
	require.NoError(t, err)
	q := u.Query()
	fp, err := faultproxy.New(q.Get("endpoint"))
	require.NoError(t, err)
	p := &s3Proxy{Proxy: fp, flakyServer: newFlakyServer(t, fp)}
	q.Set("endpoint", p.URL())
	u.RawQuery = q.Encode()
	p.storeURL = u.String()
	return p
}

// progressOf lists the statuses of ids, for failure messages.
func progressOf(c *cluster, ids []string) func() string {
	return func() string { return fmt.Sprint(c.countStatus(ids)) }
}

// statusesOf returns the ids in each status.
func (c *cluster) statusesOf(ids []string) map[job.Status][]string {
	out := map[job.Status][]string{}
	js, err := c.jobs(ids)
	if err != nil {
		return out
	}
	for _, id := range ids {
		if j, ok := js[id]; ok {
			out[j.Status] = append(out[j.Status], id)
		}
	}
	return out
}

func short(ids []string) string {
	var out []string
	for _, id := range ids {
		out = append(out, id[len(id)-6:])
	}
	return strings.Join(out, ",")
}
