package deploy_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
	"github.com/comfyq/comfyq/internal/fixtures"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	_ "github.com/comfyq/comfyq/storage/s3"
	"github.com/comfyq/comfyq/worker"
)

// BenchmarkRedisMemory measures what a job costs in Redis, for docs/operations.md.
// Each sub-benchmark starts a private redis-server, enqueues b.N jobs of ComfyUI's
// default text-to-image graph (fixtures/workflows/default_embedding.api.json, 895
// bytes, 7 nodes) with the producer, and reports used_memory growth per job:
//
//   - queued: the job record, its index entry and the asynq task (payload + pending
//     list entry), before any worker runs;
//   - succeeded: after workers ran every job on simulated ComfyUI nodes and copied its
//     output to S3 (a presigned URL in the record): the record and index entry stay,
//     asynq has deleted the task;
//   - failed: the same workflow naming a checkpoint the node lacks, so the node refuses
//     it (validation_failed, never retried) and asynq keeps the task, payload
//     included, in its archive.
//
// Run it with the services of scripts/test.sh, 10,000 jobs each:
//
//	scripts/test.sh -run '^$' -bench RedisMemory -benchtime 10000x ./deploy
func BenchmarkRedisMemory(b *testing.B) {
	wf, err := os.ReadFile(fixtures.Workflow("default_embedding.api.json"))
	require.NoError(b, err)
	// The same workflow with a checkpoint the node does not have: the node refuses it.
	bad := bytes.Replace(wf, []byte(`"v2-1_768-ema-pruned.ckpt"`), []byte(`"not-on-this-node.ckpt"`), 1)
	require.NotEqual(b, wf, bad)

	b.Run("queued", func(b *testing.B) { measureJobs(b, wf, job.StatusQueued) })
	b.Run("succeeded", func(b *testing.B) { measureJobs(b, wf, job.StatusSucceeded) })
	b.Run("failed", func(b *testing.B) { measureJobs(b, bad, job.StatusFailed) })
}

// measureJobs enqueues b.N jobs, runs them unless want is queued, and checks that
// every job ends in the state want.
func measureJobs(b *testing.B, workflow []byte, want job.Status) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	rdb, err := producer.OpenRedis(testenv.NewRedis(b))
	require.NoError(b, err)
	defer rdb.Close()
	p, err := producer.New(producer.Config{Redis: rdb})
	require.NoError(b, err)
	defer p.Close()

	before := memoryInfo(b, rdb)
	b.ResetTimer()
	for range b.N {
		_, err = p.Enqueue(ctx, job.Spec{Workflow: workflow})
		require.NoError(b, err)
	}
	b.StopTimer()
	if want != job.StatusQueued {
		runAll(ctx, b, rdb)
	}
	jobs, _, err := p.List(ctx, job.ListOptions{Limit: 500})
	require.NoError(b, err)
	for _, j := range jobs {
		require.Equal(b, want, j.Status, "job %s: %+v", j.ID, j.Error)
	}
	after := memoryInfo(b, rdb)

	// Where it goes: MEMORY USAGE (SAMPLES 0: exact) of each key family, per job.
	fams := keyFamilies(b, rdb)
	var task, record, index, lists int64
	for name, n := range fams {
		switch {
		case strings.HasPrefix(name, "asynq:{default}:t:"):
			task += n
		case strings.HasPrefix(name, jobstore.KeyPrefix+"job:"):
			record += n
		case name == jobstore.KeyPrefix+"jobs", strings.HasPrefix(name, jobstore.KeyPrefix+"jobs?"):
			index += n
		case strings.HasSuffix(name, ":pending"), strings.HasSuffix(name, ":archived"):
			lists += n
		}
	}

	// What the keys take in all (values, key names, expiry entries, hash tables) is
	// what a FLUSHALL gives back. The rest of the growth since the start is fixed
	// (connections, Lua scripts), not per job.
	require.NoError(b, rdb.FlushAll(ctx).Err())
	flushed := memoryInfo(b, rdb)

	n := float64(b.N)
	b.ReportMetric(float64(after["used_memory"]-flushed["used_memory"])/n, "redis-B/job")
	b.ReportMetric(float64(task)/n, "task-B/job")
	b.ReportMetric(float64(record)/n, "record-B/job")
	b.ReportMetric(float64(index)/n, "index-B/job")
	b.ReportMetric(float64(lists)/n, "list-B/job")
	b.ReportMetric(float64(flushed["used_memory"]-before["used_memory"])/(1<<10), "fixed-KiB")
	// Redis commands per job: enqueue, and for jobs that ran, everything the workers
	// did (status and progress writes, asynq's dequeue, lease and completion, plus
	// their polling while the run lasted).
	b.ReportMetric(float64(after["total_commands_processed"]-before["total_commands_processed"])/n, "cmds/job")
}

// BenchmarkRedisIdleLoad measures the Redis commands a worker sends while there is
// nothing to do, per node per second: polling for tasks (every --poll-interval),
// heartbeats, and the like. It is what a fleet costs Redis when idle.
//
//	scripts/test.sh -run '^$' -bench RedisIdleLoad -benchtime 50x ./deploy
func BenchmarkRedisIdleLoad(b *testing.B) {
	for _, poll := range []time.Duration{100 * time.Millisecond, time.Second} {
		b.Run("poll="+poll.String(), func(b *testing.B) { measureIdle(b, poll) })
	}
}

func measureIdle(b *testing.B, poll time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rdb, err := producer.OpenRedis(testenv.NewRedis(b))
	require.NoError(b, err)
	defer rdb.Close()
	store, err := storage.Open(ctx, testenv.S3URL(b))
	require.NoError(b, err)
	const nodes = 4
	var ncs []worker.NodeConfig
	for i := range nodes {
		_, url := simtest.NewServer(b, comfysim.Options{})
		ncs = append(ncs, worker.NodeConfig{URL: url, Name: "sim-" + strconv.Itoa(i)})
	}
	w, err := worker.New(worker.Config{Redis: rdb, Storage: store, Nodes: ncs, PollInterval: poll,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(b, err)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx, nil) }()
	defer func() {
		stop()
		require.NoError(b, <-done)
	}()
	// Count once every node's asynq server has registered.
	insp := asynq.NewInspectorFromRedisClient(rdb)
	for {
		servers, err := insp.Servers()
		require.NoError(b, err)
		if len(servers) >= nodes {
			break
		}
		select {
		case <-ctx.Done():
			b.Fatalf("%d of %d worker servers registered", len(servers), nodes)
		case <-time.After(50 * time.Millisecond):
		}
	}
	before := memoryInfo(b, rdb)
	start := time.Now()
	b.ResetTimer()
	for range b.N {
		time.Sleep(100 * time.Millisecond) // the idle time being measured
	}
	b.StopTimer()
	after := memoryInfo(b, rdb)
	cmds := float64(after["total_commands_processed"] - before["total_commands_processed"])
	b.ReportMetric(cmds/time.Since(start).Seconds()/nodes, "cmds/s/node")
}

// runAll runs every queued job on four simulated nodes and waits until asynq holds no
// pending, active, scheduled or retrying task.
func runAll(ctx context.Context, b *testing.B, rdb redis.UniversalClient) {
	store, err := storage.Open(ctx, testenv.S3URL(b))
	require.NoError(b, err)
	sim := comfysim.Options{Models: []string{"v2-1_768-ema-pruned.ckpt"}}
	var nodes []worker.NodeConfig
	for i := range 4 {
		_, url := simtest.NewServer(b, sim)
		nodes = append(nodes, worker.NodeConfig{URL: url, Name: "sim-" + strconv.Itoa(i)})
	}
	w, err := worker.New(worker.Config{
		Redis: rdb, Storage: store, Nodes: nodes, ShutdownGrace: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(b, err)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx, nil) }()

	insp := asynq.NewInspectorFromRedisClient(rdb)
	for {
		qi, err := insp.GetQueueInfo("default")
		require.NoError(b, err)
		if qi.Pending+qi.Active+qi.Scheduled+qi.Retry == 0 {
			break
		}
		select {
		case <-ctx.Done():
			b.Fatalf("jobs still running: %+v", qi)
		case <-time.After(200 * time.Millisecond):
		}
	}
	stop()
	require.NoError(b, <-done)
}

// memoryInfo returns the integer fields of INFO memory and INFO stats.
func memoryInfo(b *testing.B, rdb redis.UniversalClient) map[string]int64 {
	info, err := rdb.Info(context.Background(), "memory", "stats").Result()
	require.NoError(b, err)
	out := map[string]int64{}
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if n, err := strconv.ParseInt(v, 10, 64); ok && err == nil {
			out[k] = n
		}
	}
	require.Contains(b, out, "used_memory", "INFO memory:\n%s", info)
	return out
}

// uuidRE matches the ids in key names, so that keys group into families.
var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// keyFamilies sums MEMORY USAGE by key family (ids replaced by {id}).
func keyFamilies(b *testing.B, rdb redis.UniversalClient) map[string]int64 {
	ctx := context.Background()
	fams := map[string]int64{}
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		n, err := rdb.MemoryUsage(ctx, k, 0).Result()
		if err != nil {
			continue // expired meanwhile
		}
		fams[uuidRE.ReplaceAllString(k, "{id}")] += n
	}
	require.NoError(b, iter.Err())
	return fams
}
