package comfysim

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestObjectKeepsPythonDictOrder: the history relies on it (a prompt id stored again
// keeps its first position; the oldest is evicted first).
func TestObjectKeepsPythonDictOrder(t *testing.T) {
	t.Parallel()
	var o object // the zero object is ready to use, as the instance's history is
	o.Set("b", 1)
	o.Set("a", 2)
	o.Set("c", 3)
	o.Set("b", 4)
	require.Equal(t, []string{"b", "a", "c"}, o.Keys())
	v, ok := o.Get("b")
	require.True(t, ok)
	require.Equal(t, 4, v)
	o.Delete(o.Keys()[0])
	o.Delete("missing")
	require.Equal(t, []string{"a", "c"}, o.Keys())
	require.Equal(t, 2, o.Len())
	require.False(t, o.Has("b"))
	require.Equal(t, `{"a": 2, "c": 3}`, string(encodePy(&o)))
}
