package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

const testWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestWebhookFlags(t *testing.T) {
	t.Setenv("COMFYQ_WEBHOOK_SECRET", testWebhookSecret)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // open does no I/O
	t.Cleanup(func() { rdb.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	var help bytes.Buffer
	fs.SetOutput(&help)
	o := addWebhookFlags(fs)
	fs.PrintDefaults()
	require.Contains(t, help.String(), "COMFYQ_WEBHOOK_SECRET")
	require.NotContains(t, help.String(), "MfKQ9r8", "help never shows the secret")

	require.NoError(t, fs.Parse([]string{"--webhook-subscriptions", `[{"url": "https://a.example/h", "events": ["job.succeeded"]}]`}))
	d, run, err := o.open(rdb, false, log)
	require.NoError(t, err)
	require.NotNil(t, d)
	require.NotNil(t, run)

	for _, args := range [][]string{
		{"--webhook-secret", "whsec_tooshort"},
		{"--webhook-subscriptions", `[{"url": "ftp://x"}]`},
		{"--webhook-concurrency", "0"},
	} {
		fs := flag.NewFlagSet("worker", flag.ContinueOnError)
		o := addWebhookFlags(fs)
		require.NoError(t, fs.Parse(args))
		_, _, err := o.open(rdb, false, log)
		var ue *usageError
		require.True(t, errors.As(err, &ue), "%v: %v", args, err)
	}
}

func TestWebhookFlags_noSecretEnqueuesOnly(t *testing.T) {
	t.Setenv("COMFYQ_WEBHOOK_SECRET", "")
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { rdb.Close() })
	var logs bytes.Buffer
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	o := addWebhookFlags(fs)
	require.NoError(t, fs.Parse(nil))
	d, run, err := o.open(rdb, false, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	require.NotNil(t, d, "deliveries are still enqueued")
	require.Contains(t, logs.String(), "set COMFYQ_WEBHOOK_SECRET")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, run(ctx))
}
