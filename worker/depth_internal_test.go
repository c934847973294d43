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
		// A ratio of sums: one slow after phase among fast ones weighs by its length.
		{"ratio of sums", append(repeat(sampleOf(0, 10*ms, 5*ms), 15), sampleOf(0, 10*ms, 85*ms)), 8, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, depthFor(tc.samples, tc.max))
		})
	}
}

func TestDepthControllerStartsAtTwoAndWaitsForSamples(t *testing.T) {
	t.Parallel()
	c := newDepthController(8)
	require.Equal(t, 2, c.current())
	tiny := sampleOf(3*time.Millisecond, 5*time.Millisecond, 12*time.Millisecond) // wants 4
	for i := 1; i < depthMinSamples; i++ {
		d, changed := c.observe(tiny)
		require.Equal(t, 2, d, "sample %d: too few samples to move", i)
		require.False(t, changed)
	}
	d, changed := c.observe(tiny)
	require.Equal(t, 4, d)
	require.True(t, changed)
	require.Equal(t, 1, newDepthController(1).current(), "the initial depth is bounded by the maximum")
}

func TestDepthControllerRisesAtOnce(t *testing.T) {
	t.Parallel()
	c := newDepthController(8)
	steady := sampleOf(0, 10*time.Millisecond, 9*time.Millisecond) // wants 2
	for range depthWindow {
		c.observe(steady)
	}
	require.Equal(t, 2, c.current())
	// One job whose after phase is long: the window's sums ask for
	// 1 + ⌈(15·9 + 200) / 160⌉ = 4 at once.
	d, changed := c.observe(sampleOf(0, 10*time.Millisecond, 200*time.Millisecond))
	require.True(t, changed)
	require.Equal(t, 4, d)

	// Slow jobs turning tiny: the long executions of the slow ones dominate the sums
	// until the last of them left the window.
	c = newDepthController(8)
	slow := sampleOf(5*time.Millisecond, 2*time.Second, 100*time.Millisecond)
	for range depthWindow {
		c.observe(slow)
	}
	tiny := sampleOf(3*time.Millisecond, 5*time.Millisecond, 12*time.Millisecond)
	for i := 1; i < depthWindow; i++ {
		d, _ := c.observe(tiny)
		require.Equal(t, 2, d, "tiny job %d", i)
	}
	d, changed = c.observe(tiny)
	require.True(t, changed)
	require.Equal(t, 4, d, "a window of tiny jobs: 1 + ⌈15/5⌉")
}

func TestDepthControllerFallsAfterAWindow(t *testing.T) {
	t.Parallel()
	c := newDepthController(8)
	tiny := sampleOf(3*time.Millisecond, 5*time.Millisecond, 12*time.Millisecond)
	for range depthWindow {
		c.observe(tiny)
	}
	require.Equal(t, 4, c.current())
	slow := sampleOf(5*time.Millisecond, 2*time.Second, 100*time.Millisecond)
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

func TestDepthControllerFallCountStartsOver(t *testing.T) {
	t.Parallel()
	c := newDepthController(8)
	mid := sampleOf(0, 10*time.Millisecond, 15*time.Millisecond) // wants 1 + ⌈15/10⌉ = 3
	for range depthWindow {
		c.observe(mid)
	}
	require.Equal(t, 3, c.current())
	// Jobs asking for 2 …
	less := sampleOf(0, 10*time.Millisecond, 5*time.Millisecond)
	for range depthWindow - 1 {
		c.observe(less)
	}
	require.Equal(t, 3, c.current())
	// … until one job makes the window ask for 3 again: 1 + ⌈(15·5 + 95) / 160⌉.
	// It asks for 3 while it is in the window (15 more jobs), and the count of jobs
	// asking for less starts over when it has left: 16 more.
	_, changed := c.observe(sampleOf(0, 10*time.Millisecond, 95*time.Millisecond))
	require.False(t, changed)
	for range 2*depthWindow - 2 {
		c.observe(less)
	}
	require.Equal(t, 3, c.current(), "the count of jobs asking for less started over")
	c.observe(less)
	require.Equal(t, 2, c.current())
}
