package api

import (
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	_ "github.com/comfyq/comfyq/storage/file"
)

// newTestServer returns a server without authentication on a Redis of its own and a
// file store, for tests that reach inside the package; both end with the test.
func newTestServer(t *testing.T) *Server {
	t.Helper()
	rdb, err := producer.OpenRedis(testenv.NewRedis(t))
	require.NoError(t, err)
	t.Cleanup(func() { rdb.Close() })
	store, err := storage.Open(t.Context(), "file://"+t.TempDir())
	require.NoError(t, err)
	s, err := New(Config{Redis: rdb, Storage: store, NoAuth: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}
