package jobstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
)

// tripHook counts round trips: one per command, one per pipeline.
type tripHook struct{ n atomic.Int64 }

func (h *tripHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *tripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *tripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// Each transition of a job is one round trip: the record, its filter sets and its
// event are written by one script, starting from the record this store last wrote.
func TestStoreTransitionIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	s, rdb := setup(t)
	ctx := context.Background()
	hook := &tripHook{}
	rdb.(*redis.Client).AddHook(hook)
	j := newJob(t)
	// Load the scripts first: go-redis's EVALSHA falls back to EVAL once per script.
	_, _, err := s.Create(ctx, newJob(t), "")
	require.NoError(t, err)
	_, err = s.Update(ctx, j.ID, func(*job.Job) error { return nil })
	require.ErrorIs(t, err, job.ErrNotFound)
	other := newJob(t)
	_, _, err = s.Create(ctx, other, "")
	require.NoError(t, err)
	_, err = s.Update(ctx, other.ID, func(j *job.Job) error { j.Status = job.StatusRunning; return nil })
	require.NoError(t, err)

	hook.n.Store(0)
	_, _, err = s.Create(ctx, j, "")
	require.NoError(t, err)
	require.EqualValues(t, 1, hook.n.Load(), "create: one round trip")
	for _, st := range []job.Status{job.StatusRunning, job.StatusRunning, job.StatusUploading, job.StatusSucceeded} {
		hook.n.Store(0)
		_, err := s.Update(ctx, j.ID, func(j *job.Job) error {
			j.Status = st
			j.Progress = &job.Progress{Fraction: 0.5}
			return nil
		})
		require.NoError(t, err)
		require.EqualValues(t, 1, hook.n.Load(), "update to %s: one round trip", st)
	}
}

// A record changed by another process since this one last saw it costs one more round
// trip, never a lost write: the script hands back the current record and the change is
// made again on it. The state machine is checked against the current record.
func TestStoreUpdateSeesOtherWriters(t *testing.T) {
	t.Parallel()
	s, rdb := setup(t)
	other := jobstore.New(rdb, jobstore.Config{})
	t.Cleanup(func() { other.Close() })
	ctx := context.Background()
	j := newJob(t)
	_, _, err := s.Create(ctx, j, "")
	require.NoError(t, err)
	_, err = other.Update(ctx, j.ID, func(j *job.Job) error { j.Metadata = map[string]any{"by": "other"}; return nil })
	require.NoError(t, err)
	got, err := s.Update(ctx, j.ID, func(j *job.Job) error { j.Status = job.StatusRunning; return nil })
	require.NoError(t, err)
	require.Equal(t, "other", got.Metadata["by"], "the other writer's change is kept")

	// Ended by another process: this one's next write is refused as terminal.
	_, err = other.Update(ctx, j.ID, func(j *job.Job) error { j.Status = job.StatusCanceled; return nil })
	require.NoError(t, err)
	got, err = s.Update(ctx, j.ID, func(j *job.Job) error { j.Status = job.StatusUploading; return nil })
	require.ErrorIs(t, err, job.ErrTerminal)
	require.Equal(t, job.StatusCanceled, got.Status)

	// Written behind every store's back (an older comfyq, a restore): still seen.
	k := jobstore.KeyPrefix + "job:" + j.ID
	raw, err := rdb.Get(ctx, k).Bytes()
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	fresh := newJob(t)
	_, _, err = s.Create(ctx, fresh, "")
	require.NoError(t, err)
	fk := jobstore.KeyPrefix + "job:" + fresh.ID
	fresh.Status = job.StatusCanceling
	data, err := json.Marshal(fresh)
	require.NoError(t, err)
	require.NoError(t, rdb.Set(ctx, fk, data, 0).Err())
	got, err = s.Update(ctx, fresh.ID, func(j *job.Job) error { j.Status = job.StatusRunning; return nil })
	require.NoError(t, err)
	require.Equal(t, job.StatusCanceling, got.Status, "a canceling job stays canceling")

	// An unknown state is refused, and nothing is written.
	_, err = s.Update(ctx, fresh.ID, func(j *job.Job) error { j.Status = "bogus"; return nil })
	require.Error(t, err)
	read, err := s.Get(ctx, fresh.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusCanceling, read.Status)
}

// Changes of the same moment are one write: the record ends as after the last step,
// and each step is published, in order.
func TestStoreUpdateStepsIsOneWrite(t *testing.T) {
	t.Parallel()
	s, rdb := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	j := newJob(t)
	_, _, err := s.Create(ctx, j, "")
	require.NoError(t, err)
	// Scripts loaded (EVALSHA falls back to EVAL once).
	_, err = s.Update(ctx, j.ID, func(j *job.Job) error { j.Attempt = 1; return nil })
	require.NoError(t, err)
	events, err := s.Watch(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusQueued, (<-events).Job.Status)

	hook := &tripHook{}
	rdb.(*redis.Client).AddHook(hook)
	js, err := s.UpdateSteps(ctx, j.ID,
		func(j *job.Job) error { j.Status = job.StatusRunning; return nil },
		func(*job.Job) error { return jobstore.ErrSkip },
		func(j *job.Job) error { j.Status = job.StatusUploading; return nil },
	)
	require.NoError(t, err)
	require.EqualValues(t, 1, hook.n.Load(), "one round trip")
	require.Equal(t, []job.Status{job.StatusRunning, job.StatusRunning, job.StatusUploading},
		[]job.Status{js[0].Status, js[1].Status, js[2].Status})
	require.Equal(t, job.StatusRunning, (<-events).Job.Status)
	require.Equal(t, job.StatusUploading, (<-events).Job.Status)
	read, err := s.Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusUploading, read.Status)

	// A step after the end is skipped; the end is written.
	js, err = s.UpdateSteps(ctx, j.ID,
		func(j *job.Job) error { j.Status = job.StatusFailed; return nil },
		func(j *job.Job) error { j.Status = job.StatusRunning; return nil },
	)
	require.NoError(t, err)
	require.Equal(t, job.StatusFailed, js[1].Status)
	require.Equal(t, job.StatusFailed, (<-events).Job.Status)
}

// A step that changes the record and then skips or fails changes nothing: not the
// record written, not the record returned for it, not the next step's. The first
// step works on the record as read, the later ones on copies.
func TestStoreStepThatSkipsAfterChangingLeavesNoTrace(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	j := newJob(t)
	_, _, err := s.Create(ctx, j, "")
	require.NoError(t, err)

	meddle := func(j *job.Job) { j.Status, j.Node, j.Attempt = job.StatusUploading, "meddled", 9 }
	js, err := s.UpdateSteps(ctx, j.ID,
		func(j *job.Job) error { meddle(j); return jobstore.ErrSkip },
		func(j *job.Job) error {
			require.Equal(t, job.StatusQueued, j.Status, "the skipped step's change is gone")
			require.Empty(t, j.Node)
			j.Status = job.StatusRunning
			return nil
		},
		func(j *job.Job) error { meddle(j); return jobstore.ErrSkip },
	)
	require.NoError(t, err)
	require.Equal(t, job.StatusQueued, js[0].Status)
	require.Empty(t, js[0].Node)
	require.Equal(t, job.StatusRunning, js[1].Status)
	require.Same(t, js[1], js[2], "a skipped step returns the record as the step before left it")
	require.Equal(t, 1, js[2].Attempt)

	boom := errors.New("boom")
	js, err = s.UpdateSteps(ctx, j.ID, func(j *job.Job) error { meddle(j); return boom })
	require.ErrorIs(t, err, boom)
	require.Equal(t, job.StatusRunning, js[0].Status, "a failed step returns the record unchanged")
	require.Empty(t, js[0].Node)
	read, err := s.Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusRunning, read.Status)
	require.Empty(t, read.Node)
	require.Equal(t, 1, read.Attempt)
}

// Fetch reads a record in the caller's pipeline as Get does: the record, ErrNotFound
// for none, and the bytes kept as the base of the next write, which is then one
// round trip.
func TestStoreFetchInAPipeline(t *testing.T) {
	t.Parallel()
	s, rdb := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	j := newJob(t)
	_, _, err := s.Create(ctx, j, "")
	require.NoError(t, err)
	other := newJob(t)
	_, err = s.Update(ctx, j.ID, func(j *job.Job) error { j.Attempt = 2; return nil }) // the script loaded
	require.NoError(t, err)

	fresh := jobstore.New(rdb, jobstore.Config{}) // nothing cached
	t.Cleanup(func() { fresh.Close() })
	var got, missing func() (*job.Job, error)
	_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		got = fresh.Fetch(ctx, p, j.ID)
		missing = fresh.Fetch(ctx, p, other.ID)
		return nil
	})
	require.ErrorIs(t, err, redis.Nil, "the pipeline reports the missing record")
	rec, err := got()
	require.NoError(t, err)
	require.Equal(t, j.ID, rec.ID)
	require.Equal(t, 2, rec.Attempt)
	_, err = missing()
	require.ErrorIs(t, err, job.ErrNotFound)
	bad := fresh.Fetch(ctx, nil, "not-an-id")
	_, err = bad()
	require.ErrorIs(t, err, job.ErrNotFound)

	hook := &tripHook{}
	rdb.(*redis.Client).AddHook(hook)
	_, err = fresh.Update(ctx, j.ID, func(j *job.Job) error { j.Status = job.StatusRunning; return nil })
	require.NoError(t, err)
	require.EqualValues(t, 1, hook.n.Load(), "the fetched record is the write's base: no read first")
}
