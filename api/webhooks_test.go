package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/webhook"
	"github.com/comfyq/comfyq/webhook/delivery"
	"github.com/comfyq/comfyq/worker"
)

// receiver is a webhook endpoint that verifies every message it gets.
type receiver struct {
	mu       sync.Mutex
	verifier webhook.Verifier
	got      []received
}

type received struct {
	id    string
	event webhook.Event
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := rc.verifier.Verify(r.Header, body); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	ev, err := webhook.ParseEvent(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.got = append(rc.got, received{id: r.Header.Get("webhook-id"), event: ev})
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) events() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// TestWebhooksThroughTheAPI submits a job with a webhook over HTTP, runs it on a
// worker that reports its events, and checks the signed deliveries, the job's delivery
// log and a replay.
func TestWebhooksThroughTheAPI(t *testing.T) {
	t.Parallel()
	secret, whsec, err := webhook.NewSecret()
	require.NoError(t, err)
	rc := &receiver{verifier: webhook.Verifier{Secrets: []webhook.Secret{secret}}}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)

	var disp *delivery.Dispatcher
	b := setup(t, setupOpts{config: func(cfg *api.Config) {
		cfg.AllowPrivateURLs = true
		d, dispErr := delivery.NewDispatcher(delivery.DispatcherConfig{Redis: cfg.Redis, Logger: testLogger()})
		require.NoError(t, dispErr)
		disp, cfg.Webhooks = d, d
	}})
	ctx, cancel := context.WithCancel(context.Background())
	secrets, err := delivery.ParseSecrets(whsec)
	require.NoError(t, err)
	delivererDone := make(chan struct{})
	go func() {
		defer close(delivererDone)
		assert.NoError(t, delivery.RunServer(ctx, b.rdb, delivery.DelivererConfig{Redis: b.rdb, Secrets: secrets,
			AllowPrivateURLs: true, Logger: testLogger()}))
	}()
	// Stop the deliverer before its Redis client closes (asynq panics otherwise).
	t.Cleanup(func() { cancel(); <-delivererDone })

	_, simURL := simtest.NewServer(t, comfysim.Options{})
	w, err := worker.New(worker.Config{Redis: b.rdb, Storage: b.store, Nodes: []worker.NodeConfig{{URL: simURL, Name: "sim"}},
		HealthInterval: 100 * time.Millisecond, Notifier: disp, Logger: testLogger()})
	require.NoError(t, err)
	wctx, wcancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { assert.NoError(t, w.Run(wctx, nil)); close(done) }()
	t.Cleanup(func() { wcancel(); <-done })

	acc := b.submit(t, map[string]any{"workflow": jsonRaw(imageWorkflow),
		"webhook": map[string]any{"url": hook.URL + "/hook"}})
	j := b.waitJob(t, acc.ID)
	require.Equal(t, job.StatusSucceeded, j.Status)

	require.Eventually(t, func() bool { return len(rc.events()) >= 2 }, 30*time.Second, 20*time.Millisecond)
	got := rc.events()
	require.Equal(t, "job.started", got[0].event.Type, "events arrive in order of occurrence")
	require.Equal(t, "job.succeeded", got[1].event.Type)
	var data job.Job
	require.NoError(t, json.Unmarshal(got[1].event.Data, &data))
	require.Equal(t, acc.ID, data.ID)
	require.Equal(t, job.StatusSucceeded, data.Status)

	require.Eventually(t, func() bool {
		cur := b.getJob(t, acc.ID)
		delivered := 0
		for _, d := range cur.Webhooks {
			if d.DeliveredAt != nil && d.StatusCode == http.StatusNoContent {
				delivered++
			}
		}
		return delivered == 2
	}, 10*time.Second, 20*time.Millisecond, "the job's record logs both deliveries")

	resp := b.do(t, "POST", "/v1/jobs/"+acc.ID+"/webhooks/replay", userKey, nil)
	require.Equal(t, http.StatusAccepted, resp.status, string(resp.body))
	require.Eventually(t, func() bool { return len(rc.events()) == 3 }, 30*time.Second, 20*time.Millisecond)
	replayed := rc.events()[2]
	require.Equal(t, "job.succeeded", replayed.event.Type)
	require.NotEqual(t, got[1].id, replayed.id, "a replay is a new message")

	// A job that has not finished cannot be replayed; an unknown one is 404.
	resp = b.do(t, "POST", "/v1/jobs/0193a000-0000-7000-8000-000000000000/webhooks/replay", userKey, nil)
	require.Equal(t, http.StatusNotFound, resp.status)
}
