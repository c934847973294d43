// Package retry is the one way comfyq waits between attempts of something that may
// fail for a while (a history not written yet, a storage hiccup, a WebSocket that
// dropped): exponential backoff with an optional jitter and a cap, a bound on the
// attempts, a predicate for the errors worth another attempt, and waits that end with
// the context.
//
// It is written here rather than taken from github.com/cenkalti/backoff because the
// callers need exact schedules that library does not give: equal jitter (half the
// delay fixed, half random; its randomisation is symmetric around the delay), plain
// doubling without jitter, and the delay alone for loops that wait on more than the
// context (the WebSocket's redial also wakes on a kick). It imports nothing of ours.
//
// asynq's RetryDelayFunc policies (the worker's, the webhook's) are policies for the
// queue, not loops, and stay where they are.
package retry

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Jitter spreads delays so that many clients do not retry in step.
type Jitter int

const (
	// NoJitter waits exactly the computed delay.
	NoJitter Jitter = iota
	// EqualJitter waits half the delay plus a random duration up to the other half.
	EqualJitter
)

// Backoff computes the wait after a failed attempt: Initial, doubled after every
// further failure, at most Max, then jittered.
type Backoff struct {
	// Initial is the wait after the first failure. Zero retries at once.
	Initial time.Duration
	// Max caps the wait before jitter. Zero means no cap.
	Max time.Duration
	// Jitter is NoJitter by default.
	Jitter Jitter
}

// Delay returns the wait after failed attempt n (n = 1 after the first attempt):
// Initial·2ⁿ⁻¹, at most Max, jittered.
func (b Backoff) Delay(n int) time.Duration {
	d := b.Initial
	for i := 1; i < n && d > 0 && (b.Max <= 0 || d < b.Max); i++ {
		if d > math.MaxInt64/2 {
			d = math.MaxInt64
			break
		}
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	if b.Jitter == EqualJitter && d > 0 {
		half := d / 2
		return half + rand.N(half+1)
	}
	return d
}

// Policy says how Do retries.
type Policy struct {
	Backoff
	// MaxAttempts bounds the attempts, the first one included. Zero means no bound:
	// Do retries until the operation succeeds, fails for good or ctx ends.
	MaxAttempts int
	// Retryable reports whether an error is worth another attempt. Nil retries every
	// error.
	Retryable func(error) bool
	// OnRetry, when set, is called before each wait with the number of the attempt
	// that failed (1 for the first), its error and the wait (for a log line).
	OnRetry func(attempt int, err error, wait time.Duration)
}

// Do calls op until it returns nil. It returns op's error as soon as ctx has ended,
// Retryable refuses the error or MaxAttempts attempts were made, and ctx.Err() when
// ctx ends during a wait.
func Do(ctx context.Context, p Policy, op func(ctx context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || (p.Retryable != nil && !p.Retryable(err)) ||
			(p.MaxAttempts > 0 && attempt >= p.MaxAttempts) {
			return err
		}
		d := p.Delay(attempt)
		if p.OnRetry != nil {
			p.OnRetry(attempt, err, d)
		}
		if err := Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// Sleep waits d, or until ctx ends: it then returns ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
