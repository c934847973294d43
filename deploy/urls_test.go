package deploy_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/seal"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage/file"
	"github.com/comfyq/comfyq/storage/s3"
	"github.com/comfyq/comfyq/webhook"
)

// checkURLs checks the values of the variables comfyq parses as URLs or secrets the
// way comfyq parses them: the Redis URL (asynq's forms), the storage URL (unknown
// options are errors), the webhook secret and the seal key.
func checkURLs(t *testing.T, where string, env map[string]string) {
	t.Helper()
	if v, ok := env["COMFYQ_REDIS_URL"]; ok {
		checkRedisURL(t, where, v)
	}
	if v, ok := env["COMFYQ_STORAGE_URL"]; ok {
		checkStorageURL(t, where, v)
	}
	if v := env["COMFYQ_WEBHOOK_SECRET"]; v != "" && !placeholder(v) {
		_, err := webhook.ParseSecret(v)
		require.NoError(t, err, "%s: COMFYQ_WEBHOOK_SECRET", where)
	}
	if v := env["COMFYQ_SEAL_KEY"]; v != "" && !placeholder(v) {
		_, err := seal.ParseKey(v)
		require.NoError(t, err, "%s: COMFYQ_SEAL_KEY", where)
	}
}

func checkRedisURL(t *testing.T, where, raw string) {
	t.Helper()
	rdb, err := producer.OpenRedis(raw) // connects lazily: nothing is dialled here
	require.NoError(t, err, "%s: Redis URL %q", where, raw)
	require.NoError(t, rdb.Close())
}

func checkStorageURL(t *testing.T, where, raw string) {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err, "%s: storage URL %q", where, raw)
	switch u.Scheme {
	case "s3":
		_, err = s3.ConfigFromURL(u)
	case "file":
		_, err = file.ConfigFromURL(u)
	default:
		t.Fatalf("%s: storage URL %q: scheme must be s3 or file", where, raw)
	}
	require.NoError(t, err, "%s: storage URL %q", where, raw)
}

// placeholder says whether a value is an example to replace.
func placeholder(v string) bool {
	return strings.Contains(v, "CHANGE-ME")
}

// TestRedisURLForms pins what docs/deploy.md says about asynq's Redis URLs, which
// comfyq accepts as they are.
func TestRedisURLForms(t *testing.T) {
	t.Parallel()
	opt, err := asynq.ParseRedisURI("rediss://:secret@redis.example.com:6380/2")
	require.NoError(t, err)
	c, ok := opt.(asynq.RedisClientOpt)
	require.True(t, ok)
	require.Equal(t, "redis.example.com:6380", c.Addr)
	require.Equal(t, "secret", c.Password)
	require.Equal(t, 2, c.DB)
	require.NotNil(t, c.TLSConfig, "rediss:// is TLS")
	require.Equal(t, "redis.example.com", c.TLSConfig.ServerName)

	// A user name is not used (ACL users other than "default" cannot log in).
	opt, err = asynq.ParseRedisURI("redis://comfyq:secret@redis:6379/0")
	require.NoError(t, err)
	require.Empty(t, opt.(asynq.RedisClientOpt).Username)

	// Sentinel: the addresses of the Sentinels and the master's name. The password
	// in the URL is the Sentinels' password; the master's own password, a database
	// number and TLS cannot be given.
	opt, err = asynq.ParseRedisURI("redis-sentinel://:sentinelpw@s1:26379,s2:26379,s3:26379?master=comfyq")
	require.NoError(t, err)
	f, ok := opt.(asynq.RedisFailoverClientOpt)
	require.True(t, ok)
	require.Equal(t, "comfyq", f.MasterName)
	require.Equal(t, []string{"s1:26379", "s2:26379", "s3:26379"}, f.SentinelAddrs)
	require.Equal(t, "sentinelpw", f.SentinelPassword)
	require.Empty(t, f.Password)
	require.Zero(t, f.DB)
	require.Nil(t, f.TLSConfig)
}
