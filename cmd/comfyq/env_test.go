package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// workerArgs is a worker command line that gets past the flags and fails at once on
// its storage URL, so that a test sees whether the flags were accepted.
var workerArgs = []string{"worker", "--redis", "redis://127.0.0.1:1/0", "--storage", "nope://x", "--comfy", "http://127.0.0.1:1"}

// TestBadEnvValueStops: a value of an environment variable that does not parse stops
// the command with exit code 2 and a message naming the variable (it used to keep the
// default silently). Not parallel: it sets environment variables.
func TestBadEnvValueStops(t *testing.T) {
	for _, tc := range []struct{ env, value string }{
		{"COMFYQ_DEPTH", "two"},             // auto or int
		{"COMFYQ_STALL_TIMEOUT", "soon"},    // duration
		{"COMFYQ_STRICT_PRIORITY", "maybe"}, // bool
		{"COMFYQ_WEBHOOK_CONCURRENCY", "1.5"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			code, _, stderr := run(t, context.Background(), workerArgs...)
			require.Equal(t, 2, code, stderr)
			require.Contains(t, stderr, tc.env)
			require.Contains(t, stderr, tc.value)
			require.Contains(t, stderr, "comfyq worker --help")
		})
	}
}

func TestBadFlagValueStops(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		flag string
		args []string
	}{
		{"depth", []string{"--depth", "two"}},
		{"stall-timeout", []string{"--stall-timeout", "soon"}},
		{"strict-priority", []string{"--strict-priority=maybe"}},
	} {
		code, _, stderr := run(t, context.Background(), append(append([]string{}, workerArgs...), tc.args...)...)
		require.Equal(t, 2, code, stderr)
		require.Contains(t, stderr, tc.flag)
		require.Contains(t, stderr, "comfyq worker --help")
	}
}

// TestFlagBeatsEnvBeatsDefault: the command line wins over the environment, which
// wins over the default.
func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	t.Setenv("COMFYQ_DEPTH", "two")
	code, _, stderr := run(t, context.Background(), append(append([]string{}, workerArgs...), "--depth", "1")...)
	require.Equal(t, 1, code, "--depth 1 is used and the bad variable is not read: the worker fails on its storage: %s", stderr)
	require.NotContains(t, stderr, "COMFYQ_DEPTH")

	t.Setenv("COMFYQ_DEPTH", "0")
	code, _, stderr = run(t, context.Background(), workerArgs...)
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, "--depth 0", "the variable replaces the default (auto)")

	t.Setenv("COMFYQ_DEPTH", "")
	t.Setenv("COMFYQ_LOG_LEVEL", "loud")
	code, _, stderr = run(t, context.Background(), workerArgs...)
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, `--log-level "loud"`)
}

// TestListEnv: a list variable is comma-separated, and the command line replaces it.
func TestListEnv(t *testing.T) {
	t.Setenv("COMFYQ_COMFY_URLS", "a=http://127.0.0.1:1, b=http://127.0.0.1:2,")
	t.Setenv("COMFYQ_COMFY_HEADERS", "b=X-Key: 1")
	code, _, stderr := run(t, context.Background(), "worker", "--redis", "redis://127.0.0.1:1/0", "--storage", "nope://x")
	require.Equal(t, 1, code, "node b comes from the variable, so its header is accepted; the worker fails on its storage: %s", stderr)
	code, _, stderr = run(t, context.Background(), "worker", "--redis", "redis://127.0.0.1:1/0", "--storage", "nope://x",
		"--comfy", "c=http://127.0.0.1:3")
	require.Equal(t, 2, code, "the command line's node replaces the variable's, so no node is named b: %s", stderr)
	require.Contains(t, stderr, `no node is named "b"`)
}

// TestListFlagKeepsCommas: on the command line a list flag's value is one item, so a
// header value with a comma stays whole; only the variable is split.
func TestListFlagKeepsCommas(t *testing.T) {
	t.Parallel()
	code, _, stderr := run(t, context.Background(), "worker", "--redis", "redis://127.0.0.1:1/0", "--storage", "nope://x",
		"--comfy", "a=http://127.0.0.1:1", "--comfy-header", "a=Accept: text/html, application/json")
	require.Equal(t, 1, code, "the header is accepted whole; the worker fails on its storage: %s", stderr)
}

// The worker's --depth is auto unless told otherwise, and takes auto (any case) or a
// number of 1 or more; --help says so.
func TestDepthDefaultsToAuto(t *testing.T) {
	code, out, _ := run(t, context.Background(), "worker", "--help")
	require.Equal(t, 0, code)
	require.Regexp(t, `--depth string\s+jobs held per node \(pipelining\): auto, or a fixed number.*\(default: "auto"\)`, out)
	for v, want := range map[string]int{"auto": 0, "AUTO": 0, "": 0, " 3 ": 3, "1": 1} {
		d, err := parseDepth(v)
		require.NoError(t, err, "%q", v)
		require.Equal(t, want, d, "%q", v)
	}
	for _, v := range []string{"0", "-1", "two", "2.5"} {
		_, err := parseDepth(v)
		require.ErrorContains(t, err, "want auto or a number of 1 or more", "%q", v)
	}
}
