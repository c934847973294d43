package delivery_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/webhook/delivery"
)

func TestRetryPolicy_delays(t *testing.T) {
	t.Parallel()
	p := delivery.RetryPolicy{BaseDelay: time.Second, MaxDelay: 10 * time.Second}
	for n := range 20 {
		ceiling := min(time.Second<<n, 10*time.Second)
		for range 50 {
			d := p.Delay(n)
			require.GreaterOrEqual(t, d, time.Second, "retry %d", n)
			require.LessOrEqual(t, d, time.Second+ceiling, "retry %d", n)
		}
	}
	// Huge retry numbers do not overflow.
	require.LessOrEqual(t, p.Delay(1<<30), 11*time.Second)
	require.GreaterOrEqual(t, p.Delay(-1), time.Second)
}

func TestRetryPolicy_defaultsSpanTheHorizon(t *testing.T) {
	t.Parallel()
	var p delivery.RetryPolicy
	n := p.MaxRetry()
	require.Greater(t, n, 25, "more than asynq's default")
	require.Less(t, n, 200)

	// The shortest possible sum of the waits (every random part zero) is
	// n base delays; the expected sum is what MaxRetry aims at: twice the
	// horizon.
	var expected time.Duration
	for i := range n {
		ceiling := min(delivery.DefaultBaseDelay<<i, delivery.DefaultMaxDelay)
		expected += delivery.DefaultBaseDelay + ceiling/2
	}
	require.GreaterOrEqual(t, expected, 2*delivery.DefaultHorizon)

	// Sampled schedules reach the horizon: the horizon, not the count, ends
	// a failing delivery.
	for range 200 {
		var sum time.Duration
		for i := range n {
			sum += p.Delay(i)
		}
		require.Greater(t, sum, delivery.DefaultHorizon)
	}
}

func TestRetryPolicy_MaxRetryScales(t *testing.T) {
	t.Parallel()
	short := delivery.RetryPolicy{Horizon: time.Hour}.MaxRetry()
	long := delivery.RetryPolicy{Horizon: 72 * time.Hour}.MaxRetry()
	require.Less(t, short, long)
	require.Positive(t, delivery.RetryPolicy{Horizon: time.Nanosecond}.MaxRetry())
	// A degenerate policy is bounded.
	require.LessOrEqual(t, delivery.RetryPolicy{Horizon: 1000 * time.Hour, BaseDelay: time.Nanosecond, MaxDelay: time.Nanosecond}.MaxRetry(), 100_000)
}

func TestRetryDelayFunc_onlyForWebhookTasks(t *testing.T) {
	t.Parallel()
	p := delivery.RetryPolicy{BaseDelay: time.Minute, MaxDelay: time.Minute}
	fallback := func(int, error, *asynq.Task) time.Duration { return 7 * time.Second }
	f := p.RetryDelayFunc(fallback)
	require.Equal(t, 7*time.Second, f(3, errors.New("x"), asynq.NewTask(job.TypeJob, nil)))
	d := f(3, errors.New("x"), asynq.NewTask(job.TypeWebhook, nil))
	require.GreaterOrEqual(t, d, time.Minute)
	require.LessOrEqual(t, d, 2*time.Minute)
	// asynq's default when no fallback is given.
	require.Positive(t, p.RetryDelayFunc(nil)(0, errors.New("x"), asynq.NewTask(job.TypeJob, nil)))
}

func TestIsFailure(t *testing.T) {
	t.Parallel()
	isFailure := delivery.IsFailure(nil)
	require.True(t, isFailure(errors.New("receiver answered 503")))
	require.False(t, isFailure(fmt.Errorf("held: %w", delivery.ErrWaiting)))
	notDown := errors.New("node down")
	chained := delivery.IsFailure(func(err error) bool { return !errors.Is(err, notDown) })
	require.False(t, chained(notDown))
	require.False(t, chained(delivery.ErrWaiting))
	require.True(t, chained(errors.New("other")))
}
