package api_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
)

// TestV2TenantsSeeOnlyTheirOwnWork runs a v2 job and uploads an asset as tenant acme,
// then calls every /api/v2 route that names them with a key of tenant globex: each
// answers exactly as for a job, an asset or a hash that does not exist, and changes
// nothing. The owner and an admin key reach them; the job is acme's on /v1 too.
func TestV2TenantsSeeOnlyTheirOwnWork(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{worker: true})
	acme, _ := b.newKey(t, api.KeyRequest{Name: "acme-app", Tenant: "acme"})
	globex, _ := b.newKey(t, api.KeyRequest{Name: "globex-app", Tenant: "globex"})
	const missing = "0193a000-0000-7000-8000-000000000000"
	missingHash := "blake3:" + fmt.Sprintf("%064x", 0)

	// acme: a job through /api/v2 (with an idempotency key) and an uploaded asset.
	body := map[string]any{"workflow": jsonRaw(imageWorkflow)}
	idem := withHeader("Idempotency-Key", "tenant-key")
	r := b.do(t, "POST", "/api/v2/jobs", acme, body, idem)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	id := v2Job(t, r)["id"].(string)
	data := pngBytes(t, 21)
	hash := blakeOf(data)
	r = b.upload(t, acme, data, map[string]string{"content_type": "image/png", "file_path": "acme.png"})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	var asset api.V2Asset
	r.json(t, &asset)

	// globex, route by route: the answer for what does not exist. Cancel comes first,
	// while the job may still be queued or running: it must change nothing.
	same := func(method, path, wantPath string, body any) {
		t.Helper()
		want := b.do(t, method, wantPath, globex, body)
		require.Equal(t, http.StatusNotFound, want.status, "%s %s of nothing: %s", method, wantPath, want.body)
		got := b.do(t, method, path, globex, body)
		require.Equal(t, want.status, got.status, "%s %s of another tenant: %s", method, path, got.body)
		if method == http.MethodHead {
			require.Empty(t, got.body)
			return
		}
		require.Equal(t, want.apiError(t), got.apiError(t), "%s %s: another tenant's answers as a missing one", method, path)
	}
	for _, route := range []string{"/api/v2/jobs/%s/cancel", "/api/v2/jobs/%s", "/api/v2/jobs/%s/workflow", "/api/v2/jobs/%s/events"} {
		method := "GET"
		if route == "/api/v2/jobs/%s/cancel" {
			method = "POST"
		}
		same(method, fmt.Sprintf(route, id), fmt.Sprintf(route, missing), nil)
	}
	same("GET", "/v1/jobs/"+id, "/v1/jobs/"+missing, nil)
	for _, route := range []string{"/api/v2/assets/%s", "/api/v2/assets/%s/content"} {
		same("GET", fmt.Sprintf(route, asset.ID), fmt.Sprintf(route, missing), nil)
	}
	same("DELETE", "/api/v2/assets/"+asset.ID, "/api/v2/assets/"+missing, nil)
	// A hash is a lookup key, not a read permission: another tenant's blob is a miss.
	same("HEAD", "/api/v2/assets/by-hash/"+hash, "/api/v2/assets/by-hash/"+missingHash, nil)
	r = b.do(t, "POST", "/api/v2/assets/from-hash", globex, map[string]any{"hash": missingHash})
	want := r.apiError(t)
	r = b.do(t, "POST", "/api/v2/assets/from-hash", globex, map[string]any{"hash": hash})
	require.Equal(t, http.StatusNotFound, r.status, "body: %s", r.body)
	require.Equal(t, want, r.apiError(t), "minting over another tenant's blob answers as a miss")
	// Nor can globex feed acme's asset to a job.
	wf := fmt.Sprintf(`{"1": {"class_type": "LoadImage", "inputs": {"image": {"__type": "core/ASSET", "info": {"id": %q}}}},
	 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}`, asset.ID)
	r = b.do(t, "POST", "/api/v2/jobs", globex, map[string]any{"workflow": jsonRaw(wf)})
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "body: %s", r.body)
	require.Equal(t, "missing_asset", r.apiError(t).Code)
	// The same idempotency key of another tenant is another job, not a replay.
	r = b.do(t, "POST", "/api/v2/jobs", globex, body, idem)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Empty(t, r.header.Get("Idempotency-Replayed"))
	require.NotEqual(t, id, v2Job(t, r)["id"])
	// Uploading the same bytes tells globex nothing of acme's: a new asset, as for
	// bytes nobody stored (the blob is still stored once).
	r = b.upload(t, globex, data, map[string]string{"content_type": "image/png", "file_path": "globex.png"})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	var theirs api.V2Asset
	r.json(t, &theirs)
	require.True(t, *theirs.CreatedNew, "another tenant's blob is not revealed by created_new")
	r = b.upload(t, globex, data, map[string]string{"content_type": "image/png", "file_path": "again.png"})
	require.Equal(t, http.StatusOK, r.status, "its own bytes again: body: %s", r.body)
	var again api.V2Asset
	r.json(t, &again)
	require.False(t, *again.CreatedNew)

	// The owner: the job ran (globex's cancel changed nothing), its output is an
	// asset of acme's, and acme's asset survived globex's DELETE.
	done := v2Job(t, b.do(t, "GET", "/api/v2/jobs/"+id, acme, nil))
	for done["status"] != "succeeded" {
		require.Contains(t, []any{"queued", "running"}, done["status"], "job: %v", done)
		time.Sleep(50 * time.Millisecond)
		done = v2Job(t, b.do(t, "GET", "/api/v2/jobs/"+id, acme, nil))
	}
	out := done["outputs"].([]any)[0].(map[string]any)["id"].(string)
	for _, key := range []string{acme, adminKey} {
		for _, path := range []string{"/api/v2/jobs/" + id, "/api/v2/jobs/" + id + "/workflow", "/api/v2/jobs/" + id + "/events",
			"/v1/jobs/" + id, "/api/v2/assets/" + asset.ID, "/api/v2/assets/" + asset.ID + "/content",
			"/api/v2/assets/" + out, "/api/v2/assets/" + out + "/content"} {
			r = b.do(t, "GET", path, key, nil)
			require.Equal(t, http.StatusOK, r.status, "GET %s as %s: %s", path, key == adminKey, r.body)
		}
		require.Equal(t, http.StatusOK, b.do(t, "HEAD", "/api/v2/assets/by-hash/"+hash, key, nil).status)
	}
	for _, route := range []string{"/api/v2/assets/%s", "/api/v2/assets/%s/content"} {
		same("GET", fmt.Sprintf(route, out), fmt.Sprintf(route, missing), nil)
	}
	same("DELETE", "/api/v2/assets/"+out, "/api/v2/assets/"+missing, nil)
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/api/v2/assets/"+out, acme, nil).status, "globex's DELETE changed nothing")
	r = b.do(t, "POST", "/api/v2/jobs/"+id+"/cancel", acme, nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, "succeeded", v2Job(t, r)["status"])
	r = b.do(t, "POST", "/api/v2/assets/from-hash", acme, map[string]any{"hash": hash, "file_path": "mine.png"})
	require.Equal(t, http.StatusCreated, r.status, "the owner mints over its blob: %s", r.body)

	// An admin sees every tenant's blobs and may mint over them, and delete any asset.
	r = b.do(t, "POST", "/api/v2/assets/from-hash", adminKey, map[string]any{"hash": hash})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, http.StatusNoContent, b.do(t, "DELETE", "/api/v2/assets/"+theirs.ID, adminKey, nil).status)
	require.Equal(t, http.StatusNotFound, b.do(t, "GET", "/api/v2/assets/"+theirs.ID, globex, nil).status)

	// A job submitted through /v1 is the same on /api/v2: its tenant's only.
	r = b.do(t, "POST", "/v1/jobs", acme, body)
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	var acc api.Accepted
	r.json(t, &acc)
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/api/v2/jobs/"+acc.ID, acme, nil).status)
	same("GET", "/api/v2/jobs/"+acc.ID, "/api/v2/jobs/"+missing, nil)
	same("POST", "/api/v2/jobs/"+acc.ID+"/cancel", "/api/v2/jobs/"+missing+"/cancel", nil)
	same("GET", "/api/v2/jobs/"+acc.ID+"/events", "/api/v2/jobs/"+missing+"/events", nil)
}
