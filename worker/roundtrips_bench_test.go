package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/worker"
)

// tripCounter counts the round trips a Redis client makes (one per command, one per
// pipeline) by kind, and the bytes its connections move.
type tripCounter struct {
	mu         sync.Mutex
	trips      map[string]int
	total      int
	sent, recv atomic.Int64
}

var (
	uuidRE   = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	serverRE = regexp.MustCompile(`\{[^}]*:\d+:[^}]*\}`)
)

// kind names a command by its name and first key, ids folded: "evalsha asynq:{q}:pending".
func tripKind(cmd redis.Cmder) string {
	args := cmd.Args()
	name := strings.ToLower(cmd.Name())
	first := 1
	if name == "evalsha" || name == "eval" {
		first = 3 // script, number of keys, then the keys
	}
	if len(args) > first {
		if k, ok := args[first].(string); ok && k != "" {
			k = uuidRE.ReplaceAllString(k, "{id}")
			k = serverRE.ReplaceAllString(k, "{server}")
			return name + " " + k
		}
	}
	return name
}

func (c *tripCounter) add(kind string) {
	c.mu.Lock()
	c.trips[kind]++
	c.total++
	c.mu.Unlock()
}

func (c *tripCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: conn, c: c}, nil
	}
}

func (c *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(tripKind(cmd))
		return next(ctx, cmd)
	}
}

func (c *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		kinds := make([]string, len(cmds))
		for i, cmd := range cmds {
			kinds[i] = strings.Fields(tripKind(cmd))[0]
		}
		c.add("pipeline [" + strings.Join(kinds, " ") + "]")
		return next(ctx, cmds)
	}
}

func (c *tripCounter) reset() {
	c.mu.Lock()
	c.trips, c.total = map[string]int{}, 0
	c.mu.Unlock()
	c.sent.Store(0)
	c.recv.Store(0)
}

func (c *tripCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// report lists the kinds of trips, most frequent first, per job.
func (c *tripCounter) report(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	kinds := make([]string, 0, len(c.trips))
	for k := range c.trips {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, k int) bool {
		if c.trips[kinds[i]] != c.trips[kinds[k]] {
			return c.trips[kinds[i]] > c.trips[kinds[k]]
		}
		return kinds[i] < kinds[k]
	})
	var sb strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&sb, "  %6.2f/job  %5d  %s\n", float64(c.trips[k])/float64(n), c.trips[k], k)
	}
	return sb.String()
}

type countingConn struct {
	net.Conn
	c *tripCounter
}

func (cc *countingConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	cc.c.recv.Add(int64(n))
	return n, err
}

func (cc *countingConn) Write(p []byte) (int, error) {
	n, err := cc.Conn.Write(p)
	cc.c.sent.Add(int64(n))
	return n, err
}

func countedClient(tb testing.TB, url string) (*redis.Client, *tripCounter) {
	tb.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	c := &tripCounter{trips: map[string]int{}}
	rdb.AddHook(c)
	tb.Cleanup(func() { rdb.Close() })
	return rdb, c
}

// BenchmarkRedisRoundTripsPerJob runs b.N jobs (a 64×48 EmptyImage→SaveImage) through
// a producer and a real worker on one simulated node, and reports the Redis round trips
// (commands and pipelines) and the bytes each side's client made per job, split into
// comfyq's own (the job record) and asynq's. The jobs are waited for by a third client
// that is not counted. With -v the trips are listed by kind.
//
//	scripts/test.sh -run '^$' -bench RedisRoundTripsPerJob -benchtime 200x -v ./worker/
func BenchmarkRedisRoundTripsPerJob(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	url := testenv.NewRedis(b)
	prdb, pc := countedClient(b, url)
	wrdb, wc := countedClient(b, url)
	waiter, err := producer.OpenRedis(url)
	if err != nil {
		b.Fatal(err)
	}
	defer waiter.Close()
	st, err := storage.Open(ctx, testenv.S3URL(b))
	if err != nil {
		b.Fatal(err)
	}
	_, simURL := simtest.NewServer(b, comfysim.Options{})
	p, err := producer.New(producer.Config{Redis: prdb})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	w, err := worker.New(worker.Config{
		Redis: wrdb, Storage: st,
		Nodes:          []worker.NodeConfig{{URL: simURL, Name: "sim"}},
		HealthInterval: time.Second, ShutdownGrace: 10 * time.Second,
		Logger: testLogger(b),
	})
	if err != nil {
		b.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx, nil) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	wstore := jobstore.New(waiter, jobstore.Config{})
	defer wstore.Close()

	run := func(n int) {
		ids := make([]string, n)
		for i := range ids {
			j, err := p.Enqueue(ctx, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)})
			if err != nil {
				b.Fatal(err)
			}
			ids[i] = j.ID
		}
		for _, id := range ids {
			j, err := job.Wait(ctx, wstore, id)
			if err != nil {
				b.Fatal(err)
			}
			if j.Status != job.StatusSucceeded {
				b.Fatalf("job %s ended %s: %+v", id, j.Status, j.Error)
			}
		}
	}
	run(3) // warm up: scripts loaded, connections open
	pc.reset()
	wc.reset()
	b.ResetTimer()
	run(b.N)
	b.StopTimer()

	n := float64(b.N)
	ptrips, wtrips := pc.count(), wc.count()
	b.ReportMetric(float64(ptrips+wtrips)/n, "trips/job")
	b.ReportMetric(float64(ptrips)/n, "producer-trips/job")
	b.ReportMetric(float64(wtrips)/n, "worker-trips/job")
	b.ReportMetric(float64(pc.sent.Load()+pc.recv.Load()+wc.sent.Load()+wc.recv.Load())/n, "bytes/job")
	b.ReportMetric(0, "ns/op")
	b.Logf("producer, %d jobs:\n%s", b.N, pc.report(b.N))
	b.Logf("worker, %d jobs:\n%s", b.N, wc.report(b.N))
}
