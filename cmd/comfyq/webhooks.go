package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/comfyq/comfyq/webhook/delivery"
	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v3"
)

// webhookOptions are the webhook flags of the commands whose processes see job
// events (api, worker, dev): they enqueue deliveries and, unless
// --webhook-deliver=false, send them.
type webhookOptions struct {
	Secrets       string // never printed: the flag shows no default
	Subscriptions string
	Queue         string
	Horizon       time.Duration
	Timeout       time.Duration
	Concurrency   int
	Deliver       bool
}

func (o *webhookOptions) flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "webhook-secret", Sources: cli.EnvVars("COMFYQ_WEBHOOK_SECRET"), Destination: &o.Secrets,
			Usage: "webhook signing secret(s): whsec_…, comma-separated during a rotation"},
		stringFlag(&o.Subscriptions, "webhook-subscriptions", "COMFYQ_WEBHOOK_SUBSCRIPTIONS", "",
			`global webhook subscriptions: a JSON array of {"url","events","secret","name"}, or @FILE`),
		stringFlag(&o.Queue, "webhook-queue", "COMFYQ_WEBHOOK_QUEUE", delivery.DefaultQueue, "asynq queue of webhook deliveries"),
		durationFlag(&o.Horizon, "webhook-horizon", "COMFYQ_WEBHOOK_HORIZON", delivery.DefaultHorizon, "how long a failing webhook delivery is retried"),
		durationFlag(&o.Timeout, "webhook-timeout", "COMFYQ_WEBHOOK_TIMEOUT", delivery.DefaultAttemptTimeout, "timeout of one webhook delivery attempt"),
		intFlag(&o.Concurrency, "webhook-concurrency", "COMFYQ_WEBHOOK_CONCURRENCY", delivery.DefaultConcurrency, "webhook messages sent at once by this process"),
		boolFlag(&o.Deliver, "webhook-deliver", "COMFYQ_WEBHOOK_DELIVER", true, "send webhook deliveries from this process (any process with the secret may); on unless --webhook-deliver=false"),
	}
}

// Validate checks what needs no Redis: the secrets, the subscriptions, the numbers.
func (o *webhookOptions) Validate() error {
	if _, err := delivery.ParseSecrets(o.Secrets); err != nil {
		return usagef("--webhook-secret: %v", err)
	}
	if _, err := delivery.ParseSubscriptions(o.Subscriptions); err != nil {
		return usagef("--webhook-subscriptions: %v", err)
	}
	if o.Concurrency <= 0 {
		return usagef("--webhook-concurrency must be positive")
	}
	return nil
}

// open parses the webhook flags. It returns the Dispatcher, to give the worker
// and the producer as their Notifier, and a function that sends deliveries
// until ctx ends. Without a secret, or with --webhook-deliver=false, that
// function only waits for ctx: deliveries are still enqueued (nothing is lost)
// and sent by a process that has the secret.
func (o *webhookOptions) open(rdb redis.UniversalClient, allowPrivate bool, log *slog.Logger) (*delivery.Dispatcher, func(context.Context) error, error) {
	secrets, err := delivery.ParseSecrets(o.Secrets)
	if err != nil {
		return nil, nil, usagef("--webhook-secret: %v", err)
	}
	subs, err := delivery.ParseSubscriptions(o.Subscriptions)
	if err != nil {
		return nil, nil, usagef("--webhook-subscriptions: %v", err)
	}
	retry := delivery.RetryPolicy{Horizon: o.Horizon}
	d, err := delivery.NewDispatcher(delivery.DispatcherConfig{
		Redis: rdb, Subscriptions: subs, Queue: o.Queue, Retry: retry, Logger: log,
	})
	if err != nil {
		return nil, nil, err
	}
	wait := func(ctx context.Context) error { <-ctx.Done(); return nil }
	if !o.Deliver {
		return d, wait, nil
	}
	if len(secrets) == 0 {
		log.Warn("webhooks are enqueued but not sent: set COMFYQ_WEBHOOK_SECRET (whsec_…) to send them")
		return d, wait, nil
	}
	cfg := delivery.DelivererConfig{
		Redis: rdb, Secrets: secrets, Subscriptions: subs, Queue: o.Queue, Retry: retry,
		AllowPrivateURLs: allowPrivate,
		AttemptTimeout:   o.Timeout, Concurrency: o.Concurrency, Logger: log,
	}
	if _, err := delivery.NewDeliverer(cfg); err != nil { // check the configuration now
		return nil, nil, err
	}
	return d, func(ctx context.Context) error { return delivery.RunServer(ctx, rdb, cfg) }, nil
}

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
