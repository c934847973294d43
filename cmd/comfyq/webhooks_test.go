package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v3"
)

const testWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// parseWebhookFlags parses args as a command with the webhook flags would.
func parseWebhookFlags(t *testing.T, args ...string) (*webhookOptions, string) {
	t.Helper()
	o := &webhookOptions{}
	var help bytes.Buffer
	cmd := &cli.Command{Name: "worker", Flags: o.flags(), Writer: &help,
		Action: func(context.Context, *cli.Command) error { return nil }}
	require.NoError(t, cmd.Run(context.Background(), append([]string{"worker"}, args...)))
	return o, help.String()
}

func TestWebhookFlags(t *testing.T) {
	t.Setenv("COMFYQ_WEBHOOK_SECRET", testWebhookSecret)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // open does no I/O
	t.Cleanup(func() { rdb.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	_, help := parseWebhookFlags(t, "--help")
	require.Contains(t, help, "COMFYQ_WEBHOOK_SECRET")
	require.NotContains(t, help, "MfKQ9r8", "help never shows the secret")

	o, _ := parseWebhookFlags(t, "--webhook-subscriptions", `[{"url": "https://a.example/h", "events": ["job.succeeded"]}]`)
	require.Equal(t, testWebhookSecret, o.Secrets, "the secret comes from the environment")
	require.NoError(t, o.Validate())
	d, run, err := o.open(rdb, false, log)
	require.NoError(t, err)
	require.NotNil(t, d)
	require.NotNil(t, run)

	for _, args := range [][]string{
		{"--webhook-secret", "whsec_tooshort"},
		{"--webhook-subscriptions", `[{"url": "ftp://x"}]`},
		{"--webhook-concurrency", "0"},
	} {
		o, _ := parseWebhookFlags(t, args...)
		var ue *usageError
		require.True(t, errors.As(o.Validate(), &ue), "%v is refused at start", args)
	}
	for _, args := range [][]string{
		{"--webhook-secret", "whsec_tooshort"},
		{"--webhook-subscriptions", `[{"url": "ftp://x"}]`},
	} {
		o, _ := parseWebhookFlags(t, args...)
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
	o, _ := parseWebhookFlags(t)
	require.NoError(t, o.Validate())
	d, run, err := o.open(rdb, false, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	require.NotNil(t, d, "deliveries are still enqueued")
	require.Contains(t, logs.String(), "set COMFYQ_WEBHOOK_SECRET")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, run(ctx))
}
