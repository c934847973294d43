package api_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/storage/file"
)

// The hardening of issue 13: links, inputs, files, the dashboard, what errors show.

// TestLinksIgnoreHost: a client's Host header never reaches a link of an answer
// (status_url, events_url, Location, file URLs, the template's jobs_url, the OpenAPI
// document's server).
func TestLinksIgnoreHost(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	evil := withHost("evil.example")
	r := b.do(t, "POST", "/v1/jobs", userKey, map[string]any{"workflow": jsonRaw(imageWorkflow)}, evil)
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	require.NotContains(t, string(r.body), "evil.example")
	require.NotContains(t, r.header.Get("Location"), "evil.example")
	var acc api.Accepted
	r.json(t, &acc)
	require.Equal(t, "/v1/jobs/"+acc.ID, r.header.Get("Location"))
	for _, path := range []string{"/v1/jobs/" + acc.ID, "/v1/jobs", "/v1/templates", "/openapi.json"} {
		r = b.do(t, "GET", path, userKey, nil, evil)
		require.Equal(t, http.StatusOK, r.status, "%s: %s", path, r.body)
		require.NotContains(t, string(r.body), "evil.example", path)
	}
}

// TestSymlinkedKeysRefused: a key that is a symbolic link out of a file store (or
// passes through one) is refused at submission as an invalid key, and the files route
// answers 404 for it, as for any key that names no object.
func TestSymlinkedKeysRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	fs, ok := b.store.(*file.Store)
	require.True(t, ok, "the default test store is a file store: %s", b.store)
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.png"), []byte("secret"), 0o600))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret.png"), filepath.Join(fs.Dir(), "link.png")))
	require.NoError(t, os.Symlink(outside, filepath.Join(fs.Dir(), "linkdir")))
	require.NoError(t, os.Symlink("loop", filepath.Join(fs.Dir(), "loop")))

	for _, key := range []string{"link.png", "linkdir/secret.png", "loop"} {
		r := b.do(t, "POST", "/v1/jobs", userKey, map[string]any{"workflow": jsonRaw(imageWorkflow),
			"images": map[string]any{"1.inputs.image": map[string]any{"key": key}}})
		require.Equal(t, http.StatusBadRequest, r.status, "%s: %s", key, r.body)
		e := r.apiError(t)
		require.Equal(t, "invalid_request", e.Code)
		require.Equal(t, "images.1.inputs.image", e.Field)
		require.Contains(t, e.Message, "not a valid storage key", key)

		r = b.do(t, "GET", "/v1/files/"+key, userKey, nil)
		require.Equal(t, http.StatusNotFound, r.status, "%s: %s", key, r.body)
		require.Equal(t, "not_found", r.apiError(t).Code)
		require.NotContains(t, string(r.body), "secret")
		require.NotContains(t, string(r.body), outside)
	}
	jobs, _, err := b.jobs().List(b.ctx, job.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, jobs, "nothing was enqueued")
}

// TestDashboardWritesAreSameOrigin: with --monitoring-writable, a change must come
// from the dashboard's own pages. A form on another site posting with the browser's
// cached Basic credentials is refused (Sec-Fetch-Site or Origin), and so is a Basic
// write that shows no origin at all; a script's Bearer write and the dashboard's own
// requests go through.
func TestDashboardWritesAreSameOrigin(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{config: func(c *api.Config) { c.MonitoringWritable = true }})
	b.submit(t, map[string]any{"workflow": jsonRaw(imageWorkflow)}) // makes the "default" queue exist
	basic := func(r *http.Request) { r.SetBasicAuth("admin", adminKey) }
	const pause = "/monitoring/api/queues/default:pause"
	const resume = "/monitoring/api/queues/default:resume"

	for name, opts := range map[string][]reqOpt{
		"cross-site form":          {basic, withHeader("Sec-Fetch-Site", "cross-site"), withHeader("Origin", "https://evil.example")},
		"same-site other origin":   {basic, withHeader("Sec-Fetch-Site", "same-site"), withHeader("Origin", "https://other.example.com")},
		"old browser, other site":  {basic, withHeader("Origin", "https://evil.example")},
		"Origin null":              {basic, withHeader("Origin", "null")},
		"Basic without any origin": {basic},
		"Bearer from another site": {withHeader("Authorization", "Bearer "+adminKey), withHeader("Sec-Fetch-Site", "cross-site")},
	} {
		r := b.do(t, "POST", pause, "", nil, opts...)
		require.Equal(t, http.StatusForbidden, r.status, "%s: %s", name, r.body)
		require.Equal(t, "forbidden", r.apiError(t).Code, name)
	}
	queues := b.do(t, "GET", "/monitoring/api/queues", adminKey, nil)
	require.Contains(t, string(queues.body), `"paused":false`, "no refused request paused the queue")

	// The dashboard's own page (same origin), an old browser on this origin, a script.
	r := b.do(t, "POST", pause, "", nil, basic, withHeader("Sec-Fetch-Site", "same-origin"), withHeader("Origin", b.url))
	require.Equal(t, http.StatusNoContent, r.status, "same origin: %s", r.body)
	r = b.do(t, "POST", resume, "", nil, basic, withHeader("Origin", b.url))
	require.Equal(t, http.StatusNoContent, r.status, "same origin, no Sec-Fetch-Site: %s", r.body)
	r = b.do(t, "POST", pause, adminKey, nil)
	require.Equal(t, http.StatusNoContent, r.status, "a script with a Bearer key: %s", r.body)
	// Reading stays open to the admin from anywhere (a link followed from elsewhere).
	r = b.do(t, "GET", "/monitoring/api/queues", "", nil, basic, withHeader("Sec-Fetch-Site", "cross-site"))
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
}

// TestNoFraming: every response, API, console, docs, files and dashboard, errors
// included, forbids being framed by another page.
func TestNoFraming(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	for _, c := range []struct{ path, key string }{
		{"/healthz", ""}, {"/v1/jobs", userKey}, {"/v1/jobs", ""}, {"/no/such/route", ""}, {"/docs", ""},
		{"/console/", ""}, {"/openapi.json", ""}, {"/monitoring/", adminKey}, {"/monitoring/", ""},
		{"/v1/files/none.png", userKey},
	} {
		r := b.do(t, "GET", c.path, c.key, nil)
		require.Equal(t, "DENY", r.header.Get("X-Frame-Options"), c.path)
		require.Contains(t, r.header.Get("Content-Security-Policy"), "frame-ancestors 'none'", c.path)
	}
}

// TestNodeURLForAdminsOnly: a job's node is named to every key, its internal URL only
// to admin keys, in every answer that carries the job.
func TestNodeURLForAdminsOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	id := finishedJob(t, b)
	for _, path := range []string{"/v1/jobs/" + id, "/v1/jobs", "/v1/jobs/" + id + "/events"} {
		r := b.do(t, "GET", path, userKey, nil)
		require.Equal(t, http.StatusOK, r.status, "%s: %s", path, r.body)
		require.Contains(t, string(r.body), `"node_name":"gpu-1"`, path)
		require.NotContains(t, string(r.body), "gpu-1:8188", path)
		r = b.do(t, "GET", path, adminKey, nil)
		require.Contains(t, string(r.body), `"node":"http://gpu-1:8188"`, path)
	}
	r := b.do(t, "POST", "/v1/jobs/"+id+"/cancel", userKey, nil)
	require.Equal(t, http.StatusConflict, r.status)
	require.NotContains(t, string(r.body), "gpu-1:8188", "the ended job in the 409")
}

// TestOutputFilenameReportedSanitised: an output's filename is shown without NUL, bidi
// controls or a path, even from a record that holds them.
func TestOutputFilenameReportedSanitised(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	acc := b.submit(t, map[string]any{"workflow": jsonRaw(imageWorkflow)})
	_, err := b.jobs().Update(b.ctx, acc.ID, func(j *job.Job) error {
		j.Status = job.StatusRunning
		j.Outputs = []job.Output{{NodeID: "9", Kind: job.KindImage, Filename: "../../etc/inv\u202egnp.exe\x00.png"}}
		return nil
	})
	require.NoError(t, err)
	j := b.getJob(t, acc.ID)
	name := j.Outputs[0].Filename
	// As storage.SanitizeName makes the last segment of the output's key: no
	// separator is left, so ".." is no longer a path element.
	require.Equal(t, "_.._etc_invgnp.exe.png", name)
	require.NotContains(t, name, "/")
}
