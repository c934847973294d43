package nodestatus_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/nodestatus"
	"github.com/comfyq/comfyq/internal/testenv"
)

func TestWriteListRemove(t *testing.T) {
	t.Parallel()
	opt, err := redis.ParseURL(testenv.NewRedis(t))
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	ctx := t.Context()

	empty, err := nodestatus.List(ctx, rdb)
	require.NoError(t, err)
	require.Empty(t, empty)
	require.NotNil(t, empty, "an empty list is [] in JSON")

	now := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, nodestatus.Write(ctx, rdb, &nodestatus.Status{Name: "gpu-2", Healthy: true, Depth: 2, Jobs: []string{"a"}, UpdatedAt: now}))
	require.NoError(t, nodestatus.Write(ctx, rdb, &nodestatus.Status{Name: "gpu-1", Depth: 1, UpdatedAt: now}))
	got, err := nodestatus.List(ctx, rdb)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, "gpu-1", got[0].Name, "sorted by name")
	require.Equal(t, []string{"a"}, got[1].Jobs)
	require.True(t, got[1].UpdatedAt.Equal(now))
	ttl := rdb.TTL(ctx, "comfyq:node:gpu-1").Val()
	require.Greater(t, ttl, time.Duration(0), "a record expires without heartbeats")

	// An expired record is not listed, and an old index entry is dropped.
	rdb.Del(ctx, "comfyq:node:gpu-2")
	rdb.ZAdd(ctx, "comfyq:nodes", redis.Z{Score: float64(now.Add(-time.Hour).UnixMilli()), Member: "gpu-2"})
	got, err = nodestatus.List(ctx, rdb)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Zero(t, rdb.ZScore(ctx, "comfyq:nodes", "gpu-2").Val())

	require.NoError(t, nodestatus.Remove(ctx, rdb, "gpu-1"))
	got, err = nodestatus.List(ctx, rdb)
	require.NoError(t, err)
	require.Empty(t, got)

	require.Error(t, nodestatus.Write(ctx, rdb, &nodestatus.Status{}), "a record needs a name")
}
