package worker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/worker"
)

// A task's job record is read in the round trip that makes the job the worker's (its
// in-flight entry): no read of its own, so a job costs one trip less.
func TestRecordIsReadWithTheOwnership(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := testenv.NewRedis(t)
	wrdb, trips := countedClient(t, url)
	prdb, err := producer.OpenRedis(url)
	require.NoError(t, err)
	defer prdb.Close()
	st, err := storage.Open(ctx, testenv.S3URL(t))
	require.NoError(t, err)
	_, simURL := simtest.NewServer(t, comfysim.Options{})
	p, err := producer.New(producer.Config{Redis: prdb})
	require.NoError(t, err)
	defer p.Close()
	w, err := worker.New(worker.Config{
		Redis: wrdb, Storage: st,
		Nodes:          []worker.NodeConfig{{URL: simURL, Name: "sim"}},
		HealthInterval: time.Second, ShutdownGrace: 10 * time.Second,
		Logger: testLogger(t),
	})
	require.NoError(t, err)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx, nil) }()
	defer func() {
		stop()
		require.NoError(t, <-done)
	}()
	store := jobstore.New(prdb, jobstore.Config{})
	defer store.Close()

	run := func() {
		j, err := p.Enqueue(ctx, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)})
		require.NoError(t, err)
		j, err = job.Wait(ctx, store, j.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, j.Status, "%+v", j.Error)
	}
	run() // the scripts loaded
	trips.Reset()
	run()
	kinds := trips.Kinds()
	require.Zero(t, kinds["get comfyq:job:{id}"], "no read of the record on its own: %v", kinds)
	require.Equal(t, 1, kinds["pipeline [evalsha get]"], "the ownership and the read, together: %v", kinds)
}
