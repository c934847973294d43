package job_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
)

// follower is a job.Follower whose stream and records the test scripts.
type follower struct {
	mu       sync.Mutex
	watchErr error
	stream   []job.Status // sent, then the channel closes
	records  []job.Status // Get returns them in turn, the last one forever
	gets     int
}

func (f *follower) Watch(ctx context.Context, id string) (<-chan job.Event, error) {
	if f.watchErr != nil {
		return nil, f.watchErr
	}
	ch := make(chan job.Event, len(f.stream))
	for _, s := range f.stream {
		ch <- job.Event{Type: job.EventStatus, Job: &job.Job{ID: id, Status: s}}
	}
	close(ch)
	return ch, nil
}

func (f *follower) Get(ctx context.Context, id string) (*job.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.records) == 0 {
		return nil, job.ErrNotFound
	}
	s := f.records[min(f.gets, len(f.records)-1)]
	f.gets++
	return &job.Job{ID: id, Status: s}, nil
}

func TestWaitTerminalFromStream(t *testing.T) {
	t.Parallel()
	f := &follower{stream: []job.Status{job.StatusQueued, job.StatusRunning, job.StatusSucceeded}}
	j, err := job.Wait(t.Context(), f, "x")
	require.NoError(t, err)
	require.Equal(t, job.StatusSucceeded, j.Status)
	require.Zero(t, f.gets, "no polling when the stream ends the job")
}

// A stream that ends before the job does (a dropped connection, a lost terminal event)
// never leaves Wait hanging: it polls Get until the job ends.
func TestWaitPollsWhenTheStreamDrops(t *testing.T) {
	t.Parallel()
	f := &follower{
		stream:  []job.Status{job.StatusQueued},
		records: []job.Status{job.StatusRunning, job.StatusRunning, job.StatusFailed},
	}
	j, err := job.Wait(t.Context(), f, "x")
	require.NoError(t, err)
	require.Equal(t, job.StatusFailed, j.Status)
	require.Equal(t, 3, f.gets)
}

func TestWaitPollsWhenWatchFails(t *testing.T) {
	t.Parallel()
	f := &follower{watchErr: errors.New("live events unavailable"), records: []job.Status{job.StatusCanceled}}
	j, err := job.Wait(t.Context(), f, "x")
	require.NoError(t, err)
	require.Equal(t, job.StatusCanceled, j.Status)
}

func TestWaitHonoursContext(t *testing.T) {
	t.Parallel()
	f := &follower{stream: []job.Status{job.StatusQueued}, records: []job.Status{job.StatusRunning}}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	j, err := job.Wait(ctx, f, "x")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, job.StatusRunning, j.Status, "the last state seen")
}

func TestWaitNotFound(t *testing.T) {
	t.Parallel()
	_, err := job.Wait(t.Context(), &follower{watchErr: job.ErrNotFound}, "x")
	require.ErrorIs(t, err, job.ErrNotFound)
	_, err = job.Wait(t.Context(), &follower{stream: []job.Status{job.StatusQueued}}, "x")
	require.ErrorIs(t, err, job.ErrNotFound, "a record that expired meanwhile")
}

func TestFollowSeesEveryState(t *testing.T) {
	t.Parallel()
	f := &follower{stream: []job.Status{job.StatusQueued, job.StatusRunning}, records: []job.Status{job.StatusSucceeded}}
	var seen []job.Status
	j, err := job.Follow(t.Context(), f, "x", func(j *job.Job) { seen = append(seen, j.Status) })
	require.NoError(t, err)
	require.Equal(t, job.StatusSucceeded, j.Status)
	require.Equal(t, []job.Status{job.StatusQueued, job.StatusRunning, job.StatusSucceeded}, seen)
}
