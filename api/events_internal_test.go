package api

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
)

// A client that goes away ends its stream: the stream's interest in the job is dropped.
func TestEventStreamEndsWhenTheClientGoesAway(t *testing.T) {
	t.Parallel()
	rdb, err := producer.OpenRedis(testenv.NewRedis(t))
	require.NoError(t, err)
	t.Cleanup(func() { rdb.Close() })
	store, err := storage.Open(t.Context(), "file://"+t.TempDir())
	require.NoError(t, err)
	s, err := New(Config{Redis: rdb, Storage: store, NoAuth: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)

	j, err := s.producer.Enqueue(t.Context(), job.Spec{Workflow: []byte(`{"1": {"class_type": "EmptyImage", "inputs": {}}}`)})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	req, err := http.NewRequestWithContext(ctx, "GET", ts.URL+"/v1/jobs/"+j.ID+"/events", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "data: ") {
	}
	subscribers := func() int { return s.hub.Watchers(j.ID) }
	require.Equal(t, 1, subscribers())
	cancel()
	require.Eventually(t, func() bool { return subscribers() == 0 }, 10*time.Second, 10*time.Millisecond)
}
