package api

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/producer"
)

// cursorAfter writes the cursors jobstore.Store.List hands out.
func TestCursorAfterIsTheStoreCursor(t *testing.T) {
	t.Parallel()
	rdb, err := producer.OpenRedis(testenv.NewRedis(t))
	require.NoError(t, err)
	t.Cleanup(func() { rdb.Close() })
	store := jobstore.New(rdb, jobstore.Config{})
	for i := 0; i < 2; i++ {
		id, idErr := job.NewID()
		require.NoError(t, idErr)
		_, _, err = store.Create(t.Context(), &job.Job{ID: id, Status: job.StatusQueued, Queue: "default", CreatedAt: time.Now().UTC()}, "")
		require.NoError(t, err)
		time.Sleep(2 * time.Millisecond)
	}
	jobs, next, err := store.List(t.Context(), job.ListOptions{Limit: 1})
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	require.Equal(t, next, cursorAfter(jobs[0]))
}
