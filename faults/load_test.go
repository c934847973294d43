package faults_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
)

// Environment variables of the load test.
const (
	// envLoadJobs is the number of jobs (default 500; docs/benchmarks.md's numbers are
	// from 5000).
	envLoadJobs = "COMFYQ_LOAD_JOBS"
	// envLoadNodes is the number of simulated nodes (default 8).
	envLoadNodes = "COMFYQ_LOAD_NODES"
	// envStatusClients is the number of goroutines polling the status endpoint
	// (default 16).
	envStatusClients = "COMFYQ_LOAD_STATUS_CLIENTS"
	// envStatusSeconds is how long they poll (default 3).
	envStatusSeconds = "COMFYQ_LOAD_STATUS_SECONDS"
)

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "%s=%q is not an integer", name, v)
	require.Positive(t, n, "%s must be positive", name)
	return n
}

// imageWorkflow is the cheapest job that makes an output: one PNG whose colour (and
// so bytes) is unique to the job.
func imageWorkflow(color int) []byte {
	return []byte(fmt.Sprintf(`{
	 "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": %d}},
	 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "load"}}
	}`, color))
}

// redisUsedMemory reads used_memory from INFO memory.
func (c *cluster) redisUsedMemory() int64 {
	c.t.Helper()
	info, err := c.rdb.Info(c.ctx, "memory").Result()
	require.NoError(c.t, err)
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(c.t, err)
			return n
		}
	}
	c.t.Fatalf("no used_memory in INFO memory")
	return 0
}

// produce enqueues count jobs from producers goroutines, numbering them from first.
func (c *cluster) produce(producers, first, count int) time.Duration {
	t := c.t
	t.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	next.Store(int64(first))
	errs := make(chan error, producers)
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []string
			for {
				i := int(next.Add(1)) - 1
				if i >= first+count {
					break
				}
				j, err := c.prod.Enqueue(c.ctx, job.Spec{Workflow: imageWorkflow(i)})
				if err != nil {
					errs <- err
					return
				}
				mine = append(mine, j.ID)
			}
			c.track(mine...)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return time.Since(start)
}

// TestLoadAndScale pushes many jobs (COMFYQ_LOAD_JOBS, default 500) from four
// concurrent producers through two workers attached to eight simulated nodes, with
// real Redis and S3, and measures: the enqueue rate; the drain rate; Redis memory per
// queued job and per finished job record; and the status endpoint (GET /v1/jobs/{id})
// under concurrent polling, in requests per second and latency percentiles. Every
// job is accounted for: it exists once, succeeded once, ran once, and its output is
// byte-correct in storage.
//
// The numbers are logged (go test -v) as LOAD lines; they are measurements, not
// assertions. docs/benchmarks.md ("Load and scale") records a 5000-job run.
func TestLoadAndScale(t *testing.T) {
	t.Parallel()
	n := envInt(t, envLoadJobs, 500)
	nodes := envInt(t, envLoadNodes, 8)
	clients := envInt(t, envStatusClients, 16)
	seconds := envInt(t, envStatusSeconds, 3)
	const producers = 4
	c := newCluster(t, clusterOpts{nodes: nodes})
	base := c.redisUsedMemory()

	// Half the jobs are enqueued before any worker runs: what a backlog costs.
	queuedN := n / 2
	enqueueTook := c.produce(producers, 0, queuedN)
	queuedMem := c.redisUsedMemory() - base
	queuedKeys, queuedBreakdown := c.keyBreakdown()

	// Two workers, each attached to half the nodes, drain while the producers add
	// the other half.
	start := time.Now()
	var half1, half2 []int
	for i := range nodes {
		if i%2 == 0 {
			half1 = append(half1, i)
		} else {
			half2 = append(half2, i)
		}
	}
	c.startWorker(workerOpts{nodes: half1})
	if len(half2) > 0 {
		c.startWorker(workerOpts{nodes: half2})
	}
	c.produce(producers, queuedN, n-queuedN)
	js := c.waitTerminal(10 * time.Minute)
	drain := time.Since(start)
	finishedMem := c.redisUsedMemory() - base

	// MEMORY USAGE of a sample of job records.
	ids := c.submitted()
	var recordBytes int64
	sample := min(50, len(ids))
	for _, id := range ids[:sample] {
		b, err := c.rdb.MemoryUsage(c.ctx, jobstore.KeyPrefix+"job:"+id).Result()
		require.NoError(t, err)
		recordBytes += b
	}
	recordBytes /= int64(sample)

	finishedKeys, finishedBreakdown := c.keyBreakdown()

	s := c.verify(js, expect{})
	perNode := make([]int, 0, nodes)
	for _, nd := range c.nodes {
		perNode = append(perNode, int(nd.sim.Stats().PromptsExecuted))
	}
	slices.Sort(perNode)

	st := c.statusLoad(ids, clients, time.Duration(seconds)*time.Second)

	c.report(s, fmt.Sprintf("nodes=%d producers=%d", nodes, producers))
	t.Logf("LOAD %d jobs, %d simulated nodes, %d producers, 2 workers; %d CPUs, load average %s",
		n, nodes, producers, runtime.NumCPU(), loadAverage())
	t.Logf("LOAD enqueue: %.0f jobs/s (%d jobs in %s, no worker running)",
		float64(queuedN)/enqueueTook.Seconds(), queuedN, enqueueTook.Round(time.Millisecond))
	var execMS, uploadMS int64
	for _, j := range js {
		execMS += j.Timings.ExecutionMS
		uploadMS += j.Timings.UploadMS
	}
	var busy float64
	for _, nd := range c.nodes {
		busy += nd.sim.Stats().BusyFraction()
	}
	t.Logf("LOAD drain: %.1f jobs/s (%d jobs in %s from the workers' start; jobs per node min %d max %d; "+
		"mean execution %d ms, upload %d ms; mean node busy fraction %.2f)",
		float64(n)/drain.Seconds(), n, drain.Round(time.Millisecond), perNode[0], perNode[len(perNode)-1],
		execMS/int64(n), uploadMS/int64(n), busy/float64(len(c.nodes)))
	t.Logf("LOAD redis per queued job: %d B used_memory, %d B of keys (%s)",
		queuedMem/int64(queuedN), queuedKeys/int64(queuedN), queuedBreakdown)
	t.Logf("LOAD redis per finished job: %d B used_memory, %d B of keys (%s); MEMORY USAGE of one job record %d B",
		finishedMem/int64(n), finishedKeys/int64(n), finishedBreakdown, recordBytes)
	t.Logf("LOAD status endpoint: %d clients, %d requests in %s: %.0f req/s, p50 %s, p99 %s, max %s",
		clients, st.requests, st.took.Round(time.Millisecond), float64(st.requests)/st.took.Seconds(),
		st.p50.Round(10*time.Microsecond), st.p99.Round(10*time.Microsecond), st.max.Round(10*time.Microsecond))
}

// keyBreakdown sums MEMORY USAGE over every key, grouped by kind (the key with ids
// and dates replaced by placeholders).
func (c *cluster) keyBreakdown() (int64, string) {
	t := c.t
	t.Helper()
	type agg struct {
		keys  int
		bytes int64
	}
	kinds := map[string]*agg{}
	iter := c.rdb.Scan(c.ctx, 0, "*", 1000).Iterator()
	for iter.Next(c.ctx) {
		key := iter.Val()
		b, err := c.rdb.MemoryUsage(c.ctx, key).Result()
		if err != nil {
			continue // expired meanwhile
		}
		kind := kindOf(key)
		if kinds[kind] == nil {
			kinds[kind] = &agg{}
		}
		kinds[kind].keys++
		kinds[kind].bytes += b
	}
	require.NoError(t, iter.Err())
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return int(kinds[b].bytes - kinds[a].bytes) })
	var parts []string
	var total int64
	for _, k := range names {
		total += kinds[k].bytes
		if kinds[k].keys >= 10 { // the per-job kinds; the rest is a constant
			parts = append(parts, fmt.Sprintf("%s %d keys %d B", k, kinds[k].keys, kinds[k].bytes))
		}
	}
	return total, strings.Join(parts, ", ")
}

// kindOf replaces the ids and dates in a Redis key by placeholders.
func kindOf(key string) string {
	segs := strings.Split(key, ":")
	for i, s := range segs {
		switch {
		case job.ValidID(s):
			segs[i] = "{id}"
		case len(s) == 10 && s[4] == '-' && s[7] == '-':
			segs[i] = "{date}"
		case strings.HasPrefix(s, "{") && s != "{default}":
			segs[i] = "{…}"
		default:
			if _, err := strconv.Atoi(s); err == nil {
				segs[i] = "{n}"
			}
		}
	}
	return strings.Join(segs, ":")
}

type statusStats struct {
	requests      int
	took          time.Duration
	p50, p99, max time.Duration
}

// statusLoad polls GET /v1/jobs/{id} for random ids from clients goroutines for d and
// returns the rate and latencies. Every answer must be a 200.
func (c *cluster) statusLoad(ids []string, clients int, d time.Duration) statusStats {
	t := c.t
	t.Helper()
	srv, err := api.New(api.Config{Redis: c.rdb, Storage: c.store, NoAuth: true, Logger: testLogger(t)})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { srv.Close(); ts.Close() })
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(c.ctx, d)
	defer cancel()
	lat := make([][]time.Duration, clients)
	var bad atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for ctx.Err() == nil {
				id := ids[rng.IntN(len(ids))]
				t0 := time.Now()
				resp, err := hc.Get(ts.URL + "/v1/jobs/" + id)
				if err != nil {
					if ctx.Err() == nil {
						bad.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					bad.Add(1)
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	require.Zero(t, bad.Load(), "status requests that failed")
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	require.NotEmpty(t, all)
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
	return statusStats{requests: len(all), took: took, p50: pct(0.50), p99: pct(0.99), max: all[len(all)-1]}
}

// loadAverage is the 1-minute load average where the system tells it, for context:
// the numbers of a shared machine move with its load.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	avg, _, _ := strings.Cut(string(data), " ")
	return avg
}
