package jobstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/comfyq/comfyq/job"
)

// ErrUnavailable is returned by Watch when live events cannot be had (Redis does not
// answer the subscription in time); Get still works when Redis comes back.
var ErrUnavailable = errors.New("jobstore: live events are unavailable")

// readyTimeout bounds how long Watch waits for the hub's subscription.
const readyTimeout = 5 * time.Second

// RecheckInterval is how often a watch re-reads the job record, so that a terminal state
// whose event was lost (Redis reconnect) still ends the stream.
const RecheckInterval = 5 * time.Second

// Watch streams the job's events: first its current state, then every change, closing
// the channel after a terminal state or when ctx ends. Any process can watch any job:
// events travel through Redis pub/sub, received by the store's Hub. Events older than
// one already sent (an earlier attempt or step, published before the first read) are
// left out. When live events are unavailable it returns ErrUnavailable.
func (s *Store) Watch(ctx context.Context, id string) (<-chan job.Event, error) {
	if !job.ValidID(id) {
		return nil, job.ErrNotFound
	}
	hub := s.Hub()
	if hub == nil {
		return nil, fmt.Errorf("%w: the store is closed", ErrUnavailable)
	}
	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	err := hub.WaitReady(readyCtx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: watch %s", ErrUnavailable, id)
	}
	// Subscribe before reading the record, so no change falls between the two.
	sub := hub.Subscribe(id)
	cur, err := s.Get(ctx, id)
	if err != nil {
		sub.Close()
		return nil, err
	}
	out := make(chan job.Event, 16)
	go func() {
		defer close(out)
		defer sub.Close()
		last := cur
		send := func(ev job.Event) bool {
			last = ev.Job
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		reread := func() (terminal, ok bool) {
			j, err := s.Get(ctx, id)
			if err != nil {
				return false, false
			}
			return j.Status.Terminal(), send(job.Event{Type: job.EventStatus, At: time.Now().UTC(), Job: j})
		}
		if !send(job.Event{Type: job.EventStatus, At: time.Now().UTC(), Job: cur}) || cur.Status.Terminal() {
			return
		}
		recheck := time.NewTicker(RecheckInterval)
		defer recheck.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-sub.Events():
				if before(ev.Job, last) {
					continue // published before the record read first
				}
				if !send(ev) || ev.Job.Status.Terminal() {
					return
				}
			case <-sub.Lagged():
				if terminal, ok := reread(); terminal || !ok {
					return
				}
			case <-recheck.C:
				j, err := s.Get(ctx, id)
				if err == nil && j.Status.Terminal() {
					send(job.Event{Type: job.EventStatus, At: time.Now().UTC(), Job: j})
					return
				}
			}
		}
	}()
	return out, nil
}

// before reports whether j is an older state than last: an earlier attempt, or an
// earlier step of the same attempt.
func before(j, last *job.Job) bool {
	if last == nil {
		return false
	}
	if j.Attempt != last.Attempt {
		return j.Attempt < last.Attempt
	}
	return statusRank(j.Status) < statusRank(last.Status)
}

func statusRank(s job.Status) int {
	switch s {
	case job.StatusQueued:
		return 0
	case job.StatusRunning:
		return 1
	case job.StatusUploading:
		return 2
	case job.StatusCanceling:
		return 3
	}
	return 4
}
