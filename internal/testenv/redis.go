package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// redisStartTimeout bounds how long StartRedis waits for a server to answer;
// loading a large append-only file counts.
const redisStartTimeout = 30 * time.Second

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

// RedisServer is a redis-server process owned by a test. Its methods fail the
// test on error, so call them from the test's goroutine.
type RedisServer struct {
	tb   testing.TB
	bin  string
	opts RedisOptions
	dir  string
	port int

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	waitErr error
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
	switch opts.AppendFsync {
	case "", "always", "everysec", "no":
	default:
		tb.Fatalf("testenv: RedisOptions.AppendFsync %q is not always, everysec or no", opts.AppendFsync)
	}
	s := &RedisServer{tb: tb, bin: bin, opts: opts, dir: tb.TempDir()}
	tb.Cleanup(func() { s.signal(syscall.SIGKILL) })
	s.start(false)
	return s
}

func redisServerPath() (string, error) {
	if p := os.Getenv(EnvRedisServer); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%q: %w", EnvRedisServer, p, err)
		}
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server is not on PATH")
	}
	return p, nil
}

// URL returns the server's URL, redis://127.0.0.1:PORT/0.
func (s *RedisServer) URL() string { return "redis://" + s.Addr() + "/0" }

// Addr returns the server's address, 127.0.0.1:PORT.
func (s *RedisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port returns the server's TCP port.
func (s *RedisServer) Port() int { return s.port }

// Dir returns the server's working directory, where its append-only file and
// log (redis.log) are.
func (s *RedisServer) Dir() string { return s.dir }

// Stop shuts the server down gracefully (SIGTERM: clients are disconnected, the
// append-only file is flushed) and waits for it to exit. Stopping a stopped
// server does nothing.
func (s *RedisServer) Stop() {
	s.tb.Helper()
	if err := s.signal(syscall.SIGTERM); err != nil {
		s.tb.Fatalf("testenv: stop redis-server on %s: %v", s.Addr(), err)
	}
}

// Kill kills the server (SIGKILL), as a crash would: only what was already
// written to the append-only file survives. Killing a stopped server does
// nothing.
func (s *RedisServer) Kill() {
	s.tb.Helper()
	if err := s.signal(syscall.SIGKILL); err != nil {
		s.tb.Fatalf("testenv: kill redis-server on %s: %v", s.Addr(), err)
	}
}

// Restart stops the server if it runs and starts it again on the same port with
// the same directory, so that an append-only file is loaded again. It returns
// once the server answers.
func (s *RedisServer) Restart() {
	s.tb.Helper()
	s.Stop()
	s.start(true)
}

// signal sends sig and waits for the process to exit; after a grace period it
// kills it.
func (s *RedisServer) signal(sig syscall.Signal) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("redis-server did not exit within 10s of %v; killed", sig)
	}
}

// start runs redis-server and waits until it answers. With samePort it reuses
// s.port and fails if that is taken; otherwise it picks a free port, and another
// if the bind fails.
func (s *RedisServer) start(samePort bool) {
	s.tb.Helper()
	const attempts = 5
	for attempt := 1; ; attempt++ {
		if !samePort {
			s.port = FreePort(s.tb)
		}
		err := s.startOnce()
		if err == nil {
			return
		}
		var inUse portInUseError
		if errors.As(err, &inUse) && !samePort && attempt < attempts {
			continue
		}
		s.tb.Fatalf("testenv: start redis-server on %s: %v", s.Addr(), err)
	}
}

// portInUseError is a start that failed because the port was taken.
type portInUseError struct{ error }

func (s *RedisServer) startOnce() error {
	logFile := filepath.Join(s.dir, "redis.log")
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--logfile", logFile,
		"--daemonize", "no",
		"--save", "",
		"--appendonly", map[bool]string{true: "yes", false: "no"}[s.opts.AppendOnly],
	}
	if s.opts.AppendOnly && s.opts.AppendFsync != "" {
		args = append(args, "--appendfsync", s.opts.AppendFsync)
	}
	args = append(args, s.opts.Args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(exited)
	}()

	deadline := time.Now().Add(redisStartTimeout)
	for {
		select {
		case <-exited:
			log := tail(logFile)
			s.mu.Lock()
			err := fmt.Errorf("redis-server exited (%v); log:\n%s", s.waitErr, log)
			s.mu.Unlock()
			if strings.Contains(log, "Address already in use") {
				return portInUseError{err}
			}
			return err
		default:
		}
		if pingRedis(s.Addr()) {
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server did not answer PING within %v; log:\n%s", redisStartTimeout, tail(logFile))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pingRedis reports whether a Redis at addr answers PING with PONG (a server
// still loading its data answers -LOADING).
func pingRedis(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
