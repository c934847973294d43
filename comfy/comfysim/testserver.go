package comfysim

import (
	"net/http/httptest"
	"testing"
)

// NewTestServer starts a simulator behind an httptest.Server listening on
// 127.0.0.1 and returns it with its base URL (http://127.0.0.1:port). Both
// are closed when the test ends. It is meant for the tests of other
// packages; opts are as for New.
func NewTestServer(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	s, err := New(opts)
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
