package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/webhook"
)

// Defaults of DispatcherConfig.
const (
	DefaultProgressInterval = 2 * time.Second
	DefaultRetention        = 24 * time.Hour
)

// Errors of Replay.
var (
	// ErrNotFinished: only a finished job's terminal event is replayed.
	ErrNotFinished = errors.New("webhook: the job has not finished; only its terminal event can be replayed")
	// ErrNoSubscription: no webhook of the job, nor any global subscription,
	// receives the event.
	ErrNoSubscription = errors.New("webhook: no webhook subscribed to the event")
)

// DispatcherConfig configures a Dispatcher.
type DispatcherConfig struct {
	// Redis holds the delivery tasks and their order. Required.
	Redis redis.UniversalClient
	// Store records the delivery log in job records. Default
	// jobstore.New(Redis, jobstore.Config{}).
	Store *jobstore.Store
	// Subscriptions are the global subscriptions: they receive the events of
	// every job, besides the job's own webhook. Give the Deliverer the same.
	Subscriptions []Subscription
	// Queue is the asynq queue of delivery tasks. Default DefaultQueue
	// ("comfyq_webhooks").
	Queue string
	// Retry sets each task's MaxRetry (RetryPolicy.MaxRetry). Give the
	// Deliverer the same policy. Default: the zero RetryPolicy (24 hours).
	Retry RetryPolicy
	// ProgressInterval is the least time between two job.progress events of
	// one job; the events in between are dropped. Default
	// DefaultProgressInterval (2s).
	ProgressInterval time.Duration
	// Retention keeps a finished delivery task in Redis for this long, so
	// that the same event reported again (a worker that restarts) is not sent
	// twice. Default DefaultRetention (24h).
	Retention time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Dispatcher turns job events into delivery tasks: one asynq task of type
// comfyq:webhook per event and destination. It implements the Notifier
// interfaces of packages worker and producer.
type Dispatcher struct {
	cfg       DispatcherConfig
	rdb       redis.UniversalClient
	store     *jobstore.Store
	client    *asynq.Client
	inspector *asynq.Inspector
	log       *slog.Logger
}

// NewDispatcher checks the configuration and returns a Dispatcher. It does
// no network I/O.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if cfg.Redis == nil {
		return nil, errors.New("webhook: dispatcher: no Redis client")
	}
	if err := validateSubscriptions(cfg.Subscriptions); err != nil {
		return nil, err
	}
	cfg.Subscriptions = slices.Clone(cfg.Subscriptions)
	if cfg.Store == nil {
		cfg.Store = jobstore.New(cfg.Redis, jobstore.Config{})
	}
	if cfg.Queue == "" {
		cfg.Queue = DefaultQueue
	}
	cfg.Retry = cfg.Retry.withDefaults()
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Dispatcher{
		cfg:       cfg,
		rdb:       cfg.Redis,
		store:     cfg.Store,
		client:    asynq.NewClientFromRedisClient(cfg.Redis),
		inspector: asynq.NewInspectorFromRedisClient(cfg.Redis),
		log:       cfg.Logger,
	}, nil
}

// destination is one receiver of an event.
type destination struct {
	url          string
	subscription string // "" for the job's own webhook
}

// destinations lists the receivers that want event for job j: the job's own
// webhook, then the global subscriptions.
func (d *Dispatcher) destinations(event string, j *job.Job) []destination {
	var out []destination
	if j.Webhook != nil && j.Webhook.URL != "" && wants(j.Webhook.Events, event) {
		out = append(out, destination{url: j.Webhook.URL})
	}
	for _, s := range d.cfg.Subscriptions {
		if s.Wants(event) {
			out = append(out, destination{url: s.URL, subscription: s.name()})
		}
	}
	return out
}

// Notify enqueues the deliveries of one job event (job.started,
// job.progress, job.succeeded, job.failed, job.canceled) to every
// destination that wants it. It implements worker.Notifier and
// producer.Notifier; errors are logged, as the caller has no use for them
// (Dispatch returns them).
func (d *Dispatcher) Notify(ctx context.Context, event string, j *job.Job) {
	if _, err := d.Dispatch(ctx, event, j); err != nil {
		d.log.Error("webhook: could not enqueue deliveries", "job_id", jobID(j), "event", event, "err", err)
	}
}

func jobID(j *job.Job) string {
	if j == nil {
		return ""
	}
	return j.ID
}

// Dispatch is Notify returning what it did: the deliveries it enqueued (an
// event reported twice is enqueued once, so a repeat returns none) and the
// first error met. j is the job record at the time of the event; its JSON,
// without the delivery log, is the event's data.
//
// job.progress events go only to destinations that list job.progress, at
// most one per job per ProgressInterval (across all processes); they are
// dropped once the job has ended.
func (d *Dispatcher) Dispatch(ctx context.Context, event string, j *job.Job) ([]job.Delivery, error) {
	if j == nil || !job.ValidID(j.ID) {
		return nil, fmt.Errorf("webhook: dispatch %s: no valid job", event)
	}
	if !webhook.ValidEventType(event) {
		return nil, fmt.Errorf("webhook: dispatch: unknown event %q", event)
	}
	dests := d.destinations(event, j)
	if len(dests) == 0 {
		return nil, nil
	}
	extra := ""
	if event == webhook.EventJobProgress {
		if j.Status.Terminal() {
			return nil, nil
		}
		ok, err := d.rdb.SetNX(ctx, progressKey(j.ID), 1, d.cfg.ProgressInterval).Result()
		if err != nil {
			return nil, fmt.Errorf("webhook: rate-limit progress: %w", err)
		}
		if !ok {
			return nil, nil
		}
		extra = nonce() // every progress event is a new message
	}
	body, err := eventBody(event, eventTime(event, j), j)
	if err != nil {
		return nil, err
	}
	return d.enqueue(ctx, event, j, dests, body, extra, false)
}

// eventTime is when event happened: the record's own time for a terminal
// event (so that a replay carries the same timestamp), else now.
func eventTime(event string, j *job.Job) time.Time {
	switch event {
	case webhook.EventJobSucceeded, webhook.EventJobFailed, webhook.EventJobCanceled:
		if j.FinishedAt != nil {
			return *j.FinishedAt
		}
	}
	return time.Now()
}

// eventBody encodes the webhook body of event: the Job JSON without its
// delivery log (which is about the webhooks themselves and changes while
// they are sent) and without the node's URL, an internal address the
// receiver (often the submitter's own service) has no use for: node_name
// names the node.
func eventBody(event string, at time.Time, j *job.Job) ([]byte, error) {
	data := *j
	data.Webhooks = nil
	data.Node = ""
	ev, err := webhook.NewEvent(event, at, &data)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("webhook: encode event: %w", err)
	}
	return body, nil
}

// enqueue makes one delivery task per destination.
func (d *Dispatcher) enqueue(ctx context.Context, event string, j *job.Job, dests []destination, body []byte, extra string, replay bool) ([]job.Delivery, error) {
	var out []job.Delivery
	var errs []error
	for _, dest := range dests {
		del, err := d.enqueueOne(ctx, event, j, dest, body, extra, replay)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", redactURL(dest.url), err))
			continue
		}
		if del != nil {
			out = append(out, *del)
		}
	}
	return out, errors.Join(errs...)
}

// keyTTL is how long the ordering keys of a (job, destination) pair outlive
// its last message.
func (d *Dispatcher) keyTTL() time.Duration {
	return 2*d.cfg.Retry.Horizon + d.cfg.Retry.MaxDelay + d.cfg.Retention
}

func (d *Dispatcher) enqueueOne(ctx context.Context, event string, j *job.Job, dest destination, body []byte, extra string, replay bool) (*job.Delivery, error) {
	id := messageID(j.ID, event, j.Attempt, dest.subscription, dest.url, extra)
	// An event reported again whose task exists (pending, retrying, or
	// finished and retained) is not enqueued twice, and its log entry is
	// left alone.
	if _, err := d.inspector.GetTaskInfo(d.cfg.Queue, id); err == nil {
		d.log.Debug("webhook: event already enqueued", "job_id", j.ID, "event", event, "webhook_id", id)
		return nil, nil
	} else if !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		return nil, fmt.Errorf("webhook: look up task: %w", err)
	}
	ok := orderKey(j.ID, dest.subscription, dest.url)
	seq, added, err := reserve(ctx, d.rdb, ok, id, d.keyTTL())
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	del := job.Delivery{ID: id, Event: event, URL: redactURL(dest.url), CreatedAt: now}
	// Log the delivery before its task exists, so that this entry (0
	// attempts) can never overwrite the entry of a first attempt. An entry
	// already in the record means the event was reported before: leave it.
	logged := !added || slices.ContainsFunc(j.Webhooks, func(w job.Delivery) bool { return w.ID == id })
	if !logged {
		if recErr := d.store.RecordDelivery(ctx, j.ID, del); recErr != nil && !errors.Is(recErr, job.ErrNotFound) {
			if added {
				_ = release(context.WithoutCancel(ctx), d.rdb, ok, id)
			}
			return nil, fmt.Errorf("webhook: record delivery: %w", recErr)
		}
	}
	payload, err := encodeTask(&taskPayload{
		ID: id, JobID: j.ID, Event: event, URL: dest.url, Subscription: dest.subscription,
		OrderKey: ok, Seq: seq, Body: body, CreatedAt: now, Replay: replay,
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: encode task: %w", err)
	}
	_, err = d.client.EnqueueContext(ctx, asynq.NewTask(job.TypeWebhook, payload),
		asynq.TaskID(id), asynq.Queue(d.cfg.Queue), asynq.MaxRetry(d.cfg.Retry.MaxRetry()),
		asynq.Retention(d.cfg.Retention))
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict):
		// Reported before and enqueued then: nothing to do. A place reserved
		// just now belongs to no task (the first one's is kept or released).
		if added {
			_ = release(context.WithoutCancel(ctx), d.rdb, ok, id)
		}
		d.log.Debug("webhook: event already enqueued", "job_id", j.ID, "event", event, "webhook_id", id)
		return nil, nil
	case err != nil:
		if added {
			_ = release(context.WithoutCancel(ctx), d.rdb, ok, id)
		}
		return nil, fmt.Errorf("webhook: enqueue: %w", err)
	}
	metrics.WebhookEnqueued.WithLabelValues(event).Inc()
	d.log.Debug("webhook: delivery enqueued", "job_id", j.ID, "event", event, "webhook_id", id, "seq", seq)
	return &del, nil
}

// Replay sends the terminal event of a finished job (job.succeeded,
// job.failed or job.canceled) again, to every destination that wants it
// now: the job's own webhook and the global subscriptions. Each is a new
// message, with a new webhook-id, delivered like any other (signed anew,
// retried, after the job's earlier messages to the same destination); its
// body is the event with its original timestamp and the job's current
// record as data. The returned deliveries are also in the job's log.
//
// Only the terminal event is replayed: it carries the job's final state,
// which is what a receiver that missed messages needs, and earlier events'
// bodies are not kept once delivered. A job that has not finished gets
// ErrNotFinished; one whose event nobody receives, ErrNoSubscription.
func (d *Dispatcher) Replay(ctx context.Context, j *job.Job) ([]job.Delivery, error) {
	if j == nil || !job.ValidID(j.ID) {
		return nil, errors.New("webhook: replay: no valid job")
	}
	var event string
	switch j.Status {
	case job.StatusSucceeded:
		event = webhook.EventJobSucceeded
	case job.StatusFailed:
		event = webhook.EventJobFailed
	case job.StatusCanceled:
		event = webhook.EventJobCanceled
	default:
		return nil, fmt.Errorf("%w (status %s)", ErrNotFinished, j.Status)
	}
	dests := d.destinations(event, j)
	if len(dests) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoSubscription, event)
	}
	body, err := eventBody(event, eventTime(event, j), j)
	if err != nil {
		return nil, err
	}
	out, err := d.enqueue(ctx, event, j, dests, body, "replay:"+nonce(), true)
	if err != nil && len(out) == 0 {
		return nil, err
	}
	return out, err
}
