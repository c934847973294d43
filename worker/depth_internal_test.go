package worker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func sampleOf(before, exec, after time.Duration) depthSample {
	return depthSample{Before: before, Exec: exec, After: after}
}

func repeat(s depthSample, n int) []depthSample {
	out := make([]depthSample, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestDepthFor(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	for _, tc := range []struct {
		name    string
		samples []depthSample
		max     int
		want    int
	}{
		{"no samples", nil, 8, 1},
		{"GPU job: after far shorter than execution", repeat(sampleOf(5*ms, 2*time.Second, 150*ms), 16), 8, 2},
		{"five-minute job", repeat(sampleOf(20*ms, 5*time.Minute, 3*time.Second), 16), 8, 2},
		{"after exactly one execution", repeat(sampleOf(0, 10*ms, 10*ms), 16), 8, 2},
		{"just over one execution", repeat(sampleOf(1*ms, 10*ms, 10*ms), 16), 8, 3},
		{"tiny job: before and after three executions", repeat(sampleOf(3*ms, 5*ms, 12*ms), 16), 8, 4},
		{"bounded by the maximum", repeat(sampleOf(10*ms, 5*ms, 100*ms), 16), 8, 8},
		{"a maximum of 1 turns pipelining off", repeat(sampleOf(10*ms, 5*ms, 100*ms), 16), 1, 1},
		{"0 ms executions (cache hits) count as 1 ms", repeat(sampleOf(1*ms, 0, 2*ms), 16), 8, 4},
		{"negative times count as 0", repeat(sampleOf(-time.Second, 10*ms, -time.Second), 4), 8, 1},
		// The 90th percentile of the work: one slow job in 16 is left out, two are not.
		{"one late job in 16", append(repeat(sampleOf(0, 10*ms, 5*ms), 15), sampleOf(0, 10*ms, 85*ms)), 8, 2},
		{"two late jobs in 16", append(repeat(sampleOf(0, 10*ms, 5*ms), 14), sampleOf(0, 10*ms, 35*ms), sampleOf(0, 10*ms, 85*ms)), 8, 5},
		{"mean execution", append(repeat(sampleOf(0, 10*ms, 10*ms), 8), repeat(sampleOf(0, 30*ms, 10*ms), 8)...), 8, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, depthFor(tc.samples, tc.max))
		})
	}
}

// starvedOf is a sample whose prompt found the node out of work.
func starvedOf(before, exec, after time.Duration) depthSample {
	s := sampleOf(before, exec, after)
	s.Starved = true
	return s
}

func TestDepthControllerStartsAtTwoAndWaitsForSamples(t *testing.T) {
	t.Parallel()
	c := newDepthController(8)
	require.Equal(t, 2, c.current())
	tiny := starvedOf(3*time.Millisecond, 5*time.Millisecond, 12*time.Millisecond) // wants 4
	for i := 1; i < depthMinSamples; i++ {
		d, changed := c.observe(tiny)
		require.Equal(t, 2, d, "sample %d: too few samples to move", i)
		require.False(t, changed)
	}
	d, changed := c.observe(tiny)
	require.Equal(t, 3, d, "one starved job: one slot more")
	require.True(t, changed)
	d, _ = c.observe(tiny)
	require.Equal(t, 4, d)
	d, changed = c.observe(tiny)
	require.Equal(t, 4, d, "bounded by what the window asks for")
	require.False(t, changed)
	require.Equal(t, 1, newDepthController(1).current(), "the initial depth is bounded by the maximum")
}

func TestDepthControllerRisesOnlyWhenTheNodeRanOut(t *testing.T) {
	t.Parallel()
	c := newDepthController(8)
	steady := sampleOf(0, 10*time.Millisecond, 9*time.Millisecond) // wants 2
	for range depthWindow {
		c.observe(steady)
	}
	require.Equal(t, 2, c.current())
	// Late jobs that still found the node busy (the worker's CPU is shared): the
	// formula asks for 8, but the node never waited, so nothing changes.
	late := sampleOf(0, 10*time.Millisecond, 200*time.Millisecond)
	for range depthWindow {
		d, changed := c.observe(late)
		require.False(t, changed)
		require.Equal(t, 2, d)
	}
	// The same jobs finding the node out of work: one slot more each, up to 8.
	lateStarved := starvedOf(0, 10*time.Millisecond, 200*time.Millisecond)
	for want := 3; want <= 8; want++ {
		d, changed := c.observe(lateStarved)
		require.True(t, changed)
		require.Equal(t, want, d)
	}
	d, changed := c.observe(lateStarved)
	require.False(t, changed)
	require.Equal(t, 8, d, "bounded by the maximum")

	// Slow jobs turning tiny: the long executions of the slow ones dominate the mean
	// until the last of them left the window.
	c = newDepthController(8)
	slow := starvedOf(5*time.Millisecond, 2*time.Second, 100*time.Millisecond)
	for range depthWindow {
		c.observe(slow)
	}
	tiny := starvedOf(3*time.Millisecond, 5*time.Millisecond, 12*time.Millisecond)
	for i := 1; i < depthWindow; i++ {
		got, _ := c.observe(tiny)
		require.Equal(t, 2, got, "tiny job %d", i)
	}
	d, changed = c.observe(tiny)
	require.True(t, changed)
	require.Equal(t, 3, d, "a window of tiny jobs asks for 1 + ⌈15/5⌉: one more now")
}

func TestDepthControllerProbesOneLowerWhileTheNodeIsBusy(t *testing.T) {
	t.Parallel()
	c := newDepthController(8)
	lateStarved := starvedOf(0, 5*time.Millisecond, 100*time.Millisecond)
	for c.current() < 6 {
		c.observe(lateStarved)
	}
	late := sampleOf(0, 5*time.Millisecond, 100*time.Millisecond)
	for i := 1; i < depthProbe; i++ {
		d, changed := c.observe(late)
		require.False(t, changed, "busy job %d", i)
		require.Equal(t, 6, d)
	}
	d, changed := c.observe(late)
	require.True(t, changed)
	require.Equal(t, 5, d, "the node never ran out: one slot fewer")
	d, _ = c.observe(lateStarved)
	require.Equal(t, 6, d, "it ran out at once: the slot comes back")

	// Never below the initial depth.
	c = newDepthController(8)
	for range 4 * depthProbe {
		c.observe(late)
	}
	require.Equal(t, initialDepth, c.current())
}

func TestDepthControllerFallsAfterAWindow(t *testing.T) {
	t.Parallel()
	c := newDepthController(8)
	tiny := starvedOf(3*time.Millisecond, 5*time.Millisecond, 12*time.Millisecond)
	for range depthWindow {
		c.observe(tiny)
	}
	require.Equal(t, 4, c.current())
	slow := starvedOf(5*time.Millisecond, 2*time.Second, 100*time.Millisecond)
	// The first slow job already makes the window ask for 2: the depth stays for a
	// whole window of jobs asking for less, then falls to what the window asks for.
	for i := 1; i < depthWindow; i++ {
		d, changed := c.observe(slow)
		require.Equal(t, 4, d, "slow job %d", i)
		require.False(t, changed)
	}
	d, changed := c.observe(slow)
	require.Equal(t, 2, d)
	require.True(t, changed)
}
