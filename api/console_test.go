package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/api/console"
	"github.com/comfyq/comfyq/job"
)

const emptyImageWorkflow = `{"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
	"2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "c"}}}`

// The console's pages are served from the binary, with the console's CSP, without a key;
// a path that names no file serves the page, so deep links survive a reload.
func TestConsoleServed(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	for path, ct := range map[string]string{
		"/console/":            "text/html; charset=utf-8",
		"/console/js/app.js":   "text/javascript; charset=utf-8",
		"/console/console.css": "text/css; charset=utf-8",
		"/console/no/such":     "text/html; charset=utf-8",
	} {
		r := b.do(t, "GET", path, "", nil)
		require.Equal(t, http.StatusOK, r.status, path)
		require.Equal(t, ct, r.header.Get("Content-Type"), path)
		require.Equal(t, console.CSP, r.header.Get("Content-Security-Policy"), path)
		require.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"), path)
	}
	csp := console.CSP
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "img-src 'self' blob: data:", "media-src 'self' blob:"} {
		require.Contains(t, csp, want)
	}
	require.NotContains(t, csp, "unsafe-inline")
	page := string(b.do(t, "GET", "/console/", "", nil).body)
	require.Contains(t, page, `<script type="module" src="js/app.js">`)
	require.NotContains(t, page, "<script>", "no inline script")
	require.NotContains(t, page, "http", "nothing from elsewhere")

	// /console redirects to /console/; / and /docs link to it.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(b.url + "/console")
	require.NoError(t, err)
	resp.Body.Close()
	require.Contains(t, []int{http.StatusMovedPermanently, http.StatusTemporaryRedirect}, resp.StatusCode)
	require.Equal(t, "/console/", resp.Header.Get("Location"))
	var root map[string]string
	b.do(t, "GET", "/", "", nil).json(t, &root)
	require.Equal(t, "/console/", root["console"])
	require.Contains(t, string(b.do(t, "GET", "/docs", "", nil).body), `href="console/"`)
}

func TestWhoami(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	var w api.Whoami
	b.do(t, "GET", "/v1/whoami", userKey, nil).json(t, &w)
	require.Equal(t, "user", w.Role)
	require.True(t, w.Auth)
	require.Regexp(t, `^key-[0-9a-f]{8}$`, w.Tenant, "a static key without a TENANT: prefix is its own tenant")
	require.Equal(t, "static_"+strings.TrimPrefix(w.Tenant, "key-"), w.KeyID)
	w = api.Whoami{}
	b.do(t, "GET", "/v1/whoami", adminKey, nil).json(t, &w)
	require.Equal(t, "admin", w.Role)
	require.Equal(t, http.StatusUnauthorized, b.do(t, "GET", "/v1/whoami", "", nil).status)
	require.Equal(t, http.StatusUnauthorized, b.do(t, "GET", "/v1/whoami", "not-a-key-0123456789", nil).status)

	open := setup(t, setupOpts{config: func(cfg *api.Config) { cfg.APIKeys, cfg.AdminKeys, cfg.NoAuth = nil, nil, true }})
	w = api.Whoami{}
	open.do(t, "GET", "/v1/whoami", "", nil).json(t, &w)
	require.Equal(t, api.Whoami{Role: "admin", Auth: false}, w)
}

// A worker's heartbeat lists its node, with the job it holds while it runs one.
func TestNodesListed(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{worker: true})
	var nl api.NodeList
	require.Eventually(t, func() bool {
		b.do(t, "GET", "/v1/nodes", adminKey, nil).json(t, &nl)
		return len(nl.Nodes) == 1 && nl.Nodes[0].Healthy && nl.Nodes[0].ComfyUIVersion != ""
	}, 20*time.Second, 100*time.Millisecond, "the node is listed healthy, with its version")
	n := nl.Nodes[0]
	require.NotEmpty(t, n.Name)
	require.True(t, strings.HasPrefix(n.URL, "http://127.0.0.1:"), n.URL)
	require.Equal(t, 2, n.Depth, "the worker's default depth")
	require.NotNil(t, n.Jobs)
	require.NotEmpty(t, n.Worker)
	require.WithinDuration(t, time.Now(), n.UpdatedAt, time.Minute)
	require.GreaterOrEqual(t, n.Busy, 0.0)
	require.LessOrEqual(t, n.Busy, 1.0)
	require.Equal(t, http.StatusUnauthorized, b.do(t, "GET", "/v1/nodes", "", nil).status)

	// A user key sees the node's name and state, not its address nor the worker's host.
	var user api.NodeList
	b.do(t, "GET", "/v1/nodes", userKey, nil).json(t, &user)
	require.Len(t, user.Nodes, 1)
	require.Equal(t, n.Name, user.Nodes[0].Name)
	require.Empty(t, user.Nodes[0].URL)
	require.Empty(t, user.Nodes[0].Worker)
}

// A queued job's workflow is read from its task; a job that succeeded has none left.
func TestJobWorkflow(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	acc := b.submit(t, map[string]any{"workflow": jsonRaw(emptyImageWorkflow),
		"images": map[string]any{"1.inputs.image": map[string]any{"base64": pngBase64}}})
	r := b.do(t, "GET", "/v1/jobs/"+acc.ID+"/workflow", userKey, nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	var wf api.JobWorkflow
	r.json(t, &wf)
	require.Equal(t, acc.ID, wf.ID)
	require.Equal(t, "pending", wf.TaskState)
	var prompt map[string]struct {
		ClassType string `json:"class_type"`
	}
	require.NoError(t, json.Unmarshal(wf.Prompt, &prompt))
	require.Equal(t, "EmptyImage", prompt["1"].ClassType)
	require.Contains(t, wf.Images, "1.inputs.image")
	require.Empty(t, wf.Images["1.inputs.image"].Base64, "image contents are left out")
	require.NotContains(t, string(r.body), "aGVsbG8=")

	// Another id: the last digit changed (to 1 when it is 0: an id ending in 0 would be
	// the same job, one run in sixteen).
	last := "0"
	if strings.HasSuffix(acc.ID, "0") {
		last = "1"
	}
	require.Equal(t, http.StatusNotFound, b.do(t, "GET", "/v1/jobs/"+acc.ID[:len(acc.ID)-1]+last+"/workflow", userKey, nil).status)

	done := setup(t, setupOpts{worker: true})
	acc = done.submit(t, map[string]any{"workflow": jsonRaw(emptyImageWorkflow)})
	require.Equal(t, job.StatusSucceeded, done.waitJob(t, acc.ID).Status)
	require.Eventually(t, func() bool {
		return done.do(t, "GET", "/v1/jobs/"+acc.ID+"/workflow", userKey, nil).status == http.StatusNotFound
	}, 10*time.Second, 50*time.Millisecond, "asynq deletes a succeeded job's task")
	e := done.do(t, "GET", "/v1/jobs/"+acc.ID+"/workflow", userKey, nil).apiError(t)
	require.Equal(t, "not_found", e.Code)
	require.Contains(t, e.Message, "no longer kept")
}

// ?template= keeps only that template's jobs, in pages that follow each other.
func TestListJobsByTemplate(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	r := b.do(t, "POST", "/v1/templates", adminKey, map[string]any{"name": "small", "workflow": jsonRaw(emptyImageWorkflow)})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	var want []string
	for i := 0; i < 7; i++ {
		if i%2 == 0 {
			r := b.do(t, "POST", "/v1/templates/small/jobs", userKey, map[string]any{})
			require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
			var acc api.Accepted
			r.json(t, &acc)
			want = append([]string{acc.ID}, want...)
		} else {
			b.submit(t, map[string]any{"workflow": jsonRaw(emptyImageWorkflow)})
		}
		time.Sleep(2 * time.Millisecond) // distinct creation times keep the order exact
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		path := "/v1/jobs?template=small&limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page api.JobList
		r := b.do(t, "GET", path, userKey, nil)
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		r.json(t, &page)
		for _, j := range page.Jobs {
			require.Equal(t, "small", j.Template)
			got = append(got, j.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	require.Equal(t, want, got, "newest first, each once")

	var none api.JobList
	b.do(t, "GET", "/v1/jobs?template=other&status=queued", userKey, nil).json(t, &none)
	require.Empty(t, none.Jobs)
	require.NotNil(t, none.Jobs)
}
