package retry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDelay(t *testing.T) {
	t.Parallel()
	plain := Backoff{Initial: 25 * time.Millisecond}
	require.Equal(t, 25*time.Millisecond, plain.Delay(1))
	require.Equal(t, 800*time.Millisecond, plain.Delay(6))
	require.Equal(t, time.Duration(math.MaxInt64), plain.Delay(200), "no cap: saturates instead of overflowing")

	capped := Backoff{Initial: time.Second, Max: 32 * time.Second}
	require.Equal(t, 16*time.Second, capped.Delay(5))
	require.Equal(t, 32*time.Second, capped.Delay(6))
	require.Equal(t, 32*time.Second, capped.Delay(1000))
	require.Zero(t, Backoff{}.Delay(3), "the zero Backoff retries at once")

	equal := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Jitter: EqualJitter}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 5: time.Second, 60: time.Second} {
		for range 20 {
			d := equal.Delay(n)
			require.GreaterOrEqual(t, d, want/2, fmt.Sprint(n))
			require.LessOrEqual(t, d, want, fmt.Sprint(n))
		}
	}
}

func TestDo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	errAgain, errFatal := errors.New("again"), errors.New("fatal")
	p := Policy{Backoff: Backoff{Initial: time.Microsecond}, MaxAttempts: 4, Retryable: func(err error) bool { return errors.Is(err, errAgain) }}

	calls := 0
	require.NoError(t, Do(ctx, p, func(context.Context) error {
		if calls++; calls < 3 {
			return errAgain
		}
		return nil
	}))
	require.Equal(t, 3, calls)

	calls = 0
	var waits []int
	p.OnRetry = func(attempt int, err error, d time.Duration) {
		require.ErrorIs(t, err, errAgain)
		require.Equal(t, p.Delay(attempt), d)
		waits = append(waits, attempt)
	}
	require.ErrorIs(t, Do(ctx, p, func(context.Context) error { calls++; return errAgain }), errAgain)
	require.Equal(t, 4, calls, "MaxAttempts counts the first attempt")
	require.Equal(t, []int{1, 2, 3}, waits, "no wait after the last attempt")

	calls = 0
	require.ErrorIs(t, Do(ctx, p, func(context.Context) error { calls++; return errFatal }), errFatal)
	require.Equal(t, 1, calls, "an error Retryable refuses ends at once")
}

func TestDoEndsWithTheContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	errAgain := errors.New("again")
	calls := 0
	err := Do(ctx, Policy{Backoff: Backoff{Initial: time.Hour}}, func(context.Context) error {
		calls++
		cancel()
		return errAgain
	})
	require.ErrorIs(t, err, errAgain, "ctx ended after the attempt: its error, no wait")
	require.Equal(t, 1, calls)

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err = Do(ctx, Policy{Backoff: Backoff{Initial: time.Hour}}, func(context.Context) error { return errAgain })
	require.ErrorIs(t, err, context.DeadlineExceeded, "ctx ended during the wait")
	require.ErrorIs(t, Sleep(ctx, time.Hour), context.DeadlineExceeded)
	require.NoError(t, Sleep(context.Background(), time.Microsecond))
}
