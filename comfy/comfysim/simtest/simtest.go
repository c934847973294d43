// Package simtest starts ComfyUI simulators (package comfysim) for the tests of other
// packages. It imports "testing", so it lives apart from comfysim, which the comfyq
// binary links (comfyq sim, comfyq dev).
//
// The ComfyUI version a test's simulator speaks is chosen here, once for a test run:
// $COMFYQ_TEST_COMFYUI_VERSION (see VersionEnv), default the newest the simulator
// knows. scripts/test.sh runs the suite on the default and the worker and fault
// suites again on the other version.
package simtest

import (
	"net/http/httptest"
	"os"
	"slices"
	"testing"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

// VersionEnv is the environment variable that picks the ComfyUI version of the
// simulators NewServer starts when the test does not pick one.
const VersionEnv = "COMFYQ_TEST_COMFYUI_VERSION"

// Version is the ComfyUI version of this test run: $COMFYQ_TEST_COMFYUI_VERSION, or
// comfysim.NewestVersion when unset. A version the simulator does not know fails t.
func Version(t testing.TB) string {
	t.Helper()
	v := os.Getenv(VersionEnv)
	if v == "" {
		return comfysim.NewestVersion
	}
	if !slices.Contains(comfysim.Versions(), v) {
		t.Fatalf("%s=%q: the simulator knows %v", VersionEnv, v, comfysim.Versions())
	}
	return v
}

// NewServer starts a simulator behind an httptest.Server listening on 127.0.0.1 and
// returns it with its base URL (http://127.0.0.1:port). Both are closed when the test
// ends; opts are as for comfysim.New, except that an empty opts.ComfyUIVersion is this
// run's Version rather than comfysim's zero-value default.
func NewServer(t testing.TB, opts comfysim.Options) (*comfysim.Server, string) {
	t.Helper()
	if opts.ComfyUIVersion == "" {
		opts.ComfyUIVersion = Version(t)
	}
	s, err := comfysim.New(opts)
	if err != nil {
		t.Fatalf("comfysim: %v", err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		_ = s.Close()
		ts.Close()
	})
	return s, ts.URL
}
