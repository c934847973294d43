package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/comfyq/comfyq/internal/redisproc"
)

// RedisURL returns the shared Redis of COMFYQ_TEST_REDIS_URL, and fails the test
// if it is unset. Tests should prefer NewRedis, which gives them a Redis of
// their own; RedisURL is for the few that must use the shared one.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvRedisURL)
	if u == "" {
		tb.Fatalf("testenv: Redis not configured: run scripts/test.sh, or set %s=redis://127.0.0.1:6379/0 "+
			"to use a Redis you started (it is shared by the tests and never flushed)", EnvRedisURL)
	}
	return u
}

// NewRedis returns the URL of a Redis for this test alone: a private
// redis-server started by StartRedis with default options and stopped when the
// test ends. Where redis-server cannot be found it falls back to the shared
// Redis of COMFYQ_TEST_REDIS_URL, which is not flushed and not isolated; with
// neither, the test fails saying how to provide one.
func NewRedis(tb testing.TB) string {
	tb.Helper()
	if _, err := redisServerPath(); err != nil {
		if u := os.Getenv(EnvRedisURL); u != "" {
			tb.Logf("testenv: %v; using the shared Redis of %s (not isolated, not flushed)", err, EnvRedisURL)
			return u
		}
		tb.Fatalf("testenv: Redis not configured: %v, and %s is unset. Run scripts/test.sh (it installs "+
			"redis-server), or apt-get install redis-server, or set %s=redis://127.0.0.1:6379/0 to use an "+
			"external Redis (shared by the tests, never flushed)", err, EnvRedisURL, EnvRedisURL)
	}
	return StartRedis(tb, RedisOptions{}).URL()
}

// RedisOptions configures a redis-server started by StartRedis.
type RedisOptions struct {
	// AppendOnly turns on the append-only file, so that data survives Stop,
	// Kill and Restart (subject to AppendFsync). Default false: nothing is
	// written to disk (RDB snapshots are always off).
	AppendOnly bool
	// AppendFsync is Redis's appendfsync policy: "always", "everysec" or "no".
	// Default: Redis's own ("everysec"). Only with AppendOnly.
	AppendFsync string
	// Args are extra redis-server arguments, such as "--maxmemory", "10mb".
	Args []string
}

// RedisServer is a redis-server process owned by a test (a redisproc.Server whose
// methods fail the test on error, so call them from the test's goroutine).
type RedisServer struct {
	tb testing.TB
	*redisproc.Server
}

// StartRedis starts a private redis-server on a free loopback port, with its
// files in a temporary directory, waits until it answers PING and kills it when
// the test ends. redis-server is taken from COMFYQ_TEST_REDIS_SERVER, else PATH;
// the test fails if there is none.
func StartRedis(tb testing.TB, opts RedisOptions) *RedisServer {
	tb.Helper()
	bin, err := redisServerPath()
	if err != nil {
		tb.Fatalf("testenv: cannot start Redis: %v. Install it (apt-get install redis-server) or run scripts/test.sh, "+
			"which does", err)
	}
	s, err := redisproc.Start(context.Background(), redisproc.Options{Bin: bin, Dir: tb.TempDir(),
		AppendOnly: opts.AppendOnly, AppendFsync: opts.AppendFsync, Args: opts.Args})
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(func() { _ = s.Kill() })
	return &RedisServer{tb: tb, Server: s}
}

func redisServerPath() (string, error) {
	if p := os.Getenv(EnvRedisServer); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%q: %w", EnvRedisServer, p, err)
		}
		return p, nil
	}
	return redisproc.Binary()
}

// Stop shuts the server down gracefully (SIGTERM: clients are disconnected, the
// append-only file is flushed) and waits for it to exit. Stopping a stopped
// server does nothing.
func (s *RedisServer) Stop() {
	s.tb.Helper()
	if err := s.Server.Stop(); err != nil {
		s.tb.Fatalf("testenv: stop redis-server on %s: %v", s.Addr(), err)
	}
}

// Kill kills the server (SIGKILL), as a crash would: only what was already
// written to the append-only file survives. Killing a stopped server does
// nothing.
func (s *RedisServer) Kill() {
	s.tb.Helper()
	if err := s.Server.Kill(); err != nil {
		s.tb.Fatalf("testenv: kill redis-server on %s: %v", s.Addr(), err)
	}
}

// Restart stops the server if it runs and starts it again on the same port with
// the same directory, so that an append-only file is loaded again. It returns
// once the server answers.
func (s *RedisServer) Restart() {
	s.tb.Helper()
	if err := s.Server.Restart(context.Background()); err != nil {
		s.tb.Fatalf("testenv: restart redis-server on %s: %v", s.Addr(), err)
	}
}
