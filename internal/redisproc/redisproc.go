// Package redisproc runs redis-server as a child process on a free loopback port: for
// the tests (internal/testenv), the benchmarks (comfyq bench) and comfyq dev. It starts
// the server with its files in one directory, waits until it answers PING, and stops,
// kills or restarts it on the same port and data.
package redisproc

import (
	"bufio"
	"context"
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
	"time"
)

// ErrNotFound is returned when redis-server is not on PATH.
var ErrNotFound = errors.New("redis-server is not on PATH (install it, e.g. apt-get install redis-server)")

// startTimeout bounds how long a start waits for the server to answer; loading a
// large append-only file counts.
const startTimeout = 30 * time.Second

// stopGrace is how long Stop waits after SIGTERM before it kills.
const stopGrace = 10 * time.Second

// Options configures a server.
type Options struct {
	// Bin is the redis-server binary. Default: redis-server from PATH.
	Bin string
	// Dir holds the server's files (append-only file, redis.log). Default: a new
	// temporary directory, removed by Close.
	Dir string
	// AppendOnly turns on the append-only file, so that data survives Stop, Kill and
	// Restart (subject to AppendFsync). Default false: nothing is written to disk
	// (RDB snapshots are always off).
	AppendOnly bool
	// AppendFsync is Redis's appendfsync policy: "always", "everysec" or "no".
	// Default: Redis's own ("everysec"). Only with AppendOnly.
	AppendFsync string
	// Args are extra redis-server arguments, such as "--maxmemory", "10mb".
	Args []string
}

// Server is a redis-server process.
type Server struct {
	bin     string
	opts    Options
	dir     string
	ownsDir bool
	port    int

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	waitErr error
}

// Binary returns the path of redis-server on PATH, or ErrNotFound.
func Binary() (string, error) {
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", ErrNotFound
	}
	return p, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another process
// may take it before the caller binds it; Start retries with a new port when the bind
// fails.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts redis-server on a free loopback port and returns once it answers
// PING. On Linux the server is killed if this process dies first.
func Start(ctx context.Context, opts Options) (*Server, error) {
	switch opts.AppendFsync {
	case "", "always", "everysec", "no":
	default:
		return nil, fmt.Errorf("redisproc: AppendFsync %q is not always, everysec or no", opts.AppendFsync)
	}
	s := &Server{bin: opts.Bin, opts: opts, dir: opts.Dir}
	if s.bin == "" {
		var err error
		if s.bin, err = Binary(); err != nil {
			return nil, err
		}
	}
	if s.dir == "" {
		dir, err := os.MkdirTemp("", "comfyq-redis-")
		if err != nil {
			return nil, err
		}
		s.dir, s.ownsDir = dir, true
	} else if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	if err := s.start(ctx, false); err != nil {
		if s.ownsDir {
			_ = os.RemoveAll(s.dir)
		}
		return nil, err
	}
	return s, nil
}

// URL returns the server's URL, redis://127.0.0.1:PORT/0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Addr returns the server's address, 127.0.0.1:PORT.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port returns the server's TCP port.
func (s *Server) Port() int { return s.port }

// Dir returns the server's working directory, where its append-only file and log
// (redis.log) are.
func (s *Server) Dir() string { return s.dir }

// LogFile returns the path of the server's log.
func (s *Server) LogFile() string { return filepath.Join(s.dir, "redis.log") }

// Stop shuts the server down gracefully (SIGTERM: clients are disconnected, the
// append-only file is flushed) and waits for it to exit; after 10 s it kills it.
// Stopping a stopped server does nothing.
func (s *Server) Stop() error { return s.signal(syscall.SIGTERM) }

// Kill kills the server (SIGKILL), as a crash would: only what was already written
// to the append-only file survives. Killing a stopped server does nothing.
func (s *Server) Kill() error { return s.signal(syscall.SIGKILL) }

// Restart stops the server if it runs and starts it again on the same port with the
// same directory, so that an append-only file is loaded again. It returns once the
// server answers.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start(ctx, true)
}

// Close stops the server and removes its directory when Start made it. Closing twice
// is safe.
func (s *Server) Close() error {
	err := s.Stop()
	if s.ownsDir {
		if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// signal sends sig and waits for the process to exit; after a grace period it kills
// it.
func (s *Server) signal(sig syscall.Signal) error {
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
	case <-time.After(stopGrace):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("redis-server did not exit within %v of %v; killed", stopGrace, sig)
	}
}

// start runs redis-server and waits until it answers. With samePort it reuses s.port
// and fails if that is taken; otherwise it picks a free port, and another if the bind
// fails.
func (s *Server) start(ctx context.Context, samePort bool) error {
	const attempts = 5
	for attempt := 1; ; attempt++ {
		if !samePort {
			port, err := FreePort()
			if err != nil {
				return err
			}
			s.port = port
		}
		err := s.startOnce(ctx)
		if err == nil {
			return nil
		}
		var inUse portInUseError
		if errors.As(err, &inUse) && !samePort && attempt < attempts {
			continue
		}
		return fmt.Errorf("start redis-server on %s: %w", s.Addr(), err)
	}
}

// portInUseError is a start that failed because the port was taken.
type portInUseError struct{ error }

func (s *Server) startOnce(ctx context.Context) error {
	logFile := s.LogFile()
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
	kill := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	deadline := time.Now().Add(startTimeout)
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
		case <-ctx.Done():
			kill()
			return ctx.Err()
		default:
		}
		if Ping(s.Addr()) {
			return nil
		}
		if time.Now().After(deadline) {
			kill()
			return fmt.Errorf("redis-server did not answer PING within %v; log:\n%s", startTimeout, tail(logFile))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Ping reports whether a Redis at addr answers PING with PONG (a server still loading
// its data answers -LOADING).
func Ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err = c.Write([]byte("PING\r\n")); err != nil {
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
	const limit = 2000
	if len(b) > limit {
		b = b[len(b)-limit:]
	}
	return string(b)
}
