package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/webhook"
	"github.com/comfyq/comfyq/webhook/delivery"
	"github.com/comfyq/comfyq/worker"
)

// hookReceiver is a webhook receiver on loopback that records every request,
// verifies its signature, and answers what its mode says.
type hookReceiver struct {
	verifier webhook.Verifier

	mu   sync.Mutex
	ok   bool // answer 204 (else 503)
	got  []hookRequest
	seen map[string]int // 2xx answers by webhook-id
}

type hookRequest struct {
	id, typ, jobID string
	status         int
	verified       bool
	data           job.Job
	at             time.Time
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := hookRequest{id: r.Header.Get("webhook-id"), verified: h.verifier.Verify(r.Header, body) == nil, at: time.Now()}
	var ev struct {
		Type string  `json:"type"`
		Data job.Job `json:"data"`
	}
	if json.Unmarshal(body, &ev) == nil {
		req.typ, req.data, req.jobID = ev.Type, ev.Data, ev.Data.ID
	}
	h.mu.Lock()
	req.status = http.StatusServiceUnavailable
	if h.ok {
		req.status = http.StatusNoContent
		h.seen[req.id]++
	}
	h.got = append(h.got, req)
	h.mu.Unlock()
	w.WriteHeader(req.status)
}

func (h *hookReceiver) setOK(ok bool) {
	h.mu.Lock()
	h.ok = ok
	h.mu.Unlock()
}

func (h *hookReceiver) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.got...)
}

// TestWebhookReceiverDown sends every job's webhooks to a receiver that is down
// while the jobs run: first it answers 503, then nothing listens (connections are
// refused) until every job has ended, then it answers 204. Deliveries are asynq tasks retried
// with backoff: every event of every job arrives, signed, exactly once with a 2xx
// answer, started before succeeded, and each job's delivery log shows it delivered.
func TestWebhookReceiverDown(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{nodes: 1, sim: comfysim.Options{StepDelay: 10 * time.Millisecond}})
	secret, _, err := webhook.NewSecret()
	require.NoError(t, err)
	retry := delivery.RetryPolicy{Horizon: 15 * time.Minute, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	disp, err := delivery.NewDispatcher(delivery.DispatcherConfig{Redis: c.rdb, Retry: retry, Logger: testLogger(t)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	delivered := make(chan error, 1)
	go func() {
		delivered <- delivery.RunServer(ctx, c.rdb, delivery.DelivererConfig{
			Secrets: []webhook.Secret{secret}, AllowPrivateURLs: true,
			AttemptTimeout: 2 * time.Second, Retry: retry, OrderingDelay: 50 * time.Millisecond,
			PollInterval: 50 * time.Millisecond, Logger: testLogger(t),
		})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-delivered)
	})
	recv := &hookReceiver{verifier: webhook.Verifier{Secrets: []webhook.Secret{secret}}, seen: map[string]int{}}
	srv := newFlakyServer(t, recv)
	c.startWorker(workerOpts{tweak: func(cfg *worker.Config) { cfg.Notifier = disp }})

	ids := c.submit(12, func(i int) job.Spec {
		return job.Spec{Workflow: samplerWorkflow(8, 8000+i, "hook"), Webhook: &job.WebhookSpec{URL: srv.URL() + "/hook"}}
	})
	waitFor(t, 60*time.Second, "3 jobs to succeed and 10 deliveries refused", func() bool {
		return len(c.statusesOf(ids)[job.StatusSucceeded]) >= 3 && len(recv.requests()) >= 10
	}, progressOf(c, ids))
	srv.down()
	js := c.waitTerminal(2 * time.Minute) // every event happens while nothing listens
	time.Sleep(time.Second)
	srv.up()
	refused := len(recv.requests())
	recv.setOK(true)
	s := c.verify(js, expect{})
	waitFor(t, 3*time.Minute, "every job's started and succeeded webhooks to be delivered", func() bool {
		got := map[string]int{}
		for _, r := range recv.requests() {
			if r.status < 300 {
				got[r.jobID+" "+r.typ]++
			}
		}
		for _, id := range ids {
			if got[id+" "+webhook.EventJobStarted] == 0 || got[id+" "+webhook.EventJobSucceeded] == 0 {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("%d requests", len(recv.requests())) })
	time.Sleep(500 * time.Millisecond) // let any duplicate arrive before counting

	reqs := recv.requests()
	byJob := map[string][]hookRequest{}
	for _, r := range reqs {
		require.True(t, r.verified, "a webhook with a bad signature: %+v", r)
		if r.status < 300 {
			byJob[r.jobID] = append(byJob[r.jobID], r)
		}
	}
	recv.mu.Lock()
	for id, n := range recv.seen {
		require.Equal(t, 1, n, "webhook-id %s was delivered %d times", id, n)
	}
	recv.mu.Unlock()
	for _, id := range ids {
		got := byJob[id]
		require.Len(t, got, 2, "job %s: one job.started and one job.succeeded delivered: %+v", id, got)
		require.Equal(t, webhook.EventJobStarted, got[0].typ, "job %s: started arrives first", id)
		require.Equal(t, webhook.EventJobSucceeded, got[1].typ, "job %s", id)
		require.Equal(t, job.StatusSucceeded, got[1].data.Status)
		require.Equal(t, len(js[id].Outputs), len(got[1].data.Outputs), "job %s: the event carries the outputs", id)
		require.Equal(t, js[id].Outputs[0].Key, got[1].data.Outputs[0].Key)
	}
	// Every job's delivery log says delivered.
	waitFor(t, 30*time.Second, "the delivery logs to say delivered", func() bool {
		for _, id := range ids {
			j, err := c.prod.Get(c.ctx, id)
			if err != nil || len(j.Webhooks) != 2 {
				return false
			}
			for _, d := range j.Webhooks {
				if d.DeliveredAt == nil || d.StatusCode != http.StatusNoContent {
					return false
				}
			}
		}
		return true
	}, nil)
	c.report(s, fmt.Sprintf("webhook_requests=%d answered_503=%d delivered=%d", len(reqs), refused, 2*len(ids)))
}
