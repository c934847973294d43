// Package simtest starts ComfyUI simulators (package comfysim) for the tests of other
// packages. It imports "testing", so it lives apart from comfysim, which the comfyq
// binary links (comfyq sim, comfyq dev).
package simtest

import (
	"net/http/httptest"
	"testing"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

// NewServer starts a simulator behind an httptest.Server listening on 127.0.0.1 and
// returns it with its base URL (http://127.0.0.1:port). Both are closed when the test
// ends; opts are as for comfysim.New.
func NewServer(t testing.TB, opts comfysim.Options) (*comfysim.Server, string) {
	t.Helper()
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
