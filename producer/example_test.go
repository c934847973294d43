package producer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	_ "github.com/comfyq/comfyq/storage/file"
	"github.com/comfyq/comfyq/worker"
)

// workflow is an API-format workflow ("Export (API)" in ComfyUI): a 64×64 image, saved.
var workflow = []byte(`{
  "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "example"}}}`)

// startRedis starts an embedded Redis-compatible server for the examples, so that they
// run anywhere; a real program gives the URL of its Redis, such as
// redis://127.0.0.1:6379/0.
func startRedis() (url string, stop func()) {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		log.Fatal(err)
	}
	return "redis://" + mr.Addr() + "/0", mr.Close
}

// startWorker runs what a deployment runs elsewhere (comfyq worker): a worker attached
// to a simulated ComfyUI node, copying outputs to a directory.
func startWorker(redisURL string) (stop func()) {
	sim, err := comfysim.New(comfysim.Options{})
	if err != nil {
		log.Fatal(err)
	}
	node := httptest.NewServer(sim)
	dir, err := os.MkdirTemp("", "comfyq-example-")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	store, err := storage.Open(ctx, "file://"+dir)
	if err != nil {
		log.Fatal(err)
	}
	rdb, err := producer.OpenRedis(redisURL)
	if err != nil {
		log.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := worker.New(worker.Config{Redis: rdb, Storage: store, Logger: quiet,
		Nodes: []worker.NodeConfig{{URL: node.URL, Name: "sim"}}})
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(ctx, nil)
	}()
	return func() {
		cancel()
		<-done
		rdb.Close()
		node.Close()
		_ = sim.Close()
		os.RemoveAll(dir)
	}
}

// A program submits a workflow and waits for its outputs. Workers (comfyq worker) run
// it on a ComfyUI node and copy the outputs to storage.
func Example() {
	redisURL, stopRedis := startRedis()
	defer stopRedis()
	stopWorker := startWorker(redisURL)
	defer stopWorker()

	p, err := producer.New(producer.Config{RedisURL: redisURL})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	j, err := p.Enqueue(ctx, job.Spec{Workflow: workflow})
	if err != nil {
		log.Fatal(err)
	}
	j, err = p.Wait(ctx, j.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(j.Status)
	for _, o := range j.Outputs {
		fmt.Println(o.NodeID, o.Kind, o.ContentType)
	}
	// Output:
	// succeeded
	// 2 image image/png
}

func ExampleNew() {
	redisURL, stop := startRedis()
	defer stop()

	// RedisURL takes redis://, rediss:// and redis-sentinel:// URLs; give Redis instead
	// to share a client of your own.
	p, err := producer.New(producer.Config{RedisURL: redisURL, Retention: 24 * time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	fmt.Println("connected")
	// Output: connected
}

// A submission that cannot run is refused before anything is enqueued, with a stable
// code; an idempotency key makes a retried submission return the same job.
func ExampleClient_Enqueue() {
	redisURL, stop := startRedis()
	defer stop()
	p, err := producer.New(producer.Config{RedisURL: redisURL})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()

	_, err = p.Enqueue(ctx, job.Spec{Workflow: []byte(`{"1": {"class_type": "SaveImage", "inputs": {"images": ["9", 0]}}}`)})
	var se *job.SpecError
	if errors.As(err, &se) {
		fmt.Println("refused:", se.Code, se.Field)
	}

	first, err := p.Enqueue(ctx, job.Spec{Workflow: workflow, IdempotencyKey: "order-17", Queue: "high"})
	if err != nil {
		log.Fatal(err)
	}
	again, err := p.Enqueue(ctx, job.Spec{Workflow: workflow, IdempotencyKey: "order-17", Queue: "high"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(first.Status, first.Queue, first.ID == again.ID)
	// Output:
	// refused: invalid_workflow workflow
	// queued high true
}

// Watch streams a job's status and progress until it ends.
func ExampleClient_Watch() {
	redisURL, stopRedis := startRedis()
	defer stopRedis()
	stopWorker := startWorker(redisURL)
	defer stopWorker()
	p, err := producer.New(producer.Config{RedisURL: redisURL})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	j, err := p.Enqueue(ctx, job.Spec{Workflow: workflow})
	if err != nil {
		log.Fatal(err)
	}
	events, err := p.Watch(ctx, j.ID)
	if err != nil {
		log.Fatal(err)
	}
	var last job.Event
	for ev := range events { // the current state first, then every change
		if ev.Type == job.EventProgress && ev.Job.Progress != nil {
			_ = ev.Job.Progress.Fraction // a progress bar would move here
		}
		last = ev
	}
	fmt.Println(last.Type, last.Job.Status)
	// Output: status succeeded
}

// Canceling a queued job removes it from its queue; a running one is interrupted on its
// node. A job that already ended stays as it is.
func ExampleClient_Cancel() {
	redisURL, stop := startRedis()
	defer stop()
	p, err := producer.New(producer.Config{RedisURL: redisURL})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()

	j, err := p.Enqueue(ctx, job.Spec{Workflow: workflow}) // no worker runs here: it waits
	if err != nil {
		log.Fatal(err)
	}
	j, err = p.Cancel(ctx, j.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(j.Status, j.Error.Code)
	_, err = p.Cancel(ctx, j.ID)
	fmt.Println(errors.Is(err, job.ErrTerminal))
	// Output:
	// canceled canceled
	// true
}

// Wait returns when the job ends, or when its context does, with the last state seen:
// here no worker runs, so the job is still queued when the second is up.
func ExampleClient_Wait() {
	redisURL, stop := startRedis()
	defer stop()
	p, err := producer.New(producer.Config{RedisURL: redisURL})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	j, err := p.Enqueue(context.Background(), job.Spec{Workflow: workflow})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	j, err = p.Wait(ctx, j.ID)
	fmt.Println(errors.Is(err, context.DeadlineExceeded), j.Status)
	// Output: true queued
}
