package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/apikey"
	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/fairshare"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/webhook/delivery"
)

// newKey creates a managed key through the admin API and returns its secret.
func (b *bundle) newKey(t testing.TB, req api.KeyRequest) (string, *apikey.Key) {
	t.Helper()
	r := b.do(t, "POST", "/v1/keys", adminKey, req)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	var nk api.NewKey
	r.json(t, &nk)
	require.True(t, strings.HasPrefix(nk.Secret, apikey.SecretPrefix), nk.Secret)
	require.Equal(t, req.Tenant, nk.Key.Tenant)
	return nk.Secret, nk.Key
}

// TestTenantsSeeOnlyTheirOwnWork runs a job of tenant acme and checks every route that
// names a job, its outputs or its events with a key of tenant globex: each answers
// exactly as for a job that does not exist. The owner and an admin see it.
func TestTenantsSeeOnlyTheirOwnWork(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{worker: true, config: func(cfg *api.Config) {
		d, err := delivery.NewDispatcher(delivery.DispatcherConfig{Redis: cfg.Redis, Logger: testLogger()})
		require.NoError(t, err)
		cfg.Webhooks = d
	}})
	acme, acmeKey := b.newKey(t, api.KeyRequest{Name: "acme-app", Tenant: "acme"})
	globex, _ := b.newKey(t, api.KeyRequest{Name: "globex-app", Tenant: "globex"})

	r := b.do(t, "POST", "/v1/jobs", acme, map[string]any{"workflow": jsonRaw(imageWorkflow)}, withHeader(api.IdempotencyHeader, "same-key"))
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	var acc api.Accepted
	r.json(t, &acc)
	c := b.client(t, acme)
	j, err := c.Wait(b.ctx, acc.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusSucceeded, j.Status)
	require.Equal(t, "acme", j.Tenant, "the job belongs to the key's tenant")
	require.NotEmpty(t, j.Outputs)
	fileURL := j.Outputs[0].URL
	require.Contains(t, fileURL, "/v1/files/", "a file store without URLs: the API serves the outputs")
	filePath := strings.TrimPrefix(fileURL, b.url)

	// The answer for a job that does not exist, route by route.
	missing := "0193a000-0000-7000-8000-000000000000"
	routes := []struct{ method, path string }{
		{"GET", "/v1/jobs/%s"},
		{"GET", "/v1/jobs/%s/events"},
		{"POST", "/v1/jobs/%s/cancel"},
		{"POST", "/v1/jobs/%s/webhooks/replay"},
		{"GET", "/v1/jobs/%s/workflow"},
	}
	for _, rt := range routes {
		want := b.do(t, rt.method, fmt.Sprintf(rt.path, missing), globex, nil)
		require.Equal(t, http.StatusNotFound, want.status, "%s %s of a missing job: %s", rt.method, rt.path, want.body)
		got := b.do(t, rt.method, fmt.Sprintf(rt.path, acc.ID), globex, nil)
		require.Equal(t, want.status, got.status, "%s %s of another tenant's job: %s", rt.method, rt.path, got.body)
		require.Equal(t, want.apiError(t), got.apiError(t), "%s %s: another tenant's job answers as a missing one", rt.method, rt.path)
		require.NotContains(t, string(got.body), acc.ID)
	}
	// The owner reaches each (the workflow of a succeeded job is gone: 404 of its own).
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/v1/jobs/"+acc.ID, acme, nil).status)
	require.Equal(t, http.StatusConflict, b.do(t, "POST", "/v1/jobs/"+acc.ID+"/cancel", acme, nil).status, "the owner learns it ended")
	require.Equal(t, http.StatusConflict, b.do(t, "POST", "/v1/jobs/"+acc.ID+"/webhooks/replay", acme, nil).status, "no subscription: the owner is told")
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/v1/jobs/"+acc.ID+"/events", acme, nil).status)

	// Outputs: the owner downloads, another tenant gets the 404 of a missing file.
	st, _ := fetch(t, b.ctx, fileURL, acme)
	require.Equal(t, http.StatusOK, st)
	notYours := b.do(t, "GET", filePath, globex, nil)
	require.Equal(t, http.StatusNotFound, notYours.status)
	noFile := b.do(t, "GET", "/v1/files/outputs/"+missing+"/9/x.png", globex, nil)
	require.Equal(t, noFile.apiError(t), notYours.apiError(t))
	st, _ = fetch(t, b.ctx, fileURL, adminKey)
	require.Equal(t, http.StatusOK, st, "an admin key reads every tenant's files")
	// Nor can another tenant feed the output to a job of its own.
	feed := map[string]any{"workflow": jsonRaw(loadImageWorkflow), "images": map[string]any{"1.inputs.image": map[string]any{"key": j.Outputs[0].Key}}}
	notYours = b.do(t, "POST", "/v1/jobs", globex, feed)
	require.Equal(t, http.StatusBadRequest, notYours.status, "body: %s", notYours.body)
	require.Contains(t, notYours.apiError(t).Message, "no object with key")
	require.Equal(t, http.StatusAccepted, b.do(t, "POST", "/v1/jobs", acme, feed).status, "the owner may")

	// Listing: each tenant its own; an admin all, or one tenant's.
	ids := func(key, query string) []string {
		resp := b.do(t, "GET", "/v1/jobs"+query, key, nil)
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		var l api.JobList
		resp.json(t, &l)
		var out []string
		for _, j := range l.Jobs {
			out = append(out, j.ID)
		}
		return out
	}
	require.Contains(t, ids(acme, ""), acc.ID)
	require.NotContains(t, ids(globex, ""), acc.ID)
	require.NotContains(t, ids(globex, "?status=succeeded"), acc.ID)
	require.Contains(t, ids(adminKey, ""), acc.ID)
	require.Contains(t, ids(adminKey, "?tenant=acme"), acc.ID)
	require.NotContains(t, ids(adminKey, "?tenant=globex"), acc.ID)
	require.Equal(t, http.StatusForbidden, b.do(t, "GET", "/v1/jobs?tenant=acme", globex, nil).status)

	// The same idempotency key of another tenant is another job.
	r = b.do(t, "POST", "/v1/jobs", globex, map[string]any{"workflow": jsonRaw(imageWorkflow)}, withHeader(api.IdempotencyHeader, "same-key"))
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	var other api.Accepted
	r.json(t, &other)
	require.NotEqual(t, acc.ID, other.ID)

	// Template jobs belong to the submitting tenant too.
	require.Equal(t, http.StatusCreated, b.do(t, "POST", "/v1/templates", adminKey,
		map[string]any{"name": "tiny", "workflow": jsonRaw(imageWorkflow)}).status)
	r = b.do(t, "POST", "/v1/templates/tiny/jobs", acme, map[string]any{})
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	var tacc api.Accepted
	r.json(t, &tacc)
	require.Contains(t, ids(acme, "?template=tiny"), tacc.ID)
	require.NotContains(t, ids(globex, "?template=tiny"), tacc.ID)
	require.Equal(t, http.StatusNotFound, b.do(t, "GET", "/v1/jobs/"+tacc.ID, globex, nil).status)
	require.Equal(t, http.StatusNotFound, b.do(t, "POST", "/v1/jobs/"+tacc.ID+"/cancel", globex, nil).status)
	tj, err := c.Wait(b.ctx, tacc.ID)
	require.NoError(t, err)
	require.NotEqual(t, job.StatusCanceled, tj.Status, "another tenant's cancel changed nothing")

	// whoami names the key and its tenant.
	r = b.do(t, "GET", "/v1/whoami", acme, nil)
	var who api.Whoami
	r.json(t, &who)
	require.Equal(t, api.Whoami{Role: "user", Auth: true, Tenant: "acme", KeyID: acmeKey.ID, KeyName: "acme-app"}, who)

	// A revoked key stops working at once.
	require.Equal(t, http.StatusOK, b.do(t, "DELETE", "/v1/keys/"+url.PathEscape(acmeKey.ID), adminKey, nil).status)
	require.Equal(t, http.StatusUnauthorized, b.do(t, "GET", "/v1/jobs", acme, nil).status)
	require.Equal(t, http.StatusNotFound, b.do(t, "DELETE", "/v1/keys/"+url.PathEscape(acmeKey.ID), adminKey, nil).status)
}

// TestStaticKeysAreTenants checks the keys given by flag or environment: each its own
// tenant, or the one its "TENANT:" prefix names.
func TestStaticKeysAreTenants(t *testing.T) {
	t.Parallel()
	const shared1, shared2 = "team-a:first-key-0123456789abcdef", "team-a:second-key-0123456789abcdef"
	b := setup(t, setupOpts{config: func(cfg *api.Config) {
		cfg.APIKeys = append(cfg.APIKeys, shared1, shared2, "loner-key-0123456789abcdef")
	}})
	first, second, loner := strings.TrimPrefix(shared1, "team-a:"), strings.TrimPrefix(shared2, "team-a:"), "loner-key-0123456789abcdef"
	r := b.do(t, "POST", "/v1/jobs", first, map[string]any{"workflow": jsonRaw(imageWorkflow)})
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	var acc api.Accepted
	r.json(t, &acc)
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/v1/jobs/"+acc.ID, second, nil).status, "same tenant: visible")
	require.Equal(t, http.StatusNotFound, b.do(t, "GET", "/v1/jobs/"+acc.ID, loner, nil).status, "own tenant: not visible")
	require.Equal(t, http.StatusNotFound, b.do(t, "GET", "/v1/jobs/"+acc.ID, userKey, nil).status)
	require.Equal(t, http.StatusUnauthorized, b.do(t, "GET", "/v1/jobs", shared1, nil).status, "the prefix is not part of the key")

	r = b.do(t, "GET", "/v1/whoami", loner, nil)
	var who api.Whoami
	r.json(t, &who)
	require.True(t, strings.HasPrefix(who.Tenant, "key-"), who.Tenant)

	r = b.do(t, "GET", "/v1/keys", adminKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.NotContains(t, string(r.body), first, "no secret is listed")
	require.Equal(t, http.StatusForbidden, b.do(t, "GET", "/v1/keys", userKey, nil).status)
	require.Equal(t, http.StatusForbidden, b.do(t, "POST", "/v1/keys", userKey, api.KeyRequest{Name: "x", Tenant: "x"}).status)
}

// TestQuotasHoldUnderABurst sends concurrent bursts: a key's rate, its jobs in flight,
// its queues and the reserved queues are enforced exactly, with nothing enqueued for
// the refused submissions.
func TestQuotasHoldUnderABurst(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{}) // no worker: jobs stay queued
	burst := func(key string, n int, body map[string]any) map[int][]response {
		var mu sync.Mutex
		out := map[int][]response{}
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := b.do(t, "POST", "/v1/jobs", key, body)
				mu.Lock()
				out[r.status] = append(out[r.status], r)
				mu.Unlock()
			}()
		}
		wg.Wait()
		return out
	}
	wf := map[string]any{"workflow": jsonRaw(imageWorkflow)}

	rated, _ := b.newKey(t, api.KeyRequest{Name: "rated", Tenant: "rated", Quota: apikey.Quota{Rate: 0.01, Burst: 5}})
	got := burst(rated, 40, wf)
	require.Len(t, got[http.StatusAccepted], 5, "the bucket holds 5")
	require.Len(t, got[http.StatusTooManyRequests], 35)
	for _, r := range got[http.StatusTooManyRequests] {
		require.Equal(t, "rate_limited", r.apiError(t).Code)
		require.NotEmpty(t, r.header.Get("Retry-After"))
	}

	capped, _ := b.newKey(t, api.KeyRequest{Name: "capped", Tenant: "capped", Quota: apikey.Quota{MaxInFlight: 3}})
	got = burst(capped, 40, wf)
	require.Len(t, got[http.StatusAccepted], 3, "3 jobs in flight at most")
	require.Len(t, got[http.StatusTooManyRequests], 37)
	require.Equal(t, "too_many_jobs", got[http.StatusTooManyRequests][0].apiError(t).Code)
	// A job that ends gives its place back.
	var first api.Accepted
	got[http.StatusAccepted][0].json(t, &first)
	require.Equal(t, http.StatusOK, b.do(t, "POST", "/v1/jobs/"+first.ID+"/cancel", capped, nil).status)
	require.Equal(t, http.StatusAccepted, b.do(t, "POST", "/v1/jobs", capped, wf).status)
	require.Equal(t, http.StatusTooManyRequests, b.do(t, "POST", "/v1/jobs", capped, wf).status)

	fenced, _ := b.newKey(t, api.KeyRequest{Name: "fenced", Tenant: "fenced", Queues: []string{"batch"}})
	got = burst(fenced, 10, map[string]any{"workflow": jsonRaw(imageWorkflow), "queue": "default"})
	require.Len(t, got[http.StatusForbidden], 10)
	require.Equal(t, "queue_forbidden", got[http.StatusForbidden][0].apiError(t).Code)
	require.Equal(t, http.StatusAccepted, b.do(t, "POST", "/v1/jobs", fenced, map[string]any{"workflow": jsonRaw(imageWorkflow), "queue": "batch"}).status)

	for _, key := range []string{userKey, adminKey} {
		got = burst(key, 10, map[string]any{"workflow": jsonRaw(imageWorkflow), "queue": "comfyq_webhooks"})
		require.Len(t, got[http.StatusBadRequest], 10, "reserved for every key")
		e := got[http.StatusBadRequest][0].apiError(t)
		require.Equal(t, "queue", e.Field)
	}
	n, err := b.rdb.LLen(b.ctx, "asynq:{comfyq_webhooks}:pending").Result()
	require.NoError(t, err)
	require.Zero(t, n, "nothing was enqueued into the webhook queue")

	// The refusals are counted by tenant and reason.
	m := string(b.do(t, "GET", "/metrics", adminKey, nil).body)
	require.Contains(t, m, `comfyq_tenant_submissions_refused_total{reason="rate",tenant="rated"}`)
	require.Contains(t, m, `comfyq_tenant_submissions_refused_total{reason="in_flight",tenant="capped"}`)
	require.Contains(t, m, `comfyq_tenant_submissions_refused_total{reason="queue",tenant="fenced"}`)
	require.Contains(t, m, `comfyq_tenant_jobs_submitted_total{queue="batch",tenant="fenced"} 1`)

	// Every job accepted above is in its tenant's listing (capped: 3, then one more after a cancel), and no refused one.
	for key, want := range map[string]int{rated: 5, capped: 4, fenced: 1} {
		r := b.do(t, "GET", "/v1/jobs", key, nil)
		var l api.JobList
		r.json(t, &l)
		require.Len(t, l.Jobs, want)
	}
}

// TestFairShareServesTenantsInTurn submits a concurrent burst of one tenant's jobs,
// then one job of another tenant, into the same queue, and only then starts a worker:
// the other tenant's job starts after at most the burst tenant's window of tasks, not
// after the whole burst. With fair sharing off, the same submissions run in arrival
// order and the single job comes last. Order is read from the jobs' start times, not
// from durations.
func TestFairShareServesTenantsInTurn(t *testing.T) {
	const simDepth = 2 // startWorker's node holds a fixed 2
	t.Parallel()
	// COMFYQ_TEST_FAIR_BURST sizes the burst (default 40); docs/operations.md quotes a
	// run with 1000.
	n := 40
	if v, err := strconv.Atoi(os.Getenv("COMFYQ_TEST_FAIR_BURST")); err == nil && v > 0 {
		n = v
	}
	for _, fair := range []bool{true, false} {
		t.Run(fmt.Sprintf("fair=%v", fair), func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{config: func(cfg *api.Config) { cfg.NoFairShare = !fair }})
			heavy, _ := b.newKey(t, api.KeyRequest{Name: "heavy", Tenant: "heavy"})
			light, _ := b.newKey(t, api.KeyRequest{Name: "light", Tenant: "light"})
			ids := make(chan string, n)
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := b.do(t, "POST", "/v1/jobs", heavy, map[string]any{"workflow": jsonRaw(imageWorkflow)})
					require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
					var acc api.Accepted
					r.json(t, &acc)
					ids <- acc.ID
				}()
			}
			wg.Wait()
			close(ids)
			r := b.do(t, "POST", "/v1/jobs", light, map[string]any{"workflow": jsonRaw(imageWorkflow)})
			require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
			var single api.Accepted
			r.json(t, &single)

			startWorker(t, b, comfysim.Options{})
			lc, hc := b.client(t, light), b.client(t, heavy)
			// Bounded by go test's -timeout: without fair sharing, a large burst
			// runs whole before the single job.
			lj, err := lc.Wait(context.Background(), single.ID)
			require.NoError(t, err)
			require.Equal(t, job.StatusSucceeded, lj.Status)
			// A burst job that has not started yet starts after the single job.
			before := 0
			for id := range ids {
				hj, err := hc.Get(context.Background(), id)
				require.NoError(t, err)
				if hj.StartedAt != nil && hj.StartedAt.Before(*lj.StartedAt) {
					before++
				}
			}
			t.Logf("%d of the %d burst jobs started before the other tenant's single job", before, n)
			if fair {
				// The queue holds the burst's window, then the single job. The worker
				// takes tasks on depth (2) goroutines that race to the node, so a task
				// taken just after the single job may reach the node first: the bound
				// is the window plus the depth.
				require.LessOrEqual(t, before, fairshare.DefaultWindow+simDepth,
					"the single job waits behind the burst tenant's window, not its backlog")
			} else {
				// First in, first out, up to the same race of the depth's goroutines.
				require.GreaterOrEqual(t, before, n-simDepth, "without fair sharing the queue is first in, first out")
			}
		})
	}
}
