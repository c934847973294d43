package simtest_test

import (
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
