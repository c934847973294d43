package api

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
)

// A client that goes away ends its stream: the stream's interest in the job is dropped.
func TestEventStreamEndsWhenTheClientGoesAway(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
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
