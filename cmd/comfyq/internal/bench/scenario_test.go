package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/storage"
)

// TestRunAll runs every scenario but recovery (TestRunRecovery's) with tiny job
// counts, short timings and a small "large" output, the worker of the memory scenario
// as a process of its own. It
// checks that every row is complete, not the numbers: performance is what the
// benchmarks and `comfyq bench` report.
func TestRunAll(t *testing.T) {
	t.Setenv(fakeWorkerEnv, "1")
	cfg := Config{
		RedisURL:            testenv.NewRedis(t),
		Jobs:                2,
		LargeOutput:         1 << 20,
		BaselineLargeOutput: 1 << 20,
		TimeScale:           0.02,
		Dir:                 t.TempDir(),
		WorkerCommand:       []string{os.Args[0], "worker"},
		Skip:                []string{ScenarioRecovery},
	}
	results, err := Run(t.Context(), cfg, ScenarioAll)
	require.NoError(t, err)

	var names []string
	for _, r := range results {
		names = append(names, r.Scenario+"/"+r.Name)
		require.Equal(t, r.Jobs, r.Succeeded, "%s/%s: every job succeeds", r.Scenario, r.Name)
		require.Positive(t, r.JobsPerS, "%s/%s", r.Scenario, r.Name)
		require.Positive(t, r.BusyFraction, "%s/%s", r.Scenario, r.Name)
		require.LessOrEqual(t, r.BusyFraction, 1.0)
		if r.Client == "comfyq" && r.Scenario == ScenarioMemory {
			require.Equal(t, "worker_vmhwm", r.MemoryMethod)
			require.Positive(t, r.MemoryBytes)
			require.NotNil(t, r.Met)
		}
	}
	require.Equal(t, []string{
		"pipelining/comfyq depth=1",
		"pipelining/comfyq depth=2",
		"pipelining/comfyq depth=auto",
		"throughput/direct (node ceiling)",
		"throughput/naive sequential client",
		"throughput/comfyq depth=auto",
		"throughput/direct (node ceiling), again",
		"throughput/direct (node ceiling)",
		"throughput/naive sequential client",
		"throughput/comfyq depth=auto",
		"throughput/direct (node ceiling), again",
		"roundtrips/comfyq depth=auto, redis trips",
		"memory/comfyq worker process → file",
		"baseline/naive sequential client",
		"baseline/direct (node ceiling)",
		"baseline/comfyq depth=auto",
		"baseline/naive, large output",
		"baseline/comfyq, large output",
	}, names)
	require.Equal(t, 2, results[0].Jobs)
	require.Equal(t, 4.0, results[0].JobTimeMS, "the time scale applies")
	require.Equal(t, 4, results[7].Nodes)
	require.Len(t, results[9].DepthReached, 4, "each node's automatic depth")
	trips := results[11]
	require.Equal(t, ScenarioRoundTrips, trips.Scenario)
	require.Greater(t, trips.ProducerTripsPerJob, 1.0, "a job's record and its task, at least")
	require.Greater(t, trips.WorkerTripsPerJob, 4.0, "taking the task, reading the record, writing its states, acknowledging")
	require.InDelta(t, trips.ProducerTripsPerJob+trips.WorkerTripsPerJob, trips.RedisTripsPerJob, 0.011)
	require.Positive(t, trips.RedisBytesPerJob)
	require.Positive(t, trips.RedisTrips["worker: pipeline [evalsha get]"], "the ownership and the record read, together: %v", trips.RedisTrips)
	require.Zero(t, trips.RedisTrips["worker: get comfyq:job:{id}"], "no read of the record on its own: %v", trips.RedisTrips)
	require.Positive(t, results[15].OfCeiling)

	var table bytes.Buffer
	require.NoError(t, WriteTable(&table, results))
	require.Equal(t, len(results)+1, strings.Count(table.String(), "\n"))
	require.Contains(t, table.String(), "naive sequential client")
	data, err := json.Marshal(results)
	require.NoError(t, err)
	require.Contains(t, string(data), `"overhead_ms":{"mean":`)
}

func TestRunRejectsUnknownScenario(t *testing.T) {
	t.Parallel()
	_, err := Run(t.Context(), Config{}, "speed")
	require.ErrorContains(t, err, `unknown scenario "speed"`)
	_, err = Run(t.Context(), Config{Jobs: -1}, ScenarioMemory)
	require.ErrorContains(t, err, "must not be negative")
}

// TestS3BehindLatencyProxy sends a job with a multipart-sized output to S3 through
// the latency proxy, and checks the requests went through it.
func TestS3BehindLatencyProxy(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, true)
	w := Workload{OutputSize: 6 << 20}
	before := e.proxy.Requests()
	o, err := e.runComfyq(t.Context(), comfyqRun{workload: w, jobs: 1, nodes: 1, depth: 2, latency: time.Millisecond, sampleHeap: true})
	require.NoError(t, err)
	r := e.comfyqResult("test", "s3", w, time.Millisecond, 1, 2, o)
	require.Equal(t, 1, r.Succeeded)
	require.Equal(t, "process_heap", r.MemoryMethod)
	require.Contains(t, r.Storage, "s3://")
	require.GreaterOrEqual(t, e.proxy.Requests()-before, int64(4),
		"the multipart upload (create, two parts, complete) passes through the latency proxy")
}

func TestNaiveClientSavesWhatTheNodeServes(t *testing.T) {
	t.Parallel()
	_, base := simtest.NewServer(t, comfysim.Options{})
	store, err := storage.Open(t.Context(), (&url.URL{Scheme: "file", Path: t.TempDir()}).String())
	require.NoError(t, err)
	c := &NaiveClient{BaseURL: base, Store: WithLatency(store, time.Millisecond)}
	for i, w := range []Workload{{}, {OutputSize: 100 << 10}} {
		res, err := c.Run(t.Context(), w.prompt(i))
		require.NoError(t, err)
		require.True(t, res.Succeeded)
		require.False(t, res.Finished.Before(res.Started))
		require.Len(t, res.Outputs, 1)
		o := res.Outputs[0]
		require.True(t, strings.HasPrefix(o.Key, "naive/"+res.PromptID+"/"), o.Key)

		name := o.Key[strings.LastIndex(o.Key, "/")+1:]
		q := url.Values{"filename": {name}, "subfolder": {""}, "type": {"output"}}
		if w.OutputSize > 0 {
			q.Set("subfolder", "bench")
		}
		resp, err := http.Get(base + "/view?" + q.Encode())
		require.NoError(t, err)
		served, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", served)
		rc, _, err := store.Get(t.Context(), o.Key)
		require.NoError(t, err)
		saved, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		require.Equal(t, served, saved)
	}
}

func TestOverheads(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(msec int) time.Time { return t0.Add(time.Duration(msec) * time.Millisecond) }
	// A sequential client: each job created when the previous one finished.
	seq := timeline{samples: []sample{
		{node: 0, created: at(0), start: at(10), end: at(210), finished: at(260), ok: true},
		{node: 0, created: at(260), start: at(270), end: at(470), finished: at(520), ok: true},
	}}
	total, dispatch, after := seq.overheads()
	require.Equal(t, []time.Duration{60 * time.Millisecond, 60 * time.Millisecond}, total)
	require.Equal(t, []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}, dispatch)
	require.Equal(t, []time.Duration{50 * time.Millisecond, 50 * time.Millisecond}, after)
	require.Equal(t, 520*time.Millisecond, seq.span())

	// Pipelined, all created at once: waiting behind job 1 is not overhead; the gap
	// between the executions is, and so is each job's time after its execution.
	pipe := timeline{samples: []sample{
		{node: 0, created: at(0), start: at(20), end: at(220), finished: at(330), ok: true},
		{node: 0, created: at(0), start: at(225), end: at(425), finished: at(530), ok: true},
		{node: 1, created: at(0), start: at(30), end: at(230), finished: at(300), ok: true},
		{node: 1, created: at(0), ok: false},
	}}
	total, dispatch, after = pipe.overheads()
	require.ElementsMatch(t, []time.Duration{130 * time.Millisecond, 110 * time.Millisecond, 100 * time.Millisecond}, total)
	require.ElementsMatch(t, []time.Duration{20 * time.Millisecond, 5 * time.Millisecond, 30 * time.Millisecond}, dispatch)
	require.ElementsMatch(t, []time.Duration{110 * time.Millisecond, 105 * time.Millisecond, 70 * time.Millisecond}, after)
	head, tail := pipe.headTail()
	require.Equal(t, 20*time.Millisecond, head)
	require.Equal(t, 105*time.Millisecond, tail)
	require.Equal(t, []int{2, 1}, pipe.perNode(2))
	require.Equal(t, 3, pipe.succeeded())
	require.Len(t, pipe.execTimes(), 3)
}

func TestDist(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, Dist{Mean: 50.5, P50: 50, P99: 99, Max: 100}, distOf(ds))
	require.Equal(t, Dist{}, distOf(nil))
}

func TestProcStatus(t *testing.T) {
	t.Parallel()
	m, err := procStatus(os.Getpid(), "VmHWM", "VmRSS")
	require.NoError(t, err)
	require.Positive(t, m["VmHWM"])
	require.GreaterOrEqual(t, m["VmHWM"], m["VmRSS"])
	_, err = procStatus(os.Getpid(), "NoSuchField")
	require.Error(t, err)
}
