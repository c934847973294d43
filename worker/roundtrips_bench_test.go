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

// countedRig is a producer and a real worker on one simulated node, each with a Redis
// client that counts its round trips; the jobs are waited for by a third client that
// is not counted.
type countedRig struct {
	p                          *producer.Client
	wait                       *jobstore.Store
	producerTrips, workerTrips *redistrips.Counter
}

// startCountedRig starts the rig, with S3 for the outputs; the worker stops at the
// end of the test.
func startCountedRig(ctx context.Context, tb testing.TB) *countedRig {
	tb.Helper()
	url := testenv.NewRedis(tb)
	prdb, pc := countedClient(tb, url)
	wrdb, wc := countedClient(tb, url)
	waiter, err := producer.OpenRedis(url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { waiter.Close() })
	st, err := storage.Open(ctx, testenv.S3URL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	_, simURL := simtest.NewServer(tb, comfysim.Options{})
	p, err := producer.New(producer.Config{Redis: prdb})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	w, err := worker.New(worker.Config{
		Redis: wrdb, Storage: st,
		Nodes:          []worker.NodeConfig{{URL: simURL, Name: "sim"}},
		HealthInterval: time.Second, ShutdownGrace: 10 * time.Second,
		Logger: testLogger(tb),
	})
	if err != nil {
		tb.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx, nil) }()
	wait := jobstore.New(waiter, jobstore.Config{})
	tb.Cleanup(func() {
		wait.Close()
		stop()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
	return &countedRig{p: p, wait: wait, producerTrips: pc, workerTrips: wc}
}

// run enqueues n jobs (a 64×48 EmptyImage→SaveImage) and waits until each succeeded.
func (rig *countedRig) run(ctx context.Context, tb testing.TB, n int) {
	tb.Helper()
	ids := make([]string, n)
	for i := range ids {
		j, err := rig.p.Enqueue(ctx, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)})
		if err != nil {
			tb.Fatal(err)
		}
		ids[i] = j.ID
	}
	for _, id := range ids {
		j, err := job.Wait(ctx, rig.wait, id)
		if err != nil {
			tb.Fatal(err)
		}
		if j.Status != job.StatusSucceeded {
			tb.Fatalf("job %s ended %s: %+v", id, j.Status, j.Error)
		}
	}
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
	rig := startCountedRig(ctx, b)
	pc, wc := rig.producerTrips, rig.workerTrips
	rig.run(ctx, b, 3) // warm up: scripts loaded, connections open
	pc.Reset()
	wc.Reset()
	b.ResetTimer()
	rig.run(ctx, b, b.N)
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
