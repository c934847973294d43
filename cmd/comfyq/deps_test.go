package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBinaryCarriesOnlyTheProduct keeps test machinery out of the comfyq binary: the
// testing package, the fault proxy, the test environment and the simulator's test
// helper are for tests only.
func TestBinaryCarriesOnlyTheProduct(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	require.NoError(t, err)
	banned := map[string]bool{
		"testing":                             true,
		"github.com/stretchr/testify/require": true,
		"github.com/comfyq/comfyq/internal/faultproxy":    true,
		"github.com/comfyq/comfyq/internal/testenv":       true,
		"github.com/comfyq/comfyq/comfy/comfysim/simtest": true,
		"github.com/comfyq/comfyq/storage/storagetest":    true,
	}
	for _, pkg := range strings.Fields(string(out)) {
		require.False(t, banned[pkg] || strings.HasPrefix(pkg, "testing/"), "the comfyq binary links %s (go list -deps ./cmd/comfyq)", pkg)
	}
}
