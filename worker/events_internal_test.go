package worker

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy"
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

func TestRetryableExecution(t *testing.T) {
	t.Parallel()
	r := &run{w: &Worker{cfg: Config{RetryOn: []string{"FlakyNetError"}}}, p: &job.Payload{RetryOn: []string{"custom.Transient"}}}
	for _, tc := range []struct {
		typ, msg string
		want     bool
	}{
		{"torch.OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB", true},
		{"RuntimeError", "CUDA error: an illegal memory access was encountered", true},
		{"torch.AcceleratorError", "CUDA error: unspecified launch failure", true},
		{"RuntimeError", "cuDNN error: CUDNN_STATUS_INTERNAL_ERROR", true},
		{"mynodes.FlakyNetError", "connection reset", true},    // worker's --retry-on, by short name
		{"custom.Transient", "try again", true},                // the job's retry_on
		{"RuntimeError", "Sizes of tensors must match", false}, // shape mismatch
		{"RuntimeError", "Expected all tensors to be on the same device, but found cuda:0 and cpu", false},
		{"ValueError", "invalid value for width", false},
		{"FileNotFoundError", "model.safetensors", false},
		{"Transient", "the job lists custom.Transient, not Transient", false},
	} {
		ee := &comfy.ExecutionError{ExceptionType: tc.typ, ExceptionMessage: tc.msg}
		require.Equal(t, tc.want, r.retryableExecution(ee), "%s: %s", tc.typ, tc.msg)
	}
}
