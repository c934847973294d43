package comfysim

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/fixtures"
)

var update = flag.Bool("update", false, "regenerate objectinfo.json from testdata/comfyui's object_info")

func readObjectInfoFixture(t testing.TB) []byte {
	t.Helper()
	return fixtures.ReadObjectInfo(t)
}

// rawEntries decodes a JSON object of classes with encoding/json (not this
// package's decoder), numbers kept exact.
func rawEntries(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &raw))
	out := map[string]any{}
	for k, v := range raw {
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		var x any
		require.NoError(t, dec.Decode(&x))
		out[k] = x
	}
	return out
}

// TestObjectInfoEmbedded proves each embedded object_info entry equal to the
// real ComfyUI 0.3.64 fixture's. With -update it regenerates the file.
func TestObjectInfoEmbedded(t *testing.T) {
	fixture := readObjectInfoFixture(t)
	embedded := objectInfoJSON
	if *update {
		fv, err := decodeJSONBytes(fixture)
		require.NoError(t, err)
		fo := fv.(*object)
		var b bytes.Buffer
		b.WriteString("{\n")
		n := 0
		for _, name := range fo.Keys() {
			if !contains(simulatedClasses, name) {
				continue
			}
			if n > 0 {
				b.WriteString(",\n")
			}
			entry, _ := fo.Get(name)
			b.WriteString(" " + string(encodePy(name)) + ": " + string(encodePy(entry)))
			n++
		}
		b.WriteString("\n}\n")
		require.Equal(t, len(simulatedClasses), n, "every simulated class must be in the fixture")
		require.NoError(t, os.WriteFile("objectinfo.json", b.Bytes(), 0o644))
		embedded = b.Bytes()
	}

	want := rawEntries(t, fixture)
	got := rawEntries(t, embedded)
	require.Len(t, got, len(simulatedClasses))
	for _, name := range simulatedClasses {
		require.Contains(t, got, name)
		require.True(t, reflect.DeepEqual(want[name], got[name]), "object_info entry of %s differs from the fixture", name)
	}

	// Key order too: this package's encoder must reproduce the fixture entry.
	fv, err := decodeJSONBytes(fixture)
	require.NoError(t, err)
	ev, err := decodeJSONBytes(embedded)
	require.NoError(t, err)
	for _, name := range simulatedClasses {
		f, _ := fv.(*object).Get(name)
		e, _ := ev.(*object).Get(name)
		require.Equal(t, string(encodePy(f)), string(encodePy(e)), name)
	}
}
