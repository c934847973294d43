// Package testenv gives tests the real services they run against: Redis and an
// S3-compatible store, plus free loopback ports.
//
// comfyq's tests use real backends, as asynq's and river's do. scripts/test.sh
// (and .ci/run, which calls it) provides them on a fresh machine: it installs
// redis-server if needed, starts versitygw as the S3 service and exports
//
//	COMFYQ_TEST_REDIS_URL  redis://127.0.0.1:PORT/0    a shared redis-server
//	COMFYQ_TEST_S3_URL     s3://comfyq-test?endpoint=http://127.0.0.1:PORT&region=us-east-1&path_style=true
//	AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
//
// To run tests by hand, run scripts/test.sh with go test's arguments
// (scripts/test.sh -run TestX ./worker/...), or set the variables yourself. A
// test that needs a service that is not configured fails with a message saying
// how to provide it; it never skips.
//
// # Redis
//
// A test gets a Redis of its own from [NewRedis]: a private redis-server
// process on a free loopback port with its data in a temporary directory,
// started in a few milliseconds and killed when the test ends. Tests are then
// isolated from each other without any key prefix or FLUSHDB (asynq's keys are
// global), and can run in parallel. [StartRedis] gives control over the server
// (append-only file, Stop, Kill, Restart on the same port and data) for tests of
// durability and reconnection.
//
// On a machine where redis-server cannot run, set COMFYQ_TEST_REDIS_URL to an
// external Redis: NewRedis then falls back to it. Nothing is flushed, so tests
// share its data; that is an escape hatch, not the normal way. [RedisURL]
// always returns the shared Redis.
//
// # S3
//
// [S3URL] returns a storage URL (see package storage) for the S3 service of
// COMFYQ_TEST_S3_URL with a prefix of its own for each test and
// create_bucket=true, so tests sharing the bucket never see each other's
// objects.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/comfyq/comfyq/internal/redisproc"
)

// Environment variables read by this package.
const (
	// EnvRedisURL names the shared Redis, e.g. redis://127.0.0.1:6379/0.
	EnvRedisURL = "COMFYQ_TEST_REDIS_URL"
	// EnvS3URL names the S3 service, e.g.
	// s3://comfyq-test?endpoint=http://127.0.0.1:7070&region=us-east-1&path_style=true.
	EnvS3URL = "COMFYQ_TEST_S3_URL"
	// EnvRedisServer, if set, is the redis-server binary to run instead of the
	// one on PATH.
	EnvRedisServer = "COMFYQ_TEST_REDIS_SERVER"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another
// process may take it before the caller binds it; callers that start a server
// on it retry with a new port if the bind fails, as StartRedis does.
func FreePort(tb testing.TB) int {
	tb.Helper()
	port, err := redisproc.FreePort()
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	return port
}

// S3URL returns a storage URL for the S3 service named by COMFYQ_TEST_S3_URL,
// with a prefix unique to this test (derived from its name plus random bytes)
// and create_bucket=true. The test fails if the variable is unset or invalid.
// The objects are not removed after the test: the service scripts/test.sh
// starts keeps them in a temporary directory that it deletes.
func S3URL(tb testing.TB) string {
	tb.Helper()
	raw := os.Getenv(EnvS3URL)
	if raw == "" {
		tb.Fatalf("testenv: S3 not configured: run scripts/test.sh, which starts versitygw; " +
			"or set " + EnvS3URL + "=s3://bucket?endpoint=http://127.0.0.1:PORT&region=us-east-1&path_style=true " +
			"and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		tb.Fatalf("testenv: %s=%q is not an s3://bucket[/prefix]?endpoint=… URL", EnvS3URL, raw)
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
		tb.Fatalf("testenv: %s is set but AWS_ACCESS_KEY_ID is not: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "+
			"for the S3 service (scripts/test.sh does)", EnvS3URL)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	u.Path = "/" + prefix + "test/" + uniqueName(tb)
	q := u.Query()
	q.Set("create_bucket", "true")
	u.RawQuery = q.Encode()
	return u.String()
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// uniqueName returns a name for tb that is safe in keys and URLs and unique
// across runs: the test name, shortened, plus random hex.
func uniqueName(tb testing.TB) string {
	name := unsafeChars.ReplaceAllString(tb.Name(), "_")
	if len(name) > 80 {
		name = name[len(name)-80:]
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	return strings.Trim(name, "_") + "-" + hex.EncodeToString(rnd[:])
}
