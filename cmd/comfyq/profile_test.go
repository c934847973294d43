package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/producer"
)

// TestWorkerCPUProfile: comfyq worker --cpuprofile writes a CPU profile (gzipped
// protobuf, as go tool pprof reads it) when the worker stops.
func TestWorkerCPUProfile(t *testing.T) {
	redisURL := testenv.NewRedis(t)
	simAddr := freeAddr(t)
	background(t, "sim", "--listen", simAddr, "--comfyui-version", simtest.Version(t))
	waitHTTP(t, "http://"+simAddr+"/system_stats")

	prof := filepath.Join(t.TempDir(), "worker.pprof")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var out syncBuffer
	go func() {
		done <- Main(ctx, []string{"worker", "--redis", redisURL, "--storage", "file://" + t.TempDir(),
			"--comfy", "http://" + simAddr, "--log-level", "warn", "--cpuprofile", prof}, &out, &out)
	}()
	// Stopped once it takes jobs (its asynq server registered), not while it starts.
	rdb, err := producer.OpenRedis(redisURL)
	require.NoError(t, err)
	defer rdb.Close()
	require.Eventually(t, func() bool { return rdb.ZCard(ctx, "asynq:servers").Val() > 0 }, 30*time.Second, 10*time.Millisecond,
		"the worker did not start; its log:\n%s", out.String())
	_, err = os.Stat(prof)
	require.NoError(t, err, "the worker created no profile")
	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code, out.String())
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not stop")
	}
	data, err := os.ReadFile(prof)
	require.NoError(t, err)
	require.Greater(t, len(data), 2, "empty profile")
	require.Equal(t, []byte{0x1f, 0x8b}, data[:2], "a CPU profile is gzipped")
}
