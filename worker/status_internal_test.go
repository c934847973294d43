package worker

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHeldJobsBusyFraction(t *testing.T) {
	t.Parallel()
	var h heldJobs
	ids, busy, window := h.snapshot()
	require.NotNil(t, ids, "no jobs is [] in JSON, not null")
	require.Empty(t, ids)
	require.Zero(t, busy)
	require.Zero(t, window)

	release := h.hold("a")
	releaseB := h.hold("b")
	h.sample()
	h.sample()
	release()
	ids, _, _ = h.snapshot()
	require.Equal(t, []string{"b"}, ids)
	releaseB()
	h.sample()
	h.sample()
	ids, busy, window = h.snapshot()
	require.Empty(t, ids)
	require.Equal(t, 4, window)
	require.InDelta(t, 0.5, busy, 1e-9)

	// The window is bounded: old samples fall out of the ring.
	for i := 0; i < 1000; i++ {
		h.sample()
	}
	_, busy, window = h.snapshot()
	require.Equal(t, 300, window)
	require.Zero(t, busy)
}
