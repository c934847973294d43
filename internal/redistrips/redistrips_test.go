package redistrips_test

import (
	"regexp"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/redistrips"
	"github.com/comfyq/comfyq/internal/testenv"
)

func TestCounter(t *testing.T) {
	t.Parallel()
	opt, err := redis.ParseURL(testenv.NewRedis(t))
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	c := redistrips.New()
	rdb.AddHook(c)
	ctx := t.Context()

	id := "0b9f2c1e-5d6a-4c3b-8e7f-1a2b3c4d5e6f"
	require.NoError(t, rdb.Set(ctx, "comfyq:job:"+id, "x", 0).Err())
	require.NoError(t, rdb.Get(ctx, "comfyq:job:"+id).Err())
	_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "a")
		p.Get(ctx, "a")
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, redis.NewScript(`return redis.call('GET', KEYS[1])`).Run(ctx, rdb, []string{"comfyq:job:" + id}).Err())

	// The script's EVALSHA fails (not loaded) and go-redis sends EVAL: both are
	// trips. So are a new connection's handshakes (HELLO, CLIENT SETINFO).
	report := c.Report(1)
	for _, kind := range []string{"set comfyq:job:{id}", "get comfyq:job:{id}", "pipeline [incr get]",
		"evalsha comfyq:job:{id}", "eval comfyq:job:{id}"} {
		require.Regexp(t, `(?m)^ +1\.00/job +1  `+regexp.QuoteMeta(kind)+`$`, report)
	}
	require.GreaterOrEqual(t, c.Trips(), 5)
	require.Positive(t, c.Bytes())

	snap := c.Snapshot()
	require.NoError(t, rdb.Get(ctx, "comfyq:job:"+id).Err())
	require.Equal(t, c.Trips()-1, snap.Trips(), "a snapshot does not count on")
	require.Equal(t, report, snap.Report(1))

	c.Reset()
	require.Zero(t, c.Trips())
	require.Zero(t, c.Bytes())
}
