package comfy

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// Locate's id-only read of /queue finds what the full QueueState finds, and skips
// tuples of another shape as QueueItem does.
func TestQueueIDsMatchQueueState(t *testing.T) {
	body := []byte(`{"queue_running": [[3, "r", {"1": {"class_type": "X", "inputs": {}}}, {}, ["1"]]],
	"queue_pending": [[5, "p1", {}, {"client_id": "c"}, []], null, [7], ["x", 8], [6.5, "p2", {}, {}, [], {"secret": 1}]]}`)
	var ids queueIDs
	require.NoError(t, json.Unmarshal(body, &ids))
	var full QueueState
	require.NoError(t, json.Unmarshal(body, &full))
	for _, id := range []string{"r", "p1", "p2", "absent", ""} {
		running, pending := ids.contains(id)
		wantRunning, wantPending := full.Contains(id)
		require.Equal(t, [2]bool{wantRunning, wantPending}, [2]bool{running, pending}, id)
	}
	require.Equal(t, []queuedID{"r"}, ids.Running)
	require.Equal(t, []queuedID{"p1", "", "", "", "p2"}, ids.Pending)
}
