package delivery_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/webhook"
	"github.com/comfyq/comfyq/webhook/delivery"
)

// received is one request a receiver got.
type received struct {
	ID, Timestamp, Signature, ContentType string
	Header                                http.Header
	Body                                  []byte
	Type                                  string // the body's "type"
	Status                                int    // what the receiver answered
}

// receiver is a real HTTP server on loopback that records every request and
// answers what answer says (204 by default).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []received
	answer   func(r received, n int) int // n: requests of this webhook-id before this one
	location string                      // Location of 3xx answers
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(rc)
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	got := received{
		ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"),
		Signature: r.Header.Get("webhook-signature"), ContentType: r.Header.Get("Content-Type"),
		Header: r.Header.Clone(), Body: body,
	}
	var ev struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(body, &ev)
	got.Type = ev.Type
	rc.mu.Lock()
	n := 0
	for _, g := range rc.got {
		if g.ID == got.ID {
			n++
		}
	}
	status := http.StatusNoContent
	if rc.answer != nil {
		status = rc.answer(got, n)
	}
	got.Status = status
	rc.got = append(rc.got, got)
	location := rc.location
	rc.mu.Unlock()
	if status >= 300 && status < 400 {
		w.Header().Set("Location", location)
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "answer %d\n", status)
}

func (rc *receiver) setAnswer(f func(r received, n int) int) {
	rc.mu.Lock()
	rc.answer = f
	rc.mu.Unlock()
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// delivered returns the requests answered 2xx, in arrival order.
func (rc *receiver) delivered() []received {
	var out []received
	for _, r := range rc.requests() {
		if r.Status >= 200 && r.Status <= 299 {
			out = append(out, r)
		}
	}
	return out
}

func types(rs []received) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Type
	}
	return out
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// deliveryBundle is what a delivery test needs: a private Redis, the job
// store, a Dispatcher and the configuration of its Deliverer, with fast
// retries.
type deliveryBundle struct {
	rdb       *redis.Client
	store     *jobstore.Store
	secret    webhook.Secret
	disp      *delivery.Dispatcher
	dispCfg   delivery.DispatcherConfig
	delivCfg  delivery.DelivererConfig
	inspector *asynq.Inspector
}

func setupDelivery(t *testing.T, subs ...delivery.Subscription) *deliveryBundle {
	t.Helper()
	opt, err := redis.ParseURL(testenv.NewRedis(t))
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	secret, err := webhook.ParseSecret(testSecret)
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	retry := delivery.RetryPolicy{Horizon: time.Minute, BaseDelay: 10 * time.Millisecond, MaxDelay: 40 * time.Millisecond}
	b := &deliveryBundle{
		rdb:    rdb,
		store:  jobstore.New(rdb, jobstore.Config{}),
		secret: secret,
		dispCfg: delivery.DispatcherConfig{
			Redis: rdb, Subscriptions: subs, Retry: retry, ProgressInterval: time.Hour, Logger: logger,
		},
		delivCfg: delivery.DelivererConfig{
			Redis: rdb, Secrets: []webhook.Secret{secret}, Subscriptions: subs,
			AllowPrivateURLs: true,
			AttemptTimeout:   5 * time.Second, Retry: retry,
			OrderingDelay: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond, Logger: logger,
		},
		inspector: asynq.NewInspectorFromRedisClient(rdb),
	}
	b.disp, err = delivery.NewDispatcher(b.dispCfg)
	require.NoError(t, err)
	return b
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startDeliverer runs a delivery server (as a comfyq process would) and
// returns a function that stops it and waits until it has stopped.
func (b *deliveryBundle) startDeliverer(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- delivery.RunServer(ctx, b.rdb, b.delivCfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

// newJob stores a queued job with the given delivery.
func (b *deliveryBundle) newJob(t *testing.T, hook *job.WebhookSpec) *job.Job {
	t.Helper()
	id, err := job.NewID()
	require.NoError(t, err)
	j := &job.Job{ID: id, Status: job.StatusQueued, Queue: "default", Attempt: 1, MaxAttempts: 4,
		CreatedAt: time.Now().UTC(), Webhook: hook, Metadata: map[string]any{"user": "42"}}
	_, _, err = b.store.Create(context.Background(), j, "")
	require.NoError(t, err)
	return j
}

// advance moves the job to status, as the worker does, and returns the record.
func (b *deliveryBundle) advance(t *testing.T, id string, status job.Status) *job.Job {
	t.Helper()
	j, err := b.store.Update(context.Background(), id, func(j *job.Job) error {
		now := time.Now().UTC()
		j.Status = status
		switch {
		case status == job.StatusRunning:
			j.StartedAt = &now
			j.Progress = &job.Progress{}
		case status.Terminal():
			j.FinishedAt = &now
			if status == job.StatusSucceeded {
				j.Outputs = []job.Output{{NodeID: "9", Kind: job.KindImage, Filename: "fox.png", URL: "https://cdn.example/fox.png"}}
			}
		}
		return nil
	})
	require.NoError(t, err)
	return j
}

func (b *deliveryBundle) dispatch(t *testing.T, event string, j *job.Job) []job.Delivery {
	t.Helper()
	ds, err := b.disp.Dispatch(context.Background(), event, j)
	require.NoError(t, err)
	return ds
}

// log returns the job's delivery log.
func (b *deliveryBundle) log(t *testing.T, id string) []job.Delivery {
	t.Helper()
	j, err := b.store.Get(context.Background(), id)
	require.NoError(t, err)
	return j.Webhooks
}

// entry returns the log entry of webhook-id id.
func (b *deliveryBundle) entry(t *testing.T, jobID, id string) job.Delivery {
	t.Helper()
	for _, d := range b.log(t, jobID) {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("no log entry %s in job %s", id, jobID)
	return job.Delivery{}
}

func (b *deliveryBundle) taskState(t *testing.T, id string) asynq.TaskState {
	t.Helper()
	info, err := b.inspector.GetTaskInfo(delivery.DefaultQueue, id)
	require.NoError(t, err)
	return info.State
}

// specVerify checks a message the way the Standard Webhooks specification
// describes it, independently of package webhook: the key is the base64
// after "whsec_"; the signature is base64(HMAC-SHA256(key,
// "{webhook-id}.{webhook-timestamp}.{body}")) in a space-separated list of
// "v1,<signature>"; the timestamp must be within five minutes.
func specVerify(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q: %w", ts, err)
	}
	if d := time.Since(time.Unix(unix, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s is %s off", ts, d)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		version, encoded, _ := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(encoded)
		if version == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching v1 signature")
}

func TestDelivery_signedAndInOrder(t *testing.T) {
	t.Parallel()
	b := setupDelivery(t)
	rc := newReceiver(t)
	b.startDeliverer(t)
	before := counterValue(t, metrics.WebhookDeliveries.WithLabelValues(webhook.EventJobSucceeded, metrics.WebhookSuccess))

	j := b.newJob(t, &job.WebhookSpec{URL: rc.URL + "/hooks/comfyq"})
	started := b.dispatch(t, webhook.EventJobStarted, b.advance(t, j.ID, job.StatusRunning))
	require.Len(t, started, 1)
	require.Empty(t, b.dispatch(t, webhook.EventJobProgress, j), "job.progress is opt-in")
	succeeded := b.dispatch(t, webhook.EventJobSucceeded, b.advance(t, j.ID, job.StatusSucceeded))
	require.Len(t, succeeded, 1)

	waitFor(t, "two deliveries", func() bool { return len(rc.delivered()) == 2 })
	got := rc.requests()
	require.Equal(t, []string{webhook.EventJobStarted, webhook.EventJobSucceeded}, types(got))
	verifier := webhook.Verifier{Secrets: []webhook.Secret{b.secret}}
	for i, r := range got {
		require.NoError(t, verifier.Verify(r.Header, r.Body), "webhook.Verifier")
		require.NoError(t, specVerify(testSecret, r.Header, r.Body), "verification written from the specification")
		require.Equal(t, "application/json", r.ContentType)
		require.Equal(t, []string{started[0].ID, succeeded[0].ID}[i], r.ID)
		require.True(t, strings.HasPrefix(r.ID, "msg_") && !strings.Contains(r.ID, "."), r.ID)

		ev, err := webhook.ParseEvent(r.Body)
		require.NoError(t, err)
		var data map[string]any
		require.NoError(t, json.Unmarshal(ev.Data, &data))
		require.Equal(t, j.ID, data["id"])
		require.Equal(t, map[string]any{"user": "42"}, data["metadata"])
		require.NotContains(t, data, "webhooks", "the delivery log is not part of the event")
		require.Equal(t, []string{"running", "succeeded"}[i], data["status"])
	}
	require.NotEqual(t, got[0].ID, got[1].ID)

	waitFor(t, "the delivery log", func() bool {
		log := b.log(t, j.ID)
		return len(log) == 2 && log[0].DeliveredAt != nil && log[1].DeliveredAt != nil
	})
	for _, d := range b.log(t, j.ID) {
		require.Equal(t, 1, d.Attempts)
		require.Equal(t, http.StatusNoContent, d.StatusCode)
		require.Empty(t, d.LastError)
		require.Equal(t, rc.URL+"/hooks/comfyq", d.URL)
		require.False(t, d.CreatedAt.IsZero())
	}
	waitFor(t, "the success counted", func() bool {
		return counterValue(t, metrics.WebhookDeliveries.WithLabelValues(webhook.EventJobSucceeded, metrics.WebhookSuccess)) >= before+1
	})
}

// A receiver that answers 503 for a while gets every event once it comes
// back, in order, with the same webhook-id on every attempt of a message;
// the delivery process is restarted in between and nothing is lost.
func TestDelivery_receiverDownThenBack_acrossRestart(t *testing.T) {
	t.Parallel()
	b := setupDelivery(t)
	rc := newReceiver(t)
	rc.setAnswer(func(received, int) int { return http.StatusServiceUnavailable })
	stop := b.startDeliverer(t)

	j := b.newJob(t, &job.WebhookSpec{URL: rc.URL})
	started := b.dispatch(t, webhook.EventJobStarted, b.advance(t, j.ID, job.StatusRunning))[0]
	succeeded := b.dispatch(t, webhook.EventJobSucceeded, b.advance(t, j.ID, job.StatusSucceeded))[0]

	waitFor(t, "three failed attempts", func() bool { return len(rc.requests()) >= 3 })
	stop() // the comfyq process that delivers webhooks goes away
	for _, r := range rc.requests() {
		require.Equal(t, started.ID, r.ID, "job.succeeded waits for job.started; every retry has the same id")
		require.Equal(t, http.StatusServiceUnavailable, r.Status)
	}
	waitFor(t, "the failures in the log", func() bool { return b.entry(t, j.ID, started.ID).Attempts >= 3 })
	require.Contains(t, b.entry(t, j.ID, started.ID).LastError, "503 Service Unavailable")

	rc.setAnswer(nil) // the receiver is back
	b.startDeliverer(t)
	waitFor(t, "both events delivered", func() bool { return len(rc.delivered()) == 2 })

	require.Equal(t, []string{webhook.EventJobStarted, webhook.EventJobSucceeded}, types(rc.delivered()))
	var bodies = map[string][]byte{}
	for _, r := range rc.requests() {
		if prev, ok := bodies[r.ID]; ok {
			require.Equal(t, string(prev), string(r.Body), "every attempt sends the same body")
		}
		bodies[r.ID] = r.Body
		require.NoError(t, specVerify(testSecret, r.Header, r.Body))
	}
	waitFor(t, "the log", func() bool { return b.entry(t, j.ID, succeeded.ID).DeliveredAt != nil })
	first := b.entry(t, j.ID, started.ID)
	require.NotNil(t, first.DeliveredAt)
	require.Greater(t, first.Attempts, 3)
	require.Empty(t, first.LastError)
	require.Equal(t, 1, b.entry(t, j.ID, succeeded.ID).Attempts)
	// Both tasks complete: no further attempt can come.
	waitFor(t, "the tasks completed", func() bool {
		return b.taskState(t, started.ID) == asynq.TaskStateCompleted && b.taskState(t, succeeded.ID) == asynq.TaskStateCompleted
	})
}

// A receiver that is not listening at all is retried until it listens.
func TestDelivery_receiverNotListening(t *testing.T) {
	t.Parallel()
	b := setupDelivery(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	b.startDeliverer(t)

	j := b.newJob(t, &job.WebhookSpec{URL: "http://" + addr + "/hook"})
	d := b.dispatch(t, webhook.EventJobFailed, b.advance(t, j.ID, job.StatusFailed))[0]
	waitFor(t, "two failed attempts", func() bool { return b.entry(t, j.ID, d.ID).Attempts >= 2 })
	require.Contains(t, b.entry(t, j.ID, d.ID).LastError, "connection refused")

	l, err = net.Listen("tcp", addr)
	require.NoError(t, err, "the port was taken meanwhile; run again")
	rc := &receiver{}
	rc.Server = httptest.NewUnstartedServer(rc)
	rc.Listener = l
	rc.Start()
	t.Cleanup(rc.Close)
	waitFor(t, "the delivery", func() bool { return len(rc.delivered()) == 1 })
	require.Equal(t, d.ID, rc.delivered()[0].ID)
	require.Equal(t, webhook.EventJobFailed, rc.delivered()[0].Type)
	waitFor(t, "the task completed", func() bool { return b.taskState(t, d.ID) == asynq.TaskStateCompleted })
}

// Order of occurrence holds when the first event's delivery fails and the
// second's would succeed at once.
func TestDelivery_orderOfOccurrence(t *testing.T) {
	t.Parallel()
	b := setupDelivery(t)
	rc := newReceiver(t)
	rc.setAnswer(func(r received, n int) int {
		if r.Type == webhook.EventJobStarted && n < 4 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	b.startDeliverer(t)

	j := b.newJob(t, &job.WebhookSpec{URL: rc.URL, Events: []string{webhook.EventJobStarted, webhook.EventJobProgress, webhook.EventJobCanceled}})
	b.dispatch(t, webhook.EventJobStarted, b.advance(t, j.ID, job.StatusRunning))
	require.Len(t, b.dispatch(t, webhook.EventJobProgress, j), 1)
	b.dispatch(t, webhook.EventJobCanceled, b.advance(t, j.ID, job.StatusCanceled))

	waitFor(t, "three deliveries", func() bool { return len(rc.delivered()) == 3 })
	got := rc.requests()
	require.Len(t, got, 7, "four failures, then one success per event")
	require.Equal(t, []string{
		webhook.EventJobStarted, webhook.EventJobStarted, webhook.EventJobStarted, webhook.EventJobStarted,
		webhook.EventJobStarted, webhook.EventJobProgress, webhook.EventJobCanceled,
	}, types(got))
}

func TestDelivery_goneStopsRetries(t *testing.T) {
	t.Parallel()
	b := setupDelivery(t)
	rc := newReceiver(t)
	rc.setAnswer(func(r received, _ int) int {
		if r.Type == webhook.EventJobStarted {
			return http.StatusGone
		}
		return http.StatusOK
	})
	b.startDeliverer(t)

	j := b.newJob(t, &job.WebhookSpec{URL: rc.URL})
	started := b.dispatch(t, webhook.EventJobStarted, b.advance(t, j.ID, job.StatusRunning))[0]
	b.dispatch(t, webhook.EventJobSucceeded, b.advance(t, j.ID, job.StatusSucceeded))

	// The next event goes once the first is given up.
	waitFor(t, "job.succeeded", func() bool { return len(rc.delivered()) == 1 })
	require.Equal(t, []string{webhook.EventJobStarted, webhook.EventJobSucceeded}, types(rc.requests()))
	e := b.entry(t, j.ID, started.ID)
	require.Equal(t, 1, e.Attempts)
	require.Equal(t, http.StatusGone, e.StatusCode)
	require.Nil(t, e.DeliveredAt)
	require.Contains(t, e.LastError, "410 Gone")
	require.Contains(t, e.LastError, "not retried")
	waitFor(t, "the task archived: no attempt is left", func() bool { return b.taskState(t, started.ID) == asynq.TaskStateArchived })
}

func TestDelivery_redirectNotFollowed(t *testing.T) {
	t.Parallel()
	b := setupDelivery(t)
	target := newReceiver(t)
	rc := newReceiver(t)
	rc.setAnswer(func(received, int) int { return http.StatusTemporaryRedirect })
	rc.mu.Lock()
	rc.location = target.URL + "/elsewhere"
	rc.mu.Unlock()
	b.startDeliverer(t)

	j := b.newJob(t, &job.WebhookSpec{URL: rc.URL})
	d := b.dispatch(t, webhook.EventJobSucceeded, b.advance(t, j.ID, job.StatusSucceeded))[0]
	waitFor(t, "two attempts", func() bool { return b.entry(t, j.ID, d.ID).Attempts >= 2 })
	e := b.entry(t, j.ID, d.ID)
	require.Equal(t, http.StatusTemporaryRedirect, e.StatusCode)
	require.Contains(t, e.LastError, "redirects are not followed")
	require.Empty(t, target.requests())
	for _, r := range rc.requests() {
		require.Equal(t, d.ID, r.ID)
	}
}

func TestDelivery_forbiddenDestinations(t *testing.T) {
	t.Parallel()
	b := setupDelivery(t)
	b.delivCfg.AllowPrivateURLs = false // the production default: no private addresses
	rc := newReceiver(t)
	b.startDeliverer(t)

	_, port, err := net.SplitHostPort(rc.Listener.Addr().String())
	require.NoError(t, err)
	for _, url := range []string{
		rc.URL + "/hook",                                   // loopback, listening
		"http://localhost:" + port + "/hook",               // a name for loopback
		"http://169.254.169.254/latest/meta-data/",         // cloud metadata
		"http://10.0.0.1/hook",                             // private
		"http://[::ffff:127.0.0.1]:" + port + "/ipv6-form", // loopback in IPv6 form
	} {
		j := b.newJob(t, &job.WebhookSpec{URL: url})
		d := b.dispatch(t, webhook.EventJobSucceeded, b.advance(t, j.ID, job.StatusSucceeded))[0]
		waitFor(t, "the refusal of "+url, func() bool { return b.entry(t, j.ID, d.ID).Attempts == 1 })
		e := b.entry(t, j.ID, d.ID)
		require.Contains(t, e.LastError, "destination refused", url)
		require.Contains(t, e.LastError, "COMFYQ_ALLOW_PRIVATE_URLS", url)
		require.Contains(t, e.LastError, "not retried", url)
		require.Zero(t, e.StatusCode, url)
		waitFor(t, "the task archived", func() bool { return b.taskState(t, d.ID) == asynq.TaskStateArchived })
	}
	require.Empty(t, rc.requests(), "a forbidden destination is never contacted")
}

// A delivery that fails past its horizon is given up, and the next event
// to the same destination goes.
func TestDelivery_givesUpAfterHorizon(t *testing.T) {
	t.Parallel()
	b := setupDelivery(t)
	b.delivCfg.Retry.Horizon = time.Nanosecond
	rc := newReceiver(t)
	rc.setAnswer(func(r received, _ int) int {
		if r.Type == webhook.EventJobStarted {
			return http.StatusBadGateway
		}
		return http.StatusAccepted
	})
	b.startDeliverer(t)

	j := b.newJob(t, &job.WebhookSpec{URL: rc.URL})
	started := b.dispatch(t, webhook.EventJobStarted, b.advance(t, j.ID, job.StatusRunning))[0]
	b.dispatch(t, webhook.EventJobFailed, b.advance(t, j.ID, job.StatusFailed))
	waitFor(t, "job.failed", func() bool { return len(rc.delivered()) == 1 })
	e := b.entry(t, j.ID, started.ID)
	require.Equal(t, 1, e.Attempts)
	require.Contains(t, e.LastError, "gave up after 1 attempts")
	require.Contains(t, e.LastError, "502 Bad Gateway: answer 502")
	waitFor(t, "the task archived", func() bool { return b.taskState(t, started.ID) == asynq.TaskStateArchived })
}

// An event reported twice (a worker that restarts) is delivered once; the
// next attempt's start is a new message.
func TestDispatch_repeatedEventOnce(t *testing.T) {
	t.Parallel()
	b := setupDelivery(t)
	rc := newReceiver(t)
	b.startDeliverer(t)

	j := b.newJob(t, &job.WebhookSpec{URL: rc.URL})
	running := b.advance(t, j.ID, job.StatusRunning)
	first := b.dispatch(t, webhook.EventJobStarted, running)
	require.Len(t, first, 1)
	require.Empty(t, b.dispatch(t, webhook.EventJobStarted, running), "enqueued already")
	waitFor(t, "job.started", func() bool { return len(rc.delivered()) == 1 })
	waitFor(t, "the log", func() bool { return b.entry(t, j.ID, first[0].ID).DeliveredAt != nil })
	again, err := b.store.Get(context.Background(), j.ID)
	require.NoError(t, err)
	require.Empty(t, b.dispatch(t, webhook.EventJobStarted, again), "delivered already")
	// Even a stale record, without the log entry, changes nothing.
	require.Empty(t, b.dispatch(t, webhook.EventJobStarted, running))
	e := b.entry(t, j.ID, first[0].ID)
	require.Equal(t, 1, e.Attempts, "the log entry is kept")
	require.NotNil(t, e.DeliveredAt)

	retry, err := b.store.Update(context.Background(), j.ID, func(j *job.Job) error { j.Attempt = 2; return nil })
	require.NoError(t, err)
	second := b.dispatch(t, webhook.EventJobStarted, retry)
	require.Len(t, second, 1)
	require.NotEqual(t, first[0].ID, second[0].ID)
	waitFor(t, "the second start", func() bool { return len(rc.delivered()) == 2 })
	require.Equal(t, []string{first[0].ID, second[0].ID}, []string{rc.requests()[0].ID, rc.requests()[1].ID})
}

func TestDispatch_filtersSubscriptionsAndProgress(t *testing.T) {
	t.Parallel()
	billing, audit, own := newReceiver(t), newReceiver(t), newReceiver(t)
	billingSecret, billingSecretText, err := webhook.NewSecret()
	require.NoError(t, err)
	b := setupDelivery(t,
		delivery.Subscription{Name: "billing", URL: billing.URL, Events: []string{webhook.EventJobSucceeded}, Secrets: []webhook.Secret{billingSecret}},
		delivery.Subscription{URL: audit.URL + "/audit", Events: []string{webhook.EventJobStarted, webhook.EventJobProgress}},
	)
	b.startDeliverer(t)

	j := b.newJob(t, &job.WebhookSpec{URL: own.URL, Events: []string{webhook.EventJobFailed}})
	running := b.advance(t, j.ID, job.StatusRunning)
	require.Len(t, b.dispatch(t, webhook.EventJobStarted, running), 1, "audit")
	require.Len(t, b.dispatch(t, webhook.EventJobProgress, running), 1, "audit asked for progress")
	require.Empty(t, b.dispatch(t, webhook.EventJobProgress, running), "at most one progress event per interval")
	require.Empty(t, b.dispatch(t, webhook.EventJobProgress, running))
	done := b.advance(t, j.ID, job.StatusSucceeded)
	require.Empty(t, b.dispatch(t, webhook.EventJobProgress, done), "no progress after the end")
	require.Len(t, b.dispatch(t, webhook.EventJobSucceeded, done), 1, "billing")

	waitFor(t, "audit's events", func() bool { return len(audit.delivered()) == 2 })
	waitFor(t, "billing's event", func() bool { return len(billing.delivered()) == 1 })
	require.Equal(t, []string{webhook.EventJobStarted, webhook.EventJobProgress}, types(audit.delivered()))
	for _, r := range audit.delivered() {
		require.NoError(t, specVerify(testSecret, r.Header, r.Body), "signed with the default secret")
	}
	r := billing.delivered()[0]
	require.NoError(t, specVerify(billingSecretText, r.Header, r.Body), "signed with the subscription's secret")
	require.Error(t, specVerify(testSecret, r.Header, r.Body))
	require.NoError(t, webhook.Verifier{Secrets: []webhook.Secret{billingSecret}}.Verify(r.Header, r.Body))
	require.Empty(t, own.requests(), "the job's own webhook wants job.failed only")
	require.Len(t, b.log(t, j.ID), 3)
}

func TestReplay(t *testing.T) {
	t.Parallel()
	b := setupDelivery(t)
	rc := newReceiver(t)
	b.startDeliverer(t)
	ctx := context.Background()

	j := b.newJob(t, &job.WebhookSpec{URL: rc.URL})
	_, err := b.disp.Replay(ctx, j)
	require.ErrorIs(t, err, delivery.ErrNotFinished)

	done := b.advance(t, j.ID, job.StatusSucceeded)
	orig := b.dispatch(t, webhook.EventJobSucceeded, done)[0]
	waitFor(t, "the event", func() bool { return len(rc.delivered()) == 1 })

	rec, err := b.store.Get(ctx, j.ID)
	require.NoError(t, err)
	replayed, err := b.disp.Replay(ctx, rec)
	require.NoError(t, err)
	require.Len(t, replayed, 1)
	require.NotEqual(t, orig.ID, replayed[0].ID, "a replay is a new message")
	require.Equal(t, webhook.EventJobSucceeded, replayed[0].Event)
	waitFor(t, "the replay", func() bool { return len(rc.delivered()) == 2 })
	got := rc.delivered()
	require.Equal(t, replayed[0].ID, got[1].ID)
	require.NoError(t, specVerify(testSecret, got[1].Header, got[1].Body))
	e0, err := webhook.ParseEvent(got[0].Body)
	require.NoError(t, err)
	e1, err := webhook.ParseEvent(got[1].Body)
	require.NoError(t, err)
	require.Equal(t, e0.Type, e1.Type)
	require.True(t, e0.Timestamp.Equal(e1.Timestamp), "the event's own time")
	require.JSONEq(t, string(e0.Data), string(e1.Data))
	waitFor(t, "the replay's log entry", func() bool { return b.entry(t, j.ID, replayed[0].ID).DeliveredAt != nil })

	other := b.newJob(t, &job.WebhookSpec{URL: rc.URL, Events: []string{webhook.EventJobStarted}})
	_, err = b.disp.Replay(ctx, b.advance(t, other.ID, job.StatusCanceled))
	require.ErrorIs(t, err, delivery.ErrNoSubscription)
}

func TestNewDeliverer_config(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never contacted
	t.Cleanup(func() { rdb.Close() })
	_, err := delivery.NewDeliverer(delivery.DelivererConfig{Redis: rdb})
	require.ErrorIs(t, err, delivery.ErrNoSecret)
	require.Contains(t, err.Error(), "COMFYQ_WEBHOOK_SECRET")

	secret, err := webhook.ParseSecret(testSecret)
	require.NoError(t, err)
	_, err = delivery.NewDeliverer(delivery.DelivererConfig{Redis: rdb, Secrets: []webhook.Secret{secret},
		Subscriptions: []delivery.Subscription{{URL: "ftp://x"}}})
	require.ErrorIs(t, err, delivery.ErrInvalidSubscription)
	_, err = delivery.NewDispatcher(delivery.DispatcherConfig{Redis: rdb,
		Subscriptions: []delivery.Subscription{{URL: "https://a.example"}, {URL: "https://a.example"}}})
	require.ErrorIs(t, err, delivery.ErrInvalidSubscription)
	_, err = delivery.NewDispatcher(delivery.DispatcherConfig{Redis: rdb,
		Subscriptions: []delivery.Subscription{{URL: "https://a.example", Events: []string{"job.exploded"}}}})
	require.ErrorIs(t, err, delivery.ErrInvalidSubscription)
	_, err = delivery.NewDispatcher(delivery.DispatcherConfig{})
	require.Error(t, err)
}
