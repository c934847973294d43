package job

import (
	"context"
	"errors"
	"time"
)

// Poll intervals of Wait once the live stream is lost: from the first to the last,
// doubling.
const (
	waitPollMin = 250 * time.Millisecond
	waitPollMax = 5 * time.Second
)

// Wait follows the job with f until it reaches a terminal state and returns that record.
// It returns early when ctx ends (with the last record seen and ctx's error) and when Get
// fails (ErrNotFound for a job that does not exist). When the live stream cannot be opened or ends
// before a terminal state (a dropped connection, a lost event), Wait polls f.Get until
// the job ends, so that a missed event can never leave it hanging.
//
// It is the one implementation behind producer.Client.Wait and apiclient.Client.Wait.
func Wait(ctx context.Context, f Follower, id string) (*Job, error) {
	return Follow(ctx, f, id, nil)
}

// Follow is Wait that also hands every state it sees (each event, each polled record)
// to onChange, if not nil, as it comes: a progress bar. onChange runs on the caller's
// goroutine.
func Follow(ctx context.Context, f Follower, id string, onChange func(*Job)) (*Job, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := func(j *Job) {
		if onChange != nil {
			onChange(j)
		}
	}
	var last *Job
	events, err := f.Watch(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, err
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case err == nil:
		for ev := range events {
			last = ev.Job
			seen(last)
			if last.Status.Terminal() {
				return last, nil
			}
		}
	}
	delay := waitPollMin
	for {
		if err := ctx.Err(); err != nil {
			return last, err
		}
		j, err := f.Get(ctx, id)
		if err != nil {
			return last, err
		}
		last = j
		seen(j)
		if j.Status.Terminal() {
			return j, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return last, ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, waitPollMax)
	}
}
