package bench

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

// ErrNoRedisServer is returned by StartRedis when redis-server cannot be found.
var ErrNoRedisServer = errors.New("bench: redis-server is not on PATH (install it, e.g. apt-get install redis-server, or give a Redis URL)")

// RedisServer is a redis-server process started by StartRedis for one benchmark run:
// no persistence, bound to 127.0.0.1 on a free port, its files in a directory of its
// own.
type RedisServer struct {
	cmd    *exec.Cmd
	addr   string
	dir    string
	exited chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// StartRedis starts redis-server (from PATH) on a free loopback port and returns once
// it answers PING. The server's files go in a new directory under dir (default: the
// system's temporary directory), removed by Close. On Linux the server is killed if
// this process dies first.
func StartRedis(ctx context.Context, dir string) (*RedisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedisServer
	}
	work, err := os.MkdirTemp(dir, "comfyq-bench-redis-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	const attempts = 5
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			_ = os.RemoveAll(work)
			return nil, err
		}
		s, err := startRedisOnce(ctx, bin, work, port)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == attempts {
			_ = os.RemoveAll(work)
			return nil, err
		}
	}
}

var errPortInUse = errors.New("bench: port in use")

func startRedisOnce(ctx context.Context, bin, dir string, port int) (*RedisServer, error) {
	logFile := filepath.Join(dir, "redis.log")
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--logfile", logFile,
		"--daemonize", "no",
		"--save", "",
		"--appendonly", "no",
	)
	cmd.Dir = dir
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start redis-server: %w", err)
	}
	s := &RedisServer{cmd: cmd, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.exited:
			log := tailFile(logFile)
			if strings.Contains(log, "Address already in use") {
				return nil, errPortInUse
			}
			return nil, fmt.Errorf("bench: redis-server exited at start; log:\n%s", log)
		case <-ctx.Done():
			s.kill()
			return nil, ctx.Err()
		default:
		}
		if pingRedis(s.addr) {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("bench: redis-server did not answer PING within 30s; log:\n%s", tailFile(logFile))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// URL returns redis://127.0.0.1:PORT/0.
func (s *RedisServer) URL() string { return "redis://" + s.addr + "/0" }

// Close stops the server (SIGTERM, then SIGKILL after 10 s) and removes its
// directory. Closing twice is safe.
func (s *RedisServer) Close() error {
	s.closeOnce.Do(func() {
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			s.closeErr = err
		}
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			s.kill()
		}
		if err := os.RemoveAll(s.dir); err != nil && s.closeErr == nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}

func (s *RedisServer) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("bench: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pingRedis reports whether the Redis at addr answers PING with PONG.
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

func tailFile(path string) string {
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
