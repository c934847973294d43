package simtest_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
)

// TestVersionDefaultsToNewest: a test run without COMFYQ_TEST_COMFYUI_VERSION uses the
// newest version, and NewServer gives it to a simulator whose options name none.
func TestVersionDefaultsToNewest(t *testing.T) {
	t.Setenv(simtest.VersionEnv, "")
	require.Equal(t, comfysim.NewestVersion, simtest.Version(t))
	s, _ := simtest.NewServer(t, comfysim.Options{})
	require.Equal(t, comfysim.NewestVersion, s.Version())
	t.Setenv(simtest.VersionEnv, comfysim.Version0364)
	s, _ = simtest.NewServer(t, comfysim.Options{})
	require.Equal(t, comfysim.Version0364, s.Version())
	s, _ = simtest.NewServer(t, comfysim.Options{ComfyUIVersion: comfysim.Version0381})
	require.Equal(t, comfysim.Version0381, s.Version(), "a version the test picks wins")
}

// TestScriptRunsEveryVersion: scripts/test.sh runs the worker and fault suites on every
// version the simulator knows, newest first (its main pass's default).
func TestScriptRunsEveryVersion(t *testing.T) {
	script, err := os.ReadFile("../../../scripts/test.sh")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^COMFYUI_VERSIONS=\(([^)]*)\)$`).FindSubmatch(script)
	require.NotNil(t, m, "scripts/test.sh sets COMFYUI_VERSIONS=(...)")
	want := comfysim.Versions()
	for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
		want[i], want[j] = want[j], want[i]
	}
	require.Equal(t, want, strings.Fields(string(m[1])))
}
