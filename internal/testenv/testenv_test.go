package testenv_test

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/testenv"
)

// do sends one command to the Redis at addr and returns the first line of the
// reply (and the bulk payload, for bulk replies).
func do(t *testing.T, addr string, args ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_, err = c.Write([]byte(b.String()))
	require.NoError(t, err)
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "$") && line != "$-1" {
		payload, err := r.ReadString('\n')
		require.NoError(t, err)
		return strings.TrimRight(payload, "\r\n")
	}
	return line
}

func redisAddr(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	require.Equal(t, "redis", u.Scheme)
	return u.Host
}

func TestNewRedisIsPrivate(t *testing.T) {
	t.Parallel()
	a, b := testenv.NewRedis(t), testenv.NewRedis(t)
	require.NotEqual(t, a, b)
	require.Equal(t, "+OK", do(t, redisAddr(t, a), "SET", "k", "a"))
	require.Equal(t, "$-1", do(t, redisAddr(t, b), "GET", "k"), "the second server sees the first one's data")
}

func TestStartRedisRestartKeepsAOFData(t *testing.T) {
	t.Parallel()
	s := testenv.StartRedis(t, testenv.RedisOptions{AppendOnly: true, AppendFsync: "always"})
	require.Equal(t, "+OK", do(t, s.Addr(), "SET", "job", "queued"))

	port := s.Port()
	s.Restart()
	require.Equal(t, port, s.Port(), "Restart moved the server")
	require.Equal(t, "queued", do(t, s.Addr(), "GET", "job"))

	// A crash loses nothing with appendfsync always.
	require.Equal(t, "+OK", do(t, s.Addr(), "SET", "job", "running"))
	s.Kill()
	_, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	require.Error(t, err, "the killed server still accepts connections")
	s.Restart()
	require.Equal(t, "running", do(t, s.Addr(), "GET", "job"))

	s.Stop()
	s.Stop() // stopping twice is fine
}

func TestStartRedisWithoutAOFForgets(t *testing.T) {
	t.Parallel()
	s := testenv.StartRedis(t, testenv.RedisOptions{})
	require.Equal(t, "+OK", do(t, s.Addr(), "SET", "k", "v"))
	s.Restart()
	require.Equal(t, "$-1", do(t, s.Addr(), "GET", "k"))
	require.Equal(t, "redis://"+s.Addr()+"/0", s.URL())
	require.DirExists(t, s.Dir())
}

func TestStartRedisExtraArgs(t *testing.T) {
	t.Parallel()
	s := testenv.StartRedis(t, testenv.RedisOptions{Args: []string{"--databases", "3"}})
	require.Equal(t, "+OK", do(t, s.Addr(), "SELECT", "2"))
	require.True(t, strings.HasPrefix(do(t, s.Addr(), "SELECT", "3"), "-ERR"), "--databases 3 was not applied")
}

// TestFreePort: the port returned can be listened on. Between the two, another process
// may take it (the tests of other packages run at once, and their outgoing connections
// draw local ports from the same range), so one of three ports must do, not each.
func TestFreePort(t *testing.T) {
	t.Parallel()
	var errs []error
	for range 3 {
		p := testenv.FreePort(t)
		require.Positive(t, p)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			return
		}
		errs = append(errs, err)
	}
	t.Fatalf("none of three free ports could be listened on: %v", errs)
}

// The tests below change the environment, so they cannot run in parallel.

func TestS3URL(t *testing.T) {
	t.Setenv(testenv.EnvS3URL, "s3://bucket/base?endpoint=http://127.0.0.1:7070&region=us-east-1&path_style=true")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	a, b := testenv.S3URL(t), testenv.S3URL(t)
	require.NotEqual(t, a, b, "two calls share a prefix")
	u, err := url.Parse(a)
	require.NoError(t, err)
	require.Equal(t, "s3", u.Scheme)
	require.Equal(t, "bucket", u.Host)
	require.True(t, strings.HasPrefix(u.Path, "/base/test/TestS3URL-"), u.Path)
	q := u.Query()
	require.Equal(t, "true", q.Get("create_bucket"))
	require.Equal(t, "http://127.0.0.1:7070", q.Get("endpoint"))
	require.Equal(t, "true", q.Get("path_style"))

	t.Run("sub/test name with spaces", func(t *testing.T) {
		u, err := url.Parse(testenv.S3URL(t))
		require.NoError(t, err)
		require.Regexp(t, `^/base/test/TestS3URL_sub_test_name_with_spaces-[0-9a-f]{12}$`, u.Path)
	})
}

func TestRedisURL(t *testing.T) {
	t.Setenv(testenv.EnvRedisURL, "redis://127.0.0.1:6399/0")
	require.Equal(t, "redis://127.0.0.1:6399/0", testenv.RedisURL(t))
}

func TestNewRedisFallsBackToSharedURL(t *testing.T) {
	t.Setenv(testenv.EnvRedisServer, "/nonexistent/redis-server")
	t.Setenv(testenv.EnvRedisURL, "redis://127.0.0.1:6399/3")
	require.Equal(t, "redis://127.0.0.1:6399/3", testenv.NewRedis(t))
}
