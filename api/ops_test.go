package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/producer"
)

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb, err := producer.OpenRedis(srv.URL())
	require.NoError(t, err)
	t.Cleanup(func() { rdb.Close() })
	b := setup(t, setupOpts{redis: rdb, config: func(c *api.Config) { c.Version = "1.2.3" }})

	r := b.do(t, "GET", "/healthz", "", nil)
	require.Equal(t, 200, r.status)
	var h api.Health
	r.json(t, &h)
	require.Equal(t, api.Health{Status: "ok", Version: "1.2.3"}, h)

	r = b.do(t, "GET", "/readyz", "", nil)
	require.Equal(t, 200, r.status, "body: %s", r.body)
	r.json(t, &h)
	require.Equal(t, map[string]string{"redis": "ok", "storage": "ok"}, h.Checks)

	srv.Stop()
	r = b.do(t, "GET", "/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	r.json(t, &h)
	require.Equal(t, "unreachable", h.Checks["redis"])
	require.NotContains(t, string(r.body), srv.URL())
	// The process itself is still alive.
	require.Equal(t, 200, b.do(t, "GET", "/healthz", "", nil).status)
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.submit(t, map[string]any{"workflow": jsonRaw(imageWorkflow)})
	b.submit(t, map[string]any{"workflow": jsonRaw(imageWorkflow), "queue": "high"})
	// The worker and the webhook task feed these in their processes.
	metrics.NodeUp.WithLabelValues("gpu-test").Set(1)
	metrics.WebhookDeliveries.WithLabelValues("job.succeeded", metrics.WebhookSuccess).Inc()

	r := b.do(t, "GET", "/metrics", adminKey, nil)
	require.Equal(t, 200, r.status)
	body := string(r.body)
	for _, want := range []string{
		`comfyq_jobs{queue="default",status="queued"} 1`,
		`comfyq_jobs{queue="high",status="queued"} 1`,
		`comfyq_jobs{queue="high",status="succeeded"} 0`,
		`comfyq_jobs_scanned 2`,
		`comfyq_queue_size{queue="default"} 1`,
		`comfyq_queue_tasks{queue="high",state="pending"} 1`,
		`comfyq_queue_latency_seconds{queue="default"}`,
		`comfyq_queue_paused{queue="default"} 0`,
		`comfyq_redis_up 1`,
		`comfyq_node_up{node="gpu-test"} 1`,
		`comfyq_webhook_deliveries_total{event="job.succeeded",result="success"}`,
		`go_goroutines`,
	} {
		require.Contains(t, body, want)
	}
	require.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "text/plain"))
}

func TestCORS(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	origin := withHeader("Origin", "https://app.example.com")
	r := b.do(t, "GET", "/v1/jobs", userKey, nil, origin)
	require.Equal(t, 200, r.status)
	require.Empty(t, r.header.Get("Access-Control-Allow-Origin"), "CORS is off unless configured")

	c := setup(t, setupOpts{redis: b.rdb, store: b.store, config: func(c *api.Config) {
		c.CORSOrigins = []string{"https://app.example.com"}
	}})
	r = c.do(t, "OPTIONS", "/v1/jobs", "", nil, origin, withHeader("Access-Control-Request-Method", "POST"))
	require.Equal(t, http.StatusNoContent, r.status)
	require.Equal(t, "https://app.example.com", r.header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, r.header.Get("Access-Control-Allow-Headers"), "Authorization")
	r = c.do(t, "GET", "/v1/jobs", userKey, nil, origin)
	require.Equal(t, "https://app.example.com", r.header.Get("Access-Control-Allow-Origin"))
	r = c.do(t, "GET", "/v1/jobs", userKey, nil, withHeader("Origin", "https://evil.example.com"))
	require.Empty(t, r.header.Get("Access-Control-Allow-Origin"))

	_, err := api.New(api.Config{Redis: b.rdb, Storage: b.store, NoAuth: true, CORSOrigins: []string{"app.example.com"}, Logger: testLogger()})
	require.ErrorContains(t, err, "CORS origin")
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	r := b.do(t, "GET", "/v1/jobs", userKey, nil)
	require.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"))
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	require.Len(t, r.header.Get("X-Request-Id"), 16)
}
