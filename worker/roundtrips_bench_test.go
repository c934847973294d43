package worker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
	"github.com/comfyq/comfyq/internal/redistrips"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/worker"
)

func countedClient(tb testing.TB, url string) (*redis.Client, *redistrips.Counter) {
	tb.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	c := redistrips.New()
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
	pc.Reset()
	wc.Reset()
	b.ResetTimer()
	run(b.N)
	b.StopTimer()

	n := float64(b.N)
	ptrips, wtrips := pc.Trips(), wc.Trips()
	b.ReportMetric(float64(ptrips+wtrips)/n, "trips/job")
	b.ReportMetric(float64(ptrips)/n, "producer-trips/job")
	b.ReportMetric(float64(wtrips)/n, "worker-trips/job")
	b.ReportMetric(float64(pc.Bytes()+wc.Bytes())/n, "bytes/job")
	b.ReportMetric(0, "ns/op")
	b.Logf("producer, %d jobs:\n%s", b.N, pc.Report(b.N))
	b.Logf("worker, %d jobs:\n%s", b.N, wc.Report(b.N))
}
