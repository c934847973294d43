package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/webhook/delivery"
)

// webhookOptions are the webhook flags of the commands whose processes see job
// events (api, worker, dev): they enqueue deliveries and, unless
// --webhook-deliver=false, send them.
type webhookOptions struct {
	secrets       *secretFlag
	subscriptions *string
	queue         *string
	horizon       *time.Duration
	timeout       *time.Duration
	concurrency   *int
	deliver       *bool
}

// addWebhookFlags defines the webhook flags on fs.
func addWebhookFlags(fs *flag.FlagSet) *webhookOptions {
	o := &webhookOptions{secrets: &secretFlag{}}
	if v, ok := os.LookupEnv("COMFYQ_WEBHOOK_SECRET"); ok {
		o.secrets.value = v
	}
	fs.Var(o.secrets, "webhook-secret", "webhook signing secret(s): whsec_…, comma-separated during a rotation (env COMFYQ_WEBHOOK_SECRET)")
	o.subscriptions = envString(fs, "webhook-subscriptions", "COMFYQ_WEBHOOK_SUBSCRIPTIONS", "",
		`global webhook subscriptions: a JSON array of {"url","events","secret","name"}, or @FILE`)
	o.queue = envString(fs, "webhook-queue", "COMFYQ_WEBHOOK_QUEUE", delivery.DefaultQueue, "asynq queue of webhook deliveries")
	o.horizon = envDuration(fs, "webhook-horizon", "COMFYQ_WEBHOOK_HORIZON", delivery.DefaultHorizon, "how long a failing webhook delivery is retried")
	o.timeout = envDuration(fs, "webhook-timeout", "COMFYQ_WEBHOOK_TIMEOUT", delivery.DefaultAttemptTimeout, "timeout of one webhook delivery attempt")
	o.concurrency = envInt(fs, "webhook-concurrency", "COMFYQ_WEBHOOK_CONCURRENCY", delivery.DefaultConcurrency, "webhook messages sent at once by this process")
	o.deliver = envBool(fs, "webhook-deliver", "COMFYQ_WEBHOOK_DELIVER", true, "send webhook deliveries from this process (any process with the secret may)")
	return o
}

// open parses the webhook flags. It returns the Dispatcher, to give the worker
// and the producer as their Notifier, and a function that sends deliveries
// until ctx ends. Without a secret, or with --webhook-deliver=false, that
// function only waits for ctx: deliveries are still enqueued (nothing is lost)
// and sent by a process that has the secret.
func (o *webhookOptions) open(rdb redis.UniversalClient, allowPrivate bool, log *slog.Logger) (*delivery.Dispatcher, func(context.Context) error, error) {
	secrets, err := delivery.ParseSecrets(o.secrets.value)
	if err != nil {
		return nil, nil, usagef("--webhook-secret: %v", err)
	}
	subs, err := delivery.ParseSubscriptions(*o.subscriptions)
	if err != nil {
		return nil, nil, usagef("--webhook-subscriptions: %v", err)
	}
	if *o.concurrency <= 0 {
		return nil, nil, usagef("--webhook-concurrency must be positive")
	}
	retry := delivery.RetryPolicy{Horizon: *o.horizon}
	d, err := delivery.NewDispatcher(delivery.DispatcherConfig{
		Redis: rdb, Subscriptions: subs, Queue: *o.queue, Retry: retry, Logger: log,
	})
	if err != nil {
		return nil, nil, err
	}
	wait := func(ctx context.Context) error { <-ctx.Done(); return nil }
	if !*o.deliver {
		return d, wait, nil
	}
	if len(secrets) == 0 {
		log.Warn("webhooks are enqueued but not sent: set COMFYQ_WEBHOOK_SECRET (whsec_…) to send them")
		return d, wait, nil
	}
	cfg := delivery.DelivererConfig{
		Redis: rdb, Secrets: secrets, Subscriptions: subs, Queue: *o.queue, Retry: retry,
		AllowPrivateURLs: allowPrivate,
		AttemptTimeout:   *o.timeout, Concurrency: *o.concurrency, Logger: log,
	}
	if _, err := delivery.NewDeliverer(cfg); err != nil { // check the configuration now
		return nil, nil, err
	}
	return d, func(ctx context.Context) error { return delivery.RunServer(ctx, rdb, cfg) }, nil
}

// secretFlag holds secrets; it never prints them (help shows no default).
type secretFlag struct{ value string }

func (s *secretFlag) String() string     { return "" }
func (s *secretFlag) Set(v string) error { s.value = v; return nil }

// withWebhooks runs the webhook delivery server beside run, until both end (the server
// ends with ctx), and returns run's error, else the server's.
func withWebhooks(ctx context.Context, runWebhooks func(context.Context) error, run func() error) error {
	done := make(chan error, 1)
	go func() { done <- runWebhooks(ctx) }()
	err := run()
	if werr := <-done; err == nil {
		err = werr
	}
	return err
}
