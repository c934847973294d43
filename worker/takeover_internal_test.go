package worker

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// A loopback node URL means a node only on the machine of the worker that drove it
// (in Kubernetes every pod's ComfyUI is http://127.0.0.1:8188): a taker elsewhere
// must not take it for its own.
func TestCanReach(t *testing.T) {
	t.Parallel()
	w := &Worker{}
	host, err := os.Hostname()
	require.NoError(t, err)
	require.True(t, w.canReach("http://gpu-1:8188", "elsewhere"))
	require.True(t, w.canReach("https://10.0.0.7:8188/comfy", ""))
	require.False(t, w.canReach("http://127.0.0.1:8188", "elsewhere"))
	require.False(t, w.canReach("http://localhost:8188", ""))
	require.False(t, w.canReach("http://[::1]:8188", "elsewhere"))
	require.False(t, w.canReach("http://0.0.0.0:8188", "elsewhere"))
	require.True(t, w.canReach("http://127.0.0.1:8188", host))
	require.False(t, w.canReach("://bad", host))
}
