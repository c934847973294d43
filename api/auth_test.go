package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/producer"
)

func TestNewRefusesToStartWithoutKeys(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	base := api.Config{Redis: b.rdb, Storage: b.store, Logger: testLogger()}

	_, err := api.New(base)
	require.ErrorContains(t, err, "--no-auth")

	short := base
	short.APIKeys = []string{"short"}
	_, err = api.New(short)
	require.ErrorContains(t, err, "shorter than 16")

	open := base
	open.NoAuth = true
	srv, err := api.New(open)
	require.NoError(t, err)
	srv.Close()

	_, err = api.New(api.Config{Storage: b.store, NoAuth: true})
	require.ErrorContains(t, err, "Redis")
	_, err = api.New(api.Config{Redis: b.rdb, NoAuth: true})
	require.ErrorContains(t, err, "storage")
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	def := map[string]any{"name": "tiny", "workflow": jsonRaw(imageWorkflow)}

	cases := []struct {
		name, method, path, key string
		body                    any
		want                    int
		code                    string
	}{
		{"no key", "GET", "/v1/jobs", "", nil, 401, "unauthorized"},
		{"unknown key", "GET", "/v1/jobs", "not-a-key-0123456789abcdef", nil, 401, "unauthorized"},
		{"user key", "GET", "/v1/jobs", userKey, nil, 200, ""},
		{"admin key on a user route", "GET", "/v1/jobs", adminKey, nil, 200, ""},
		{"user key on template creation", "POST", "/v1/templates", userKey, def, 403, "forbidden"},
		{"user key on template deletion", "DELETE", "/v1/templates/tiny", userKey, nil, 403, "forbidden"},
		{"user key on template replacement", "PUT", "/v1/templates/tiny", userKey, def, 403, "forbidden"},
		{"admin key on template creation", "POST", "/v1/templates", adminKey, def, 201, ""},
		{"user key reads templates", "GET", "/v1/templates/tiny", userKey, nil, 200, ""},
		{"no key for files", "GET", "/v1/files/jobs/x/1/a.png", "", nil, 401, "unauthorized"},
		{"no key for metrics", "GET", "/metrics", "", nil, 401, "unauthorized"},
		{"public health", "GET", "/healthz", "", nil, 200, ""},
		{"public readiness", "GET", "/readyz", "", nil, 200, ""},
		{"public openapi", "GET", "/openapi.json", "", nil, 200, ""},
		{"public docs", "GET", "/docs", "", nil, 200, ""},
		{"dashboard without key", "GET", "/monitoring/", "", nil, 401, "unauthorized"},
		{"dashboard with a user key", "GET", "/monitoring/", userKey, nil, 403, "forbidden"},
		{"dashboard API with a user key", "GET", "/monitoring/api/queues", userKey, nil, 403, "forbidden"},
		{"dashboard with the admin key", "GET", "/monitoring/", adminKey, nil, 200, ""},
	}
	for _, c := range cases {
		r := b.do(t, c.method, c.path, c.key, c.body)
		require.Equal(t, c.want, r.status, "%s: %s", c.name, r.body)
		if c.code != "" {
			e := r.apiError(t)
			require.Equal(t, c.code, e.Code, c.name)
			require.NotContains(t, string(r.body), userKey, c.name)
			require.NotContains(t, string(r.body), adminKey, c.name)
		}
		if c.want == 401 {
			require.Contains(t, r.header.Values("Www-Authenticate"), `Bearer realm="comfyq"`, c.name)
		}
	}

	// A browser opens the dashboard with HTTP Basic: it is asked for, and accepted.
	r := b.do(t, "GET", "/monitoring/", "", nil)
	require.Contains(t, strings.Join(r.header.Values("Www-Authenticate"), "\n"), "Basic realm=")
	r = b.do(t, "GET", "/monitoring/", "", nil, func(req *http.Request) { req.SetBasicAuth("admin", adminKey) })
	require.Equal(t, 200, r.status)
	require.Contains(t, string(r.body), "<html")
	r = b.do(t, "GET", "/monitoring/", "", nil, func(req *http.Request) { req.SetBasicAuth("admin", userKey) })
	require.Equal(t, 403, r.status)
	// Basic is only for the dashboard.
	r = b.do(t, "GET", "/v1/jobs", "", nil, func(req *http.Request) { req.SetBasicAuth("x", userKey) })
	require.Equal(t, 401, r.status)
	// "/monitoring" leads to the dashboard.
	req, err := http.NewRequest("GET", b.url+"/monitoring", nil)
	require.NoError(t, err)
	resp, err := (&http.Transport{}).RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.True(t, resp.StatusCode >= 300 && resp.StatusCode < 400, "status %d", resp.StatusCode)
	require.Equal(t, "/monitoring/", resp.Header.Get("Location"))
}

func TestMonitoringIsReadOnlyUnlessConfigured(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.submit(t, map[string]any{"workflow": jsonRaw(imageWorkflow)}) // makes the "default" queue exist

	r := b.do(t, "GET", "/monitoring/api/queues", adminKey, nil)
	require.Equal(t, 200, r.status, "body: %s", r.body)
	require.Contains(t, string(r.body), `"default"`)
	r = b.do(t, "POST", "/monitoring/api/queues/default:pause", adminKey, nil)
	require.Equal(t, http.StatusMethodNotAllowed, r.status, "read-only dashboard: %s", r.body)

	w := setup(t, setupOpts{redis: b.rdb, store: b.store, config: func(c *api.Config) { c.MonitoringWritable = true }})
	r = w.do(t, "POST", "/monitoring/api/queues/default:pause", adminKey, nil)
	require.Equal(t, http.StatusNoContent, r.status, "writable dashboard: %s", r.body)
}

func TestNoAuthOpensEveryRoute(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{config: func(c *api.Config) { c.APIKeys, c.AdminKeys, c.NoAuth = nil, nil, true }})
	r := b.do(t, "POST", "/v1/templates", "", map[string]any{"name": "open", "workflow": jsonRaw(imageWorkflow)})
	require.Equal(t, 201, r.status, "body: %s", r.body)
	require.Equal(t, 200, b.do(t, "GET", "/monitoring/", "", nil).status)
	require.Equal(t, 200, b.do(t, "GET", "/metrics", "", nil).status)
}

func TestPublicMetrics(t *testing.T) {
	t.Parallel()
	rdb, err := producer.OpenRedis(testenv.NewRedis(t))
	require.NoError(t, err)
	t.Cleanup(func() { rdb.Close() })
	b := setup(t, setupOpts{redis: rdb, config: func(c *api.Config) { c.PublicMetrics = true }})
	require.Equal(t, 200, b.do(t, "GET", "/metrics", "", nil).status)
}
