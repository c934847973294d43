package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/internal/netguard"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/webhook"
)

// Defaults of DelivererConfig.
const (
	DefaultAttemptTimeout   = 10 * time.Second
	DefaultMaxResponseBytes = 4 << 10
	DefaultOrderingDelay    = time.Second
	DefaultConcurrency      = 10
	DefaultPollInterval     = time.Second
	DefaultUserAgent        = "comfyq-webhook/1"
)

// maxLogError bounds the last_error of a delivery log entry.
const maxLogError = 512

// ErrNoSecret is returned by NewDeliverer without a signing secret.
var ErrNoSecret = errors.New("webhook: no signing secret: set COMFYQ_WEBHOOK_SECRET to whsec_ and the base64 of 24 to 64 random bytes (e.g. whsec_$(openssl rand -base64 32))")

// DelivererConfig configures a Deliverer.
type DelivererConfig struct {
	// Redis holds the delivery tasks and their order. Required (RunServer
	// sets it).
	Redis redis.UniversalClient
	// Store records the delivery log in job records. Default
	// jobstore.New(Redis, jobstore.Config{}).
	Store *jobstore.Store
	// Secrets sign the messages of jobs' own webhooks and of subscriptions
	// without secrets of their own (COMFYQ_WEBHOOK_SECRET). Every message
	// carries one signature per secret: keep the old one here during a
	// rotation. Required.
	Secrets []webhook.Secret
	// Subscriptions are the global subscriptions, as given to the
	// Dispatcher; the Deliverer takes their secrets from here.
	Subscriptions []Subscription
	// AllowPrivateURLs lets destinations be loopback, private, link-local and
	// metadata addresses (COMFYQ_ALLOW_PRIVATE_URLS); by default they are
	// refused, before sending and at connect time. Redirects are never
	// followed.
	AllowPrivateURLs bool
	// AttemptTimeout bounds one attempt, connecting to reading the answer.
	// Default DefaultAttemptTimeout (10s).
	AttemptTimeout time.Duration
	// MaxResponseBytes is how much of a receiver's answer is read, for the
	// log. Default DefaultMaxResponseBytes (4 KiB).
	MaxResponseBytes int64
	// Retry is the retry policy; give the Dispatcher the same. Default: the
	// zero RetryPolicy (at least 24 hours).
	Retry RetryPolicy
	// OrderingDelay is how soon a message held back behind an earlier one of
	// the same job to the same destination looks again (or, when that one
	// waits for its own retry, how long after it). Default
	// DefaultOrderingDelay (1s).
	OrderingDelay time.Duration
	// Queue is the asynq queue of delivery tasks. Default DefaultQueue.
	Queue string
	// Concurrency is how many messages RunServer sends at once. Default
	// DefaultConcurrency (10).
	Concurrency int
	// PollInterval is how often RunServer's asynq server looks for due tasks
	// and retries (asynq's TaskCheckInterval and DelayedTaskCheckInterval).
	// Default DefaultPollInterval (1s).
	PollInterval time.Duration
	// UserAgent is sent with every message. Default DefaultUserAgent.
	UserAgent string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Deliverer is the asynq handler of comfyq:webhook tasks: it sends one
// message per attempt, signed, and records the outcome in the job's log.
type Deliverer struct {
	cfg     DelivererConfig
	rdb     redis.UniversalClient
	store   *jobstore.Store
	client  *http.Client
	policy  netguard.Policy
	signers map[string]webhook.Signer // by subscription name; "" = the default secrets
	order   predecessorCheck
	log     *slog.Logger
}

// NewDeliverer checks the configuration and returns a Deliverer. It does no
// network I/O.
func NewDeliverer(cfg DelivererConfig) (*Deliverer, error) {
	if cfg.Redis == nil {
		return nil, errors.New("webhook: deliverer: no Redis client")
	}
	if !hasSecret(cfg.Secrets) {
		return nil, ErrNoSecret
	}
	if err := validateSubscriptions(cfg.Subscriptions); err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		cfg.Store = jobstore.New(cfg.Redis, jobstore.Config{})
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	cfg.Retry = cfg.Retry.withDefaults()
	if cfg.OrderingDelay <= 0 {
		cfg.OrderingDelay = DefaultOrderingDelay
	}
	if cfg.Queue == "" {
		cfg.Queue = DefaultQueue
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	policy := netguard.Policy{AllowPrivate: cfg.AllowPrivateURLs, Timeout: cfg.AttemptTimeout}

	signers := map[string]webhook.Signer{"": {Secrets: cfg.Secrets}}
	for _, s := range cfg.Subscriptions {
		if hasSecret(s.Secrets) {
			signers[s.name()] = webhook.Signer{Secrets: s.Secrets}
		} else {
			signers[s.name()] = webhook.Signer{Secrets: cfg.Secrets}
		}
	}
	return &Deliverer{
		cfg:     cfg,
		rdb:     cfg.Redis,
		store:   cfg.Store,
		client:  policy.Client(),
		policy:  policy,
		signers: signers,
		order: predecessorCheck{
			rdb: cfg.Redis, inspector: asynq.NewInspectorFromRedisClient(cfg.Redis), queue: cfg.Queue,
			delay: cfg.OrderingDelay, maxDelay: cfg.Retry.MaxDelay,
		},
		log: cfg.Logger,
	}, nil
}

func hasSecret(secrets []webhook.Secret) bool {
	for _, s := range secrets {
		if !s.IsZero() {
			return true
		}
	}
	return false
}

// Register registers the Deliverer on mux for comfyq:webhook tasks. A
// server running it on its own mux needs the Deliverer's queue among its
// queues, and RetryDelayFunc and IsFailure in its config (see RunServer).
func (d *Deliverer) Register(mux *asynq.ServeMux) {
	mux.Handle(job.TypeWebhook, d)
}

// RetryDelayFunc returns asynq's Config.RetryDelayFunc for a server running
// the Deliverer: its retry policy for comfyq:webhook tasks, fallback (nil:
// asynq's default) for the others.
func (d *Deliverer) RetryDelayFunc(fallback asynq.RetryDelayFunc) asynq.RetryDelayFunc {
	return d.cfg.Retry.RetryDelayFunc(fallback)
}

// Queue returns the asynq queue the Deliverer's tasks are on.
func (d *Deliverer) Queue() string { return d.cfg.Queue }

// outcome is how one attempt ended.
type outcome struct {
	status    int    // HTTP status, 0 without an answer
	err       error  // why it is not delivered; nil when delivered
	permanent bool   // no retry may succeed
	answer    string // the start of the receiver's answer, for the log
}

// ProcessTask makes one delivery attempt. It implements asynq.Handler.
func (d *Deliverer) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := decodeTask(t.Payload())
	if err != nil {
		d.log.Error("webhook: dropping a delivery task", "err", err)
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	log := d.log.With("job_id", p.JobID, "event", p.Event, "webhook_id", p.ID, "url", redactURL(p.URL))

	// Order of occurrence: wait while an earlier message of this job to this
	// destination is still on its way. This attempt does not count.
	if err = d.order.check(ctx, p); err != nil {
		if errors.Is(err, ErrWaiting) {
			metrics.WebhookOrderingWaits.WithLabelValues(p.Event).Inc()
			log.Debug("webhook: held back behind an earlier message", "reason", err)
		}
		return err
	}

	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	if !ok {
		maxRetry = d.cfg.Retry.MaxRetry()
	}
	attempt := retried + 1
	now := time.Now()
	first, err := firstAttempt(ctx, d.rdb, p.ID, now, d.keyTTL())
	if err != nil {
		return err
	}

	out := d.send(ctx, p)
	del := job.Delivery{ID: p.ID, Event: p.Event, URL: redactURL(p.URL), Attempts: attempt, StatusCode: out.status, CreatedAt: p.CreatedAt.UTC()}
	if out.err == nil {
		delivered := time.Now().UTC()
		del.DeliveredAt = &delivered
		d.record(ctx, log, p, del)
		d.finish(ctx, log, p)
		metrics.WebhookDeliveries.WithLabelValues(p.Event, metrics.WebhookSuccess).Inc()
		log.Info("webhook: delivered", "status", out.status, "attempts", attempt)
		return nil
	}

	elapsed := time.Since(first)
	last := out.permanent || retried >= maxRetry || elapsed >= d.cfg.Retry.Horizon
	msg := out.err.Error()
	if out.answer != "" {
		msg += ": " + out.answer
	}
	switch {
	case out.permanent:
		msg += " (not retried)"
	case last:
		msg = fmt.Sprintf("gave up after %d attempts over %s: %s", attempt, elapsed.Round(time.Second), msg)
	}
	del.LastError = clip(msg, maxLogError)
	d.record(ctx, log, p, del)
	if last {
		d.finish(ctx, log, p)
		metrics.WebhookDeliveries.WithLabelValues(p.Event, metrics.WebhookGaveUp).Inc()
		log.Warn("webhook: delivery ended without success", "attempts", attempt, "status", out.status, "err", del.LastError)
		return fmt.Errorf("webhook: %s: %w", del.LastError, asynq.SkipRetry)
	}
	metrics.WebhookDeliveries.WithLabelValues(p.Event, metrics.WebhookRetry).Inc()
	log.Info("webhook: attempt failed; will retry", "attempt", attempt, "status", out.status, "err", del.LastError)
	return fmt.Errorf("webhook: attempt %d: %s", attempt, del.LastError)
}

func (d *Deliverer) keyTTL() time.Duration {
	return 2*d.cfg.Retry.Horizon + d.cfg.Retry.MaxDelay + DefaultRetention
}

// record writes the delivery log entry; a job record that has expired is
// not an error (the message is still delivered).
func (d *Deliverer) record(ctx context.Context, log *slog.Logger, p *taskPayload, del job.Delivery) {
	err := d.store.RecordDelivery(context.WithoutCancel(ctx), p.JobID, del)
	if err != nil && !errors.Is(err, job.ErrNotFound) {
		log.Warn("webhook: could not record the delivery in the job's log", "err", err)
	}
}

// finish lets the next message of the same order go.
func (d *Deliverer) finish(ctx context.Context, log *slog.Logger, p *taskPayload) {
	ctx = context.WithoutCancel(ctx)
	if err := release(ctx, d.rdb, p.OrderKey, p.ID); err != nil {
		log.Warn("webhook: could not release the next message", "err", err)
	}
	d.rdb.Del(ctx, firstKey(p.ID))
}

// send makes one HTTP attempt.
func (d *Deliverer) send(ctx context.Context, p *taskPayload) outcome {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.AttemptTimeout)
	defer cancel()
	// Check the destination again: the policy may have changed since the
	// submission, and a host name may resolve elsewhere now. The dialer
	// checks the address actually connected to as well.
	if err := d.policy.CheckURL(ctx, p.URL); err != nil {
		if errors.Is(err, netguard.ErrForbiddenAddress) || errors.Is(err, netguard.ErrInvalidURL) {
			return outcome{err: fmt.Errorf("destination refused: %w", err), permanent: true}
		}
		return outcome{err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(p.Body))
	if err != nil {
		return outcome{err: fmt.Errorf("destination refused: %w", redactErr(err)), permanent: true}
	}
	signer := d.signers[p.Subscription]
	if _, ok := d.signers[p.Subscription]; !ok {
		d.log.Warn("webhook: unknown subscription; signing with the default secrets (give every process the same subscriptions)", "subscription", p.Subscription)
		signer = d.signers[""]
	}
	for k, v := range signer.Headers(p.ID, time.Now(), p.Body) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.cfg.UserAgent)

	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		metrics.WebhookDeliveryDuration.WithLabelValues(p.Event).Observe(time.Since(start).Seconds())
		err = redactErr(err)
		if errors.Is(err, netguard.ErrForbiddenAddress) {
			return outcome{err: fmt.Errorf("destination refused: %w", err), permanent: true}
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return outcome{err: fmt.Errorf("no answer within %s", d.cfg.AttemptTimeout)}
		}
		return outcome{err: err}
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, d.cfg.MaxResponseBytes))
	resp.Body.Close()
	metrics.WebhookDeliveryDuration.WithLabelValues(p.Event).Observe(time.Since(start).Seconds())

	out := outcome{status: resp.StatusCode}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		return out
	case resp.StatusCode == http.StatusGone:
		out.err = errors.New("receiver answered 410 Gone: delivery stopped")
		out.permanent = true
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		out.err = fmt.Errorf("receiver answered %s; redirects are not followed (Location: %s)", resp.Status, redactURL(resp.Header.Get("Location")))
	default:
		out.err = fmt.Errorf("receiver answered %s", resp.Status)
	}
	out.answer = printable(answer, 200)
	return out
}

// redactErr hides a password in the URL of a *url.Error.
func redactErr(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		ue.URL = redactURL(ue.URL)
	}
	return err
}

// printable returns the start of a receiver's answer as one line of
// printable text, at most n runes.
func printable(b []byte, n int) string {
	var sb strings.Builder
	space := false
	for len(b) > 0 && n > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if r == utf8.RuneError || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			space = sb.Len() > 0
			continue
		}
		if space {
			sb.WriteByte(' ')
			n--
			space = false
		}
		sb.WriteRune(r)
		n--
	}
	if len(b) > 0 {
		sb.WriteString("…")
	}
	return sb.String()
}

// clip cuts s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// RunServer runs an asynq server that delivers webhooks from the
// Deliverer's queue until ctx ends, then shuts it down gracefully (messages
// being sent get AttemptTimeout to finish; the others stay queued for the
// next server). cfg.Redis defaults to rdb.
func RunServer(ctx context.Context, rdb redis.UniversalClient, cfg DelivererConfig) error {
	if cfg.Redis == nil {
		cfg.Redis = rdb
	}
	d, err := NewDeliverer(cfg)
	if err != nil {
		return err
	}
	srv := asynq.NewServerFromRedisClient(d.rdb, asynq.Config{
		Concurrency:              d.cfg.Concurrency,
		Queues:                   map[string]int{d.cfg.Queue: 1},
		TaskCheckInterval:        d.cfg.PollInterval,
		DelayedTaskCheckInterval: d.cfg.PollInterval,
		RetryDelayFunc:           d.RetryDelayFunc(nil),
		IsFailure:                IsFailure(nil),
		ShutdownTimeout:          d.cfg.AttemptTimeout + time.Second,
		Logger:                   asynqLogger{d.log},
		LogLevel:                 asynq.WarnLevel,
	})
	mux := asynq.NewServeMux()
	d.Register(mux)
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("webhook: start delivery server: %w", err)
	}
	d.log.Info("webhook: delivering", "queue", d.cfg.Queue, "concurrency", d.cfg.Concurrency)
	<-ctx.Done()
	srv.Shutdown()
	return nil
}

// asynqLogger adapts asynq's logger to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
