package worker

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
)

// A running write that arrives late (the watcher's queue poll, an event delivered after
// the prompt ended) never takes a job back from uploading or out of a terminal state.
func TestLateRunningWriteChangesNothing(t *testing.T) {
	t.Parallel()
	opt, err := redis.ParseURL(testenv.NewRedis(t))
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	store := jobstore.New(rdb, jobstore.Config{})
	ctx := context.Background()

	for _, status := range []job.Status{job.StatusUploading, job.StatusSucceeded, job.StatusCanceled} {
		id, err := job.NewID()
		require.NoError(t, err)
		started := time.Now().UTC().Add(-time.Second)
		_, _, err = store.Create(ctx, &job.Job{ID: id, Status: status, Queue: "default", Attempt: 1,
			MaxAttempts: 1, CreatedAt: started, StartedAt: &started}, "")
		require.NoError(t, err)
		r := &run{w: &Worker{store: store}, id: id, startedCh: make(chan struct{}),
			log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		r.markRunning(ctx, time.Now())
		got, err := store.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, status, got.Status, "a late running write left %s alone", status)
	}
}
