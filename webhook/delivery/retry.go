package delivery

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/comfyq/comfyq/job"
)

// Defaults of RetryPolicy.
const (
	DefaultHorizon   = 24 * time.Hour
	DefaultBaseDelay = 5 * time.Second
	DefaultMaxDelay  = time.Hour
)

// RetryPolicy says how long and how often a failing delivery is tried again.
// The zero RetryPolicy is the default: retries for at least 24 hours, the
// waits growing from 5 seconds to at most an hour.
//
// The wait before retry n (n = 0 for the second attempt) is exponential
// backoff with full jitter: BaseDelay plus a random duration up to
// min(MaxDelay, BaseDelay·2ⁿ). A delivery ends at its first failure after
// Horizon has passed since its first attempt. The task's MaxRetry (see
// MaxRetry) is only a safety bound, set so that the expected sum of the
// waits is twice the horizon.
type RetryPolicy struct {
	// Horizon is how long a failing delivery keeps being retried, from its
	// first attempt. Default DefaultHorizon (24h).
	Horizon time.Duration
	// BaseDelay is the shortest wait between attempts and the start of the
	// exponential growth. Default DefaultBaseDelay (5s).
	BaseDelay time.Duration
	// MaxDelay caps the random part of one wait. Default DefaultMaxDelay (1h).
	MaxDelay time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Horizon <= 0 {
		p.Horizon = DefaultHorizon
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	return p
}

// ceiling returns the largest random part of the wait before retry n.
func (p RetryPolicy) ceiling(n int) time.Duration {
	p = p.withDefaults()
	if n < 0 {
		n = 0
	}
	d := p.BaseDelay
	for i := 0; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	return min(d, p.MaxDelay)
}

// Delay returns the wait before retry n (n = 0 before the second attempt):
// BaseDelay plus a uniformly random duration up to min(MaxDelay,
// BaseDelay·2ⁿ).
func (p RetryPolicy) Delay(n int) time.Duration {
	p = p.withDefaults()
	return p.BaseDelay + rand.N(p.ceiling(n)+1)
}

// maxRetryLimit bounds MaxRetry whatever the settings.
const maxRetryLimit = 100_000

// MaxRetry returns the number of retries to give a delivery task: enough
// that the expected sum of the waits is twice the horizon, so that in
// practice the horizon, not the count, ends a failing delivery.
func (p RetryPolicy) MaxRetry() int {
	p = p.withDefaults()
	target := 2 * p.Horizon
	var sum time.Duration
	n := 0
	for sum < target && n < maxRetryLimit {
		sum += p.BaseDelay + p.ceiling(n)/2
		n++
	}
	return n
}

// waitError is returned by the handler when an earlier event of the same
// job and destination is still being delivered: the task is tried again
// after the delay without counting an attempt.
type waitError struct {
	id    string        // webhook-id of the earlier delivery
	event string        // its event type, when known
	delay time.Duration // when to look again
}

func (e *waitError) Error() string {
	if e.event != "" {
		return fmt.Sprintf("webhook: waiting for the earlier %s message %s to this destination to be delivered or given up", e.event, e.id)
	}
	return fmt.Sprintf("webhook: waiting for the earlier message %s to this destination to be delivered or given up", e.id)
}

// Is makes errors.Is(err, ErrWaiting) true.
func (e *waitError) Is(target error) bool { return target == ErrWaiting }

// ErrWaiting reports a delivery that waits for an earlier event of the same
// job to the same destination (order of occurrence). It is not a failure:
// see IsFailure.
var ErrWaiting = errors.New("webhook: waiting for an earlier message")

// IsFailure is asynq's Config.IsFailure for servers that run the delivery
// handler: a delivery waiting for an earlier one (ErrWaiting) is not a
// failure and consumes no attempt. Other errors are failures unless
// fallback (which may be nil) says otherwise.
func IsFailure(fallback func(error) bool) func(error) bool {
	return func(err error) bool {
		if errors.Is(err, ErrWaiting) {
			return false
		}
		if fallback != nil {
			return fallback(err)
		}
		return true
	}
}

// RetryDelayFunc returns asynq's Config.RetryDelayFunc for a server that runs
// the delivery handler: comfyq:webhook tasks wait as the policy says (a
// delivery waiting for an earlier one looks again soon), and every other
// task type as fallback says (asynq.DefaultRetryDelayFunc when nil).
func (p RetryPolicy) RetryDelayFunc(fallback asynq.RetryDelayFunc) asynq.RetryDelayFunc {
	if fallback == nil {
		fallback = asynq.DefaultRetryDelayFunc
	}
	return func(n int, err error, t *asynq.Task) time.Duration {
		if t == nil || t.Type() != job.TypeWebhook {
			return fallback(n, err, t)
		}
		if we, ok := errors.AsType[*waitError](err); ok {
			return we.delay
		}
		return p.Delay(n)
	}
}
