package nodeinfo_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/internal/nodeinfo"
	"github.com/comfyq/comfyq/internal/nodestatus"
	"github.com/comfyq/comfyq/internal/testenv"
)

const (
	gpu1 = `{"CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["a.safetensors", "b.safetensors"], {"tooltip": "t"}]}}, "output": ["MODEL", "CLIP", "VAE"], "name": "CheckpointLoaderSimple"},
 "SaveImage": {"input": {"required": {"images": ["IMAGE"]}}, "output": [], "output_node": true}}`
	gpu2 = `{"CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["b.safetensors", "c.safetensors"]]}}, "output": ["MODEL", "CLIP", "VAE"], "name": "CheckpointLoaderSimple"},
 "MyCustomNode": {"input": {"required": {}}, "output": ["IMAGE"]}}`
)

func choices(t *testing.T, info comfy.ObjectInfo) []string {
	t.Helper()
	var parts []json.RawMessage
	require.NoError(t, json.Unmarshal(info["CheckpointLoaderSimple"].Input.Required["ckpt_name"], &parts))
	var c []string
	require.NoError(t, json.Unmarshal(parts[0], &c))
	return c
}

func TestPublishAndMerge(t *testing.T) {
	t.Parallel()
	opt, err := redis.ParseURL(testenv.NewRedis(t))
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	ctx := t.Context()
	now := time.Now().UTC()

	// No node: nothing to validate against.
	_, err = nodeinfo.NewReader(rdb).ObjectInfo(ctx)
	require.ErrorIs(t, err, nodeinfo.ErrIncomplete)

	h1, err := nodeinfo.Publish(ctx, rdb, []byte(gpu1))
	require.NoError(t, err)
	require.Len(t, h1, 64)
	require.NoError(t, nodestatus.Write(ctx, rdb, &nodestatus.Status{Name: "gpu-1", Healthy: true, ObjectInfoSHA256: h1, UpdatedAt: now}))
	// gpu-2 is healthy and has published nothing yet.
	require.NoError(t, nodestatus.Write(ctx, rdb, &nodestatus.Status{Name: "gpu-2", Healthy: true, UpdatedAt: now}))
	_, err = nodeinfo.NewReader(rdb).ObjectInfo(ctx)
	require.ErrorIs(t, err, nodeinfo.ErrIncomplete)

	h2, err := nodeinfo.Publish(ctx, rdb, []byte(gpu2))
	require.NoError(t, err)
	require.NoError(t, nodestatus.Write(ctx, rdb, &nodestatus.Status{Name: "gpu-2", Healthy: true, ObjectInfoSHA256: h2, UpdatedAt: now}))
	info, err := nodeinfo.NewReader(rdb).ObjectInfo(ctx)
	require.NoError(t, err)
	// Every class of any node, the choices of every node.
	require.Contains(t, info, "SaveImage")
	require.Contains(t, info, "MyCustomNode")
	require.Equal(t, []string{"a.safetensors", "b.safetensors", "c.safetensors"}, choices(t, info))

	// An unhealthy node does not count, and its models are not offered.
	require.NoError(t, nodestatus.Write(ctx, rdb, &nodestatus.Status{Name: "gpu-2", Healthy: false, ObjectInfoSHA256: h2, UpdatedAt: now}))
	info, err = nodeinfo.NewReader(rdb).ObjectInfo(ctx)
	require.NoError(t, err)
	require.NotContains(t, info, "MyCustomNode")
	require.Equal(t, []string{"a.safetensors", "b.safetensors"}, choices(t, info))

	ok, err := nodeinfo.Touch(ctx, rdb, h1)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = nodeinfo.Touch(ctx, rdb, "0000")
	require.NoError(t, err)
	require.False(t, ok, "a hash never published is not there")
}
