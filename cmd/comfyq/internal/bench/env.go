package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/internal/redisproc"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	_ "github.com/comfyq/comfyq/storage/file" // file:// storage URLs
	_ "github.com/comfyq/comfyq/storage/s3"   // s3:// storage URLs
)

// Config configures a benchmark run. The zero value runs everything on this machine:
// a redis-server started for the run, a file store in a temporary directory and an
// in-process worker.
type Config struct {
	// RedisURL is the Redis to use. Empty: start redis-server (from PATH) on a free
	// loopback port for the run. Each run uses a queue of its own (bench-<random>)
	// and job records that expire after an hour; nothing else in the Redis is touched.
	RedisURL string
	// StorageURL is where outputs go: file:///dir or s3://bucket/prefix?endpoint=….
	// Empty: a temporary directory, removed afterwards. S3 requests pass through a
	// loopback proxy that adds the scenario's storage latency; file stores get it from
	// a wrapper (LatencyStore). Outputs are deleted after each run.
	StorageURL string
	// WorkerCommand runs a worker process, e.g. {"/usr/local/bin/comfyq", "worker"};
	// flags are appended. When set, the memory scenario moves the large output
	// through such a process and reports its peak resident memory (VmHWM), the
	// honest number for a worker. Empty: the worker runs in this process only and
	// memory is the peak of this process's heap.
	WorkerCommand []string
	// Skip lists scenarios that "all" leaves out (e.g. recovery, the longest).
	Skip []string
	// WorkerProfile, when set, has each worker process write its CPU profile to
	// WorkerProfile.worker-N (N counts the processes of the benchmark, from 1).
	WorkerProfile string
	// Jobs, Nodes and Depth override a scenario's job count, node count and
	// pipelining depth (0: the scenario's defaults, see Scenarios; Depth DepthAuto:
	// the automatic depth everywhere).
	Jobs, Nodes, Depth int
	// Producers is how many goroutines enqueue jobs at once (default 4).
	Producers int
	// LargeOutput is the size of the output the memory scenario moves (default
	// 1 GiB).
	LargeOutput int64
	// BaselineLargeOutput is the size of the output the baseline scenario moves
	// with the naive client and with comfyq to compare their memory (default
	// 256 MiB: the naive client holds it whole, and more while it grows).
	BaselineLargeOutput int64
	// TimeScale multiplies the scenarios' job times and storage latencies (default
	// 1: the timings of the issues). Smaller values give a quick run with the same
	// shape, as the package's tests do; the rows report the scaled values.
	TimeScale float64
	// Dir holds temporary files: the simulated nodes' input and output folders and,
	// without StorageURL, the file store. Default: /dev/shm where the machine has it
	// (memory), else the system's temporary directory. A simulated node stands for a
	// GPU machine with a disk of its own, and the default store for storage that is not
	// comfyq's; in memory, this machine's disk (its fsync, its journal's CPU) sets
	// neither. Pass a directory on a disk, or --storage, to measure one.
	Dir string
	// ComfyUIVersion is the ComfyUI release the simulated nodes speak (default:
	// comfysim.NewestVersion).
	ComfyUIVersion string
	// Logger receives progress (Info) and the worker's warnings. Default: discard.
	Logger *slog.Logger

	// noLeaseWait ends the recovery scenario without waiting for asynq to hand the
	// killed worker's tasks out again (tests: it takes up to two minutes).
	noLeaseWait bool
}

func (c *Config) setDefaults() error {
	if c.Jobs < 0 || c.Nodes < 0 || c.Depth < DepthAuto || c.Producers < 0 || c.LargeOutput < 0 || c.BaselineLargeOutput < 0 || c.TimeScale < 0 {
		return errors.New("bench: jobs, nodes, depth, producers, large output and time scale must not be negative")
	}
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	if c.Producers == 0 {
		c.Producers = 4
	}
	if c.LargeOutput == 0 {
		c.LargeOutput = 1 << 30
	}
	if c.BaselineLargeOutput == 0 {
		c.BaselineLargeOutput = 256 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Dir == "" {
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			c.Dir = "/dev/shm"
		}
	}
	if c.ComfyUIVersion == "" {
		c.ComfyUIVersion = comfysim.NewestVersion
	}
	if !slices.Contains(comfysim.Versions(), c.ComfyUIVersion) {
		return fmt.Errorf("bench: ComfyUI version %q: want one of %s", c.ComfyUIVersion, strings.Join(comfysim.Versions(), ", "))
	}
	return nil
}

// env is the infrastructure shared by the runs of a benchmark: Redis and storage.
type env struct {
	cfg Config
	log *slog.Logger

	redisURL string
	redisSrv *redisproc.Server
	rdb      redis.UniversalClient
	producer *producer.Client
	insp     *asynq.Inspector

	tmpDir string // removed by close, when we made it

	file    storage.Store // a file store: the given one, or a temporary one
	fileURL string
	s3      storage.Store // the given S3 store, if any
	s3URL   string

	proxy    *latencyProxy // in front of the S3 endpoint
	proxySrv *http.Server
	s3Proxy  storage.Store // the S3 store reached through proxy

	workerProcs int // worker processes started, which numbers their profiles
}

func newEnv(ctx context.Context, cfg Config) (_ *env, err error) {
	e := &env{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	e.redisURL = cfg.RedisURL
	if e.redisURL == "" {
		e.log.Info("starting redis-server")
		if e.redisSrv, err = startRedis(ctx, cfg.Dir); err != nil {
			return nil, err
		}
		e.redisURL = e.redisSrv.URL()
	}
	if e.rdb, err = producer.OpenRedis(e.redisURL); err != nil {
		return nil, err
	}
	if err = e.rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("bench: Redis %s: %w", redactURL(e.redisURL), err)
	}
	if e.producer, err = producer.New(producer.Config{Redis: e.rdb, Retention: time.Hour, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		return nil, err
	}
	e.insp = asynq.NewInspectorFromRedisClient(e.rdb)

	if e.tmpDir, err = os.MkdirTemp(cfg.Dir, "comfyq-bench-"); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	switch {
	case cfg.StorageURL == "":
		e.fileURL = (&url.URL{Scheme: "file", Path: e.tmpDir + "/outputs"}).String()
	case strings.HasPrefix(strings.ToLower(cfg.StorageURL), "s3:"):
		e.s3URL = cfg.StorageURL
		e.fileURL = (&url.URL{Scheme: "file", Path: e.tmpDir + "/outputs"}).String()
	default:
		e.fileURL = cfg.StorageURL
	}
	if e.file, err = storage.Open(ctx, e.fileURL); err != nil {
		return nil, err
	}
	if e.s3URL != "" {
		if e.s3, err = storage.Open(ctx, e.s3URL); err != nil {
			return nil, err
		}
		if err := e.s3.Ping(ctx); err != nil {
			return nil, fmt.Errorf("bench: storage %s: %w", e.s3, err)
		}
		if err := e.startProxy(ctx); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// startProxy puts a latency-injecting proxy in front of the S3 endpoint.
func (e *env) startProxy(ctx context.Context) error {
	u, err := url.Parse(e.s3URL)
	if err != nil {
		return fmt.Errorf("bench: storage URL: %w", err)
	}
	q := u.Query()
	endpoint := q.Get("endpoint")
	if endpoint == "" {
		return errors.New("bench: an S3 storage URL needs endpoint=http://host:port (the benchmark adds latency with a proxy in front of it)")
	}
	if e.proxy, err = newLatencyProxy(endpoint); err != nil {
		return fmt.Errorf("bench: proxy: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bench: listen: %w", err)
	}
	e.proxySrv = &http.Server{Handler: e.proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.proxySrv.Serve(ln) }()
	q.Set("endpoint", "http://"+ln.Addr().String())
	u.RawQuery = q.Encode()
	e.s3Proxy, err = storage.Open(ctx, u.String())
	return err
}

// mainStore is the store runs use: S3 when one was given, else the file store. It
// returns the store with latency added to each request, and the store without
// (for cleaning up).
func (e *env) mainStore(latency time.Duration) (withLatency, plain storage.Store) {
	if e.s3 != nil {
		if latency <= 0 {
			return e.s3, e.s3
		}
		e.proxy.SetLatency(latency)
		return e.s3Proxy, e.s3
	}
	return WithLatency(e.file, latency), e.file
}

func (e *env) close() {
	if e.proxySrv != nil {
		_ = e.proxySrv.Close()
	}
	if e.producer != nil {
		_ = e.producer.Close()
	}
	if e.insp != nil {
		_ = e.insp.Close()
	}
	if e.rdb != nil {
		_ = e.rdb.Close()
	}
	if e.redisSrv != nil {
		_ = e.redisSrv.Close()
		_ = os.RemoveAll(e.redisSrv.Dir())
	}
	if e.tmpDir != "" {
		_ = os.RemoveAll(e.tmpDir)
	}
}

// startRedis starts a redis-server for one run, with its files in a new directory
// under dir (default: the system's temporary directory).
func startRedis(ctx context.Context, dir string) (*redisproc.Server, error) {
	if _, err := redisproc.Binary(); err != nil {
		return nil, fmt.Errorf("bench: %w, or give a Redis URL", err)
	}
	work, err := os.MkdirTemp(dir, "comfyq-bench-redis-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	s, err := redisproc.Start(ctx, redisproc.Options{Dir: work})
	if err != nil {
		_ = os.RemoveAll(work)
		return nil, fmt.Errorf("bench: %w", err)
	}
	return s, nil
}

// newQueue returns a queue name of its own for one run.
func newQueue() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "bench-" + hex.EncodeToString(b[:])
}

// dropQueue removes a run's queue from Redis.
func (e *env) dropQueue(q string) {
	_ = e.insp.DeleteQueue(q, true)
}

// waitServers waits until n asynq servers process queue q (the worker's node
// servers are up), or until exited is closed.
func (e *env) waitServers(ctx context.Context, q string, n int, exited <-chan struct{}) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		servers, err := e.insp.Servers()
		if err == nil {
			count := 0
			for _, s := range servers {
				if _, ok := s.Queues[q]; ok {
					count++
				}
			}
			if count >= n {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: the worker did not start processing queue %s within 60s", q)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("bench: the worker process exited before it took jobs")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// levelFilter passes records at or above a level to another handler.
type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.Handler.Enabled(ctx, l)
}

func (f levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{f.Handler.WithAttrs(a), f.min}
}

func (f levelFilter) WithGroup(g string) slog.Handler {
	return levelFilter{f.Handler.WithGroup(g), f.min}
}

var _ io.Writer = (*tailBuffer)(nil)

// tailBuffer keeps the last bytes written to it (a child process's log).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	const keep = 8 << 10
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > keep {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-keep:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
