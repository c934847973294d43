package comfysim_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

// TestExecutionSpanMatchesTheHistory: the exact span of a prompt is the moments its
// execution_start and execution_success carry, which the history gives in ms.
func TestExecutionSpanMatchesTheHistory(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{NodeDelay: 20 * time.Millisecond})
	const p = "5d0c1d7e-1f77-4d8e-9d6f-2f3e4a5b6c7d"
	_, ok := b.sim.ExecutionSpan(p)
	require.False(t, ok, "no span before the prompt ran")
	ws := dialWS(t, b.base, "c1")
	code, _, _ := httpDo(t, http.MethodPost, b.base+"/prompt", map[string]any{"prompt": emptyImageSave("span"), "client_id": "c1", "prompt_id": p})
	require.Equal(t, http.StatusOK, code)
	ws.untilDone(p)

	sp, ok := b.sim.ExecutionSpan(p)
	require.True(t, ok)
	require.True(t, sp.End.After(sp.Start))
	require.GreaterOrEqual(t, sp.End.Sub(sp.Start), 40*time.Millisecond, "two nodes of 20 ms ran in between")
	ms := map[string]int64{}
	for _, m := range b.history(t, p)["status"].(map[string]any)["messages"].([]any) {
		pair := m.([]any)
		ts, err := pair[1].(map[string]any)["timestamp"].(json.Number).Int64()
		require.NoError(t, err)
		ms[pair[0].(string)] = ts
	}
	require.Equal(t, ms["execution_start"], sp.Start.UnixMilli())
	require.Equal(t, ms["execution_success"], sp.End.UnixMilli())
}
