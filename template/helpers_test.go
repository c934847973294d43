package template

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/internal/fixtures"
)

// fixtureDir is the repository's testdata directory.
var fixtureDir = fixtures.Dir()

var objectInfo = sync.OnceValues(func() (comfy.ObjectInfo, error) {
	data, err := os.ReadFile(fixtures.Path(fixtures.ObjectInfo))
	if err != nil {
		return nil, err
	}
	return comfy.ParseObjectInfo(data)
})

func loadInfo(tb testing.TB) comfy.ObjectInfo {
	tb.Helper()
	info, err := objectInfo()
	require.NoError(tb, err, "read the object_info fixture (expected in %s)", fixtureDir)
	return info
}

func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, "workflows", name))
	require.NoError(tb, err, "read fixture %s (expected in %s)", name, fixtureDir)
	return data
}

func loadWorkflow(tb testing.TB, name string) comfy.Workflow {
	tb.Helper()
	wf, err := comfy.ParseWorkflow(readFixture(tb, name))
	require.NoError(tb, err)
	return wf
}

func parseWF(tb testing.TB, src string) comfy.Workflow {
	tb.Helper()
	wf, err := comfy.ParseWorkflow([]byte(src))
	require.NoError(tb, err)
	require.NoError(tb, wf.Validate())
	return wf
}

// paramsByName indexes params and checks names are unique.
func paramsByName(tb testing.TB, params []Param) map[string]Param {
	tb.Helper()
	m := map[string]Param{}
	for _, p := range params {
		_, dup := m[p.Name]
		require.False(tb, dup, "duplicate parameter %q", p.Name)
		m[p.Name] = p
	}
	return m
}

func names(params []Param) []string {
	out := make([]string, len(params))
	for i, p := range params {
		out[i] = p.Name
	}
	return out
}

func num(s string) json.Number { return json.Number(s) }
