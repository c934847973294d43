package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run runs one command line to completion.
func run(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errb syncBuffer
	code := Main(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// background runs a long-running command until the test ends.
func background(t *testing.T, args ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		Main(ctx, args, &out, &out)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("comfyq %s did not stop", args[0])
		}
	})
	return &out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", itoa(testenv.FreePort(t)))
}

func itoa(i int) string { return strconv.Itoa(i) }

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode < 500
	}, 20*time.Second, 20*time.Millisecond, "%s never answered", url)
}

// TestQuickstart follows the README's quickstart: a simulated node, a worker writing
// to a directory, `comfyq submit --wait`, then status and cancel.
func TestQuickstart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	redisURL := testenv.NewRedis(t)
	outputs := t.TempDir()
	simAddr := freeAddr(t)
	background(t, "sim", "--listen", simAddr, "--comfyui-version", simtest.Version(t), "--control")
	waitHTTP(t, "http://"+simAddr+"/system_stats")
	background(t, "worker", "--redis", redisURL, "--storage", "file://"+outputs, "--comfy", "gpu-1=http://"+simAddr,
		"--log-level", "warn")

	wf := filepath.Join(t.TempDir(), "empty.json")
	require.NoError(t, os.WriteFile(wf, []byte(`{"1": {"class_type": "EmptyImage", "inputs": {"width": 512, "height": 512, "batch_size": 1, "color": 16744448}},
 "2": {"class_type": "SaveImage",  "inputs": {"images": ["1", 0], "filename_prefix": "quickstart"}}}`), 0o644))

	code, out, stderr := run(t, ctx, "submit", "--redis", redisURL, "--workflow", wf, "--wait", "--json")
	require.Equal(t, 0, code, "stderr: %s", stderr)
	var j job.Job
	require.NoError(t, json.Unmarshal([]byte(out), &j), out)
	require.Equal(t, job.StatusSucceeded, j.Status)
	require.Equal(t, "gpu-1", j.NodeName)
	require.Len(t, j.Outputs, 1)
	stored, err := os.ReadFile(filepath.Join(outputs, j.Outputs[0].Key))
	require.NoError(t, err)
	require.Equal(t, j.Outputs[0].Size, int64(len(stored)))

	code, out, _ = run(t, ctx, "status", "--redis", redisURL, j.ID)
	require.Equal(t, 0, code)
	require.Contains(t, out, "succeeded")
	require.Contains(t, out, "quickstart_00001_.png")

	code, _, stderr = run(t, ctx, "cancel", "--redis", redisURL, j.ID)
	require.Equal(t, 0, code)
	require.Contains(t, stderr, "already ended")

	// A fault injected through the simulator's control endpoint fails the next job with
	// ComfyUI's exception, and submit --wait exits 2.
	resp, err := http.Post("http://"+simAddr+"/comfysim/fail-node?node=SaveImage&type=torch.OutOfMemoryError", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	code, out, stderr = run(t, ctx, "submit", "--redis", redisURL, "--workflow", wf, "--set", "1.inputs.width=256",
		"--max-attempts", "1", "--wait")
	require.Equal(t, 2, code, "stdout: %s\nstderr: %s", out, stderr)
	require.Contains(t, out, "execution_error")
	require.Contains(t, out, "torch.OutOfMemoryError")
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	code, _, stderr := run(t, ctx, "submit", "--redis", "redis://127.0.0.1:1/0")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "a workflow or a template is required")

	code, _, stderr = run(t, ctx, "status", "--redis", "redis://127.0.0.1:1/0", "not-a-job")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "not a job id")

	code, _, stderr = run(t, ctx, "worker")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--redis is required")

	code, _, stderr = run(t, ctx, "nope")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "unknown command")
}

func TestHelpExplainsEveryCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	code, out, _ := run(t, ctx, "help")
	require.Equal(t, 0, code)
	for _, c := range visibleCommands() {
		name := c.Name
		require.Contains(t, out, name)
		code, help, _ := run(t, ctx, "help", name)
		require.Equal(t, 0, code)
		require.Contains(t, help, "Usage: comfyq "+name, name)
		require.Contains(t, help, strings.SplitN(strings.TrimSpace(c.Description), "\n", 2)[0], name)
		code, help2, _ := run(t, ctx, name, "--help")
		require.Equal(t, 0, code)
		require.Equal(t, help, help2, "comfyq help %s and comfyq %s --help print the same", name, name)
		for _, f := range c.Flags {
			require.Contains(t, help, "--"+f.Names()[0], "comfyq %s --help lists --%s", name, f.Names()[0])
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := run(t, context.Background(), args...)
		require.Equal(t, 0, code)
		require.Equal(t, "comfyq "+version+"\n", out, args)
	}
}
