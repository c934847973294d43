package worker

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPromptsOnNodeTellsAStarvedNode: a prompt queued while the node holds no other
// prompt of this worker is a starved sample; leaving the node twice counts once.
func TestPromptsOnNodeTellsAStarvedNode(t *testing.T) {
	t.Parallel()
	n := &node{}
	a, b := &run{n: n}, &run{n: n}
	a.countOnNode()
	require.True(t, a.starved, "the first prompt found the node without work")
	b.countOnNode()
	require.False(t, b.starved, "the second found the first still there")
	a.leaveNode()
	a.leaveNode()
	require.EqualValues(t, 1, n.promptsOnNode.Load())
	b.leaveNode()
	require.EqualValues(t, 0, n.promptsOnNode.Load())
	c := &run{n: n}
	c.countOnNode()
	c.countOnNode()
	require.True(t, c.starved)
	require.EqualValues(t, 1, n.promptsOnNode.Load(), "counted once however often it is asked")
}

func TestRedisConnsCoverEverySlot(t *testing.T) {
	t.Parallel()
	require.Equal(t, RedisConns(1, DefaultMaxDepth), RedisConns(1, 0), "0: the automatic depth's maximum")
	for _, c := range []struct{ nodes, depth int }{{1, 1}, {1, 8}, {4, 8}, {16, 2}} {
		require.GreaterOrEqual(t, RedisConns(c.nodes, c.depth), 4*c.nodes*c.depth+16, "%d nodes at depth %d", c.nodes, c.depth)
	}
}
