package jobstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
)

func setup(t *testing.T) (*jobstore.Store, redis.UniversalClient) {
	t.Helper()
	opt, err := redis.ParseURL(testenv.NewRedis(t))
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	s := jobstore.New(rdb, jobstore.Config{})
	t.Cleanup(func() { s.Close() })
	return s, rdb
}

func newJob(t *testing.T) *job.Job {
	t.Helper()
	id, err := job.NewID()
	require.NoError(t, err)
	return &job.Job{ID: id, Status: job.StatusQueued, Queue: "default", Attempt: 1, MaxAttempts: 4, CreatedAt: time.Now().UTC()}
}

func TestStoreCreateGetUpdate(t *testing.T) {
	t.Parallel()
	s, rdb := setup(t)
	ctx := context.Background()
	j := newJob(t)
	got, created, err := s.Create(ctx, j, "")
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, j.ID, got.ID)

	ttl, err := rdb.TTL(ctx, jobstore.KeyPrefix+"job:"+j.ID).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 6*24*time.Hour, "records expire after the retention")

	_, err = s.Update(ctx, j.ID, func(j *job.Job) error { j.Status = job.StatusRunning; return nil })
	require.NoError(t, err)
	read, err := s.Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusRunning, read.Status)

	_, err = s.Update(ctx, j.ID, func(j *job.Job) error { j.Status = job.StatusSucceeded; return nil })
	require.NoError(t, err)
	_, err = s.Update(ctx, j.ID, func(j *job.Job) error { j.Status = job.StatusFailed; return nil })
	require.ErrorIs(t, err, job.ErrTerminal, "terminal states never change again")
	read, err = s.Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusSucceeded, read.Status)

	_, err = s.Get(ctx, "0193a000-0000-7000-8000-000000000000")
	require.ErrorIs(t, err, job.ErrNotFound)
	_, err = s.Get(ctx, "not-an-id")
	require.ErrorIs(t, err, job.ErrNotFound)
}

func TestStoreIdempotency(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	first := newJob(t)
	_, created, err := s.Create(ctx, first, "key-1")
	require.NoError(t, err)
	require.True(t, created)
	second := newJob(t)
	got, created, err := s.Create(ctx, second, "key-1")
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, first.ID, got.ID, "a retried submission returns the same job")
	_, err = s.Get(ctx, second.ID)
	require.ErrorIs(t, err, job.ErrNotFound, "nothing is stored for the duplicate")
}

func TestStoreConcurrentUpdatesLoseNothing(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	j := newJob(t)
	_, _, err := s.Create(ctx, j, "")
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, updateErr := s.Update(ctx, j.ID, func(j *job.Job) error {
				if j.Metadata == nil {
					j.Metadata = map[string]any{}
				}
				// Records decode numbers as json.Number (exact metadata).
				num, _ := j.Metadata["n"].(json.Number)
				n, _ := num.Int64()
				j.Metadata["n"] = n + 1
				return nil
			})
			assert.NoError(t, updateErr)
		}()
	}
	wg.Wait()
	read, err := s.Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, json.Number("20"), read.Metadata["n"])
}

func TestStoreWatch(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	j := newJob(t)
	_, _, err := s.Create(ctx, j, "")
	require.NoError(t, err)
	events, err := s.Watch(ctx, j.ID)
	require.NoError(t, err)
	first := <-events
	require.Equal(t, job.StatusQueued, first.Job.Status, "the current state comes first")

	written := make(chan error, 1)
	go func() {
		_, err1 := s.Update(ctx, j.ID, func(j *job.Job) error { j.Status = job.StatusRunning; return nil })
		_, err2 := s.Update(ctx, j.ID, func(j *job.Job) error { j.Progress = &job.Progress{Fraction: 0.5}; return nil })
		_, err3 := s.Update(ctx, j.ID, func(j *job.Job) error { j.Status = job.StatusSucceeded; return nil })
		written <- errors.Join(err1, err2, err3)
	}()
	var seen []string
	for ev := range events {
		seen = append(seen, ev.Type+":"+string(ev.Job.Status))
	}
	// The event is published by the write itself: it may arrive before Update returns.
	require.NoError(t, <-written)
	require.Equal(t, []string{"status:running", "progress:running", "status:succeeded"}, seen)
}

// Every watcher of a process shares one pattern subscription (the hub), instead of a
// Redis connection each.
func TestStoreWatchersShareOneSubscription(t *testing.T) {
	t.Parallel()
	s, rdb := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ids []string
	for i := 0; i < 5; i++ {
		j := newJob(t)
		_, _, err := s.Create(ctx, j, "")
		require.NoError(t, err)
		ids = append(ids, j.ID)
		events, err := s.Watch(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusQueued, (<-events).Job.Status)
	}
	// The test's Redis is its own (testenv.NewRedis): every client in it is ours.
	clients, err := rdb.ClientList(ctx).Result()
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(clients, " psub=1 "), "one PSUBSCRIBE connection for every watcher:\n%s", clients)
	require.NotContains(t, clients, " sub=1 ", "no SUBSCRIBE per watcher")
	for _, id := range ids {
		require.Equal(t, 1, s.Hub().Watchers(id))
	}
	other := jobstore.New(rdb, jobstore.Config{Hub: s.Hub()})
	events, err := other.Watch(ctx, ids[0])
	require.NoError(t, err)
	<-events
	require.Equal(t, 2, s.Hub().Watchers(ids[0]), "a store given the hub uses it")
	cancel()
	require.Eventually(t, func() bool { return s.Hub().Watchers(ids[0]) == 0 }, 5*time.Second, 10*time.Millisecond,
		"a watch whose context ends unsubscribes")
}

func TestStoreList(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	var ids []string
	base := time.Now().UTC().Add(-time.Hour)
	for i := 0; i < 7; i++ {
		j := newJob(t)
		j.CreatedAt = base.Add(time.Duration(i) * time.Second)
		if i%2 == 0 {
			j.Queue = "high"
		}
		_, _, err := s.Create(ctx, j, "")
		require.NoError(t, err)
		ids = append(ids, j.ID)
	}
	var got []string
	cursor := ""
	for {
		page, next, err := s.List(ctx, job.ListOptions{Limit: 3, Cursor: cursor})
		require.NoError(t, err)
		for _, j := range page {
			got = append(got, j.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	want := make([]string, len(ids))
	for i, id := range ids {
		want[len(ids)-1-i] = id
	}
	require.Equal(t, want, got, "newest first, every job once across pages")

	high, _, err := s.List(ctx, job.ListOptions{Queue: "high"})
	require.NoError(t, err)
	require.Len(t, high, 4)
	_, _, err = s.List(ctx, job.ListOptions{Cursor: "garbage"})
	var se *job.SpecError
	require.True(t, errors.As(err, &se))
}

func TestStoreIndexTrimmedPastRetention(t *testing.T) {
	t.Parallel()
	s, rdb := setup(t)
	ctx := context.Background()
	old := newJob(t)
	old.CreatedAt = time.Now().UTC().Add(-10 * 24 * time.Hour)
	_, _, err := s.Create(ctx, old, "")
	require.NoError(t, err)
	fresh := newJob(t)
	_, _, err = s.Create(ctx, fresh, "")
	require.NoError(t, err)
	members, err := rdb.ZRange(ctx, jobstore.KeyPrefix+"jobs", 0, -1).Result()
	require.NoError(t, err)
	require.Equal(t, []string{fresh.ID}, members, "index entries past the retention are trimmed on create")
}

// Metadata numbers stay exact through the record: read, updated, listed.
func TestStoreKeepsMetadataNumbersExact(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	j := newJob(t)
	j.Metadata = map[string]any{"order": json.Number("9007199254740993")}
	_, _, err := s.Create(ctx, j, "")
	require.NoError(t, err)
	_, err = s.Update(ctx, j.ID, func(j *job.Job) error { j.Status = job.StatusRunning; return nil })
	require.NoError(t, err)
	read, err := s.Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, json.Number("9007199254740993"), read.Metadata["order"])
	page, _, err := s.List(ctx, job.ListOptions{})
	require.NoError(t, err)
	require.Len(t, page, 1)
	require.Equal(t, json.Number("9007199254740993"), page[0].Metadata["order"])
}

// A canceling job only ends: no later write (a worker's running, uploading, queued)
// takes it back.
func TestStoreCancelingOnlyEnds(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	j := newJob(t)
	_, _, err := s.Create(ctx, j, "")
	require.NoError(t, err)
	_, err = s.Update(ctx, j.ID, func(j *job.Job) error { j.Status = job.StatusCanceling; return nil })
	require.NoError(t, err)
	for _, st := range []job.Status{job.StatusRunning, job.StatusUploading, job.StatusQueued} {
		got, updateErr := s.Update(ctx, j.ID, func(j *job.Job) error { j.Status = st; return nil })
		require.NoError(t, updateErr)
		require.Equal(t, job.StatusCanceling, got.Status, "a write of %s", st)
	}
	got, err := s.Update(ctx, j.ID, func(j *job.Job) error { j.Status = job.StatusCanceled; return nil })
	require.NoError(t, err)
	require.Equal(t, job.StatusCanceled, got.Status)
}
