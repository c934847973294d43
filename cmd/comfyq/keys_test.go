package main

import (
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/testenv"
)

// TestKeysCommand creates, lists and revokes a key in Redis: the secret is printed
// once and never listed.
func TestKeysCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	redisURL := testenv.NewRedis(t)

	code, _, stderr := run(t, ctx, "keys", "create", "--tenant", "acme", "--redis", redisURL)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "name")
	code, _, stderr = run(t, ctx, "keys", "create", "--name", "x", "--tenant", "acme", "--queues", "comfyq_webhooks", "--redis", redisURL)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "reserved")

	code, out, stderr := run(t, ctx, "keys", "create", "--name", "checkout", "--tenant", "acme", "--queues", "default,batch",
		"--max-in-flight", "10", "--rate", "2.5", "--redis", redisURL)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	m := regexp.MustCompile(`secret: (cq_[A-Za-z0-9_-]{43})`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	id := regexp.MustCompile(`key (key_[0-9a-f]{16})`).FindStringSubmatch(out)
	require.NotNil(t, id, out)

	code, out, _ = run(t, ctx, "keys", "list", "--redis", redisURL)
	require.Equal(t, 0, code)
	require.Contains(t, out, id[1])
	require.Contains(t, out, "default,batch")
	require.Contains(t, out, "2.5")
	require.NotContains(t, out, m[1], "the secret is never listed")
	require.Contains(t, out, m[1][:7], "its first characters are")

	code, out, _ = run(t, ctx, "keys", "revoke", id[1], "--redis", redisURL)
	require.Equal(t, 0, code)
	require.Contains(t, out, "revoked")
	code, _, stderr = run(t, ctx, "keys", "revoke", id[1], "--redis", redisURL)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no managed key")

	// By name: one key of that name is revoked; two are refused, naming their IDs.
	code, _, stderr = run(t, ctx, "keys", "create", "--name", "batch", "--tenant", "acme", "--redis", redisURL)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	code, out, _ = run(t, ctx, "keys", "revoke", "batch", "--redis", redisURL)
	require.Equal(t, 0, code)
	require.Contains(t, out, "revoked")
	for range 2 {
		code, _, stderr = run(t, ctx, "keys", "create", "--name", "twin", "--tenant", "acme", "--redis", redisURL)
		require.Equal(t, 0, code, "stderr: %s", stderr)
	}
	code, _, stderr = run(t, ctx, "keys", "revoke", "twin", "--redis", redisURL)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "2 managed keys are named")
	code, _, stderr = run(t, ctx, "keys", "revoke", "nobody", "--redis", redisURL)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no managed key named")

	code, _, _ = run(t, ctx, "keys", "--help")
	require.Equal(t, 0, code)
}
