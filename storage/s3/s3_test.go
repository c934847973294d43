package s3_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/storage/s3"
	"github.com/comfyq/comfyq/storage/storagetest"
)

// newStore opens a store on the test S3 service under a prefix of its own.
func newStore(tb testing.TB, extra ...string) *s3.Store {
	tb.Helper()
	raw := testenv.S3URL(tb)
	for _, kv := range extra {
		raw += "&" + kv
	}
	s, err := storage.Open(context.Background(), raw)
	require.NoError(tb, err)
	return s.(*s3.Store)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.RunConformance(t, func(t *testing.T) storage.Store { return newStore(t) })
}

func TestPrefixIsApplied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	_, err := s.Put(ctx, "a/b.png", strings.NewReader("x"), storage.PutOptions{})
	require.NoError(t, err)

	// The same bucket without the prefix does not see the key; with the
	// prefix in the key, it does.
	u, err := url.Parse(testenv.S3URL(t))
	require.NoError(t, err)
	prefix := strings.Trim(strings.TrimPrefix(s.String(), "s3://"+u.Host), "/")
	prefix, _, _ = strings.Cut(prefix, "?")
	u.Path = ""
	root, err := storage.Open(ctx, u.String())
	require.NoError(t, err)
	_, err = root.Stat(ctx, "a/b.png")
	require.ErrorIs(t, err, storage.ErrNotFound)
	obj, err := root.Stat(ctx, prefix+"/a/b.png")
	require.NoError(t, err)
	require.Equal(t, int64(1), obj.Size)

	// Locate names the object as the bucket does; Unlocate and InputKey map back.
	loc := storage.Locate(s, "a/b.png")
	require.Equal(t, storage.Location{Bucket: u.Host, Key: prefix + "/a/b.png"}, loc)
	key, ok := storage.Unlocate(s, loc)
	require.True(t, ok)
	require.Equal(t, "a/b.png", key)
	_, ok = storage.Unlocate(s, storage.Location{Bucket: "other", Key: loc.Key})
	require.False(t, ok)
	key, ok = storage.Unlocate(s, storage.Location{Key: "a/b.png"}) // a record from before buckets
	require.True(t, ok)
	require.Equal(t, "a/b.png", key)
	require.Equal(t, "a/b.png", storage.InputKey(s, loc.Key))
	require.Equal(t, "a/b.png", storage.InputKey(s, "a/b.png"))
}

func TestExactlyOnePart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, fmt.Sprintf("part_size=%d", s3.MinPartSize))
	// The boundaries between one PutObject and a multipart upload, with the
	// smallest part size S3 allows.
	for _, size := range []int64{s3.MinPartSize, s3.MinPartSize + 1, 2 * s3.MinPartSize} {
		key := fmt.Sprintf("edge/%d", size)
		obj, err := s.Put(ctx, key, storagetest.NewReader(uint64(size), size), storage.PutOptions{Size: size})
		require.NoError(t, err, "size %d", size)
		require.Equal(t, size, obj.Size)
		st, err := s.Stat(ctx, key)
		require.NoError(t, err)
		require.Equal(t, size, st.Size)
		require.Equal(t, obj.SHA256, st.SHA256, "size %d", size)
		rc, _, err := s.Get(ctx, key)
		require.NoError(t, err)
		n, err := storagetest.Compare(rc, storagetest.NewReader(uint64(size), size))
		rc.Close()
		require.NoError(t, err)
		require.Equal(t, size, n)
	}
}

func TestConfigFromURL(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("s3://bucket/some/prefix/?endpoint=http://127.0.0.1:9000&region=eu-west-1&path_style=true&create_bucket=1&part_size=6291456&concurrency=3")
	cfg, err := s3.ConfigFromURL(u)
	require.NoError(t, err)
	require.Equal(t, s3.Config{
		Bucket: "bucket", Prefix: "some/prefix", Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1",
		PathStyle: true, CreateBucket: true, PartSize: 6 << 20, Concurrency: 3,
	}, cfg)

	for raw, msg := range map[string]string{
		"s3://b?endpont=x":               `unknown option "endpont"`,
		"s3://b?path_style=maybe":        "path_style",
		"s3://b?part_size=big":           "part_size",
		"s3://key:secret@b":              "must not hold credentials",
		"s3:b":                           "not of the form",
		"s3:///prefix":                   "Bucket is required",
		"s3://b?part_size=1024":          "smaller than the minimum",
		"s3://b?concurrency=-1":          "negative",
		"s3://b/a/../c":                  "Prefix",
		"s3://b?endpoint=127.0.0.1:9000": "not an http or https URL",
	} {
		_, err := storage.Open(context.Background(), raw)
		require.ErrorContains(t, err, msg, raw)
		require.NotContains(t, err.Error(), "secret", raw)
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	s, err := s3.New(context.Background(), s3.Config{Bucket: "b", Prefix: "p/q", Endpoint: "http://127.0.0.1:1", Region: "us-east-1"})
	require.NoError(t, err)
	require.Equal(t, "s3://b/p/q?endpoint=http%3A%2F%2F127.0.0.1%3A1", s.String())
}

func TestMissingBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, err := url.Parse(testenv.S3URL(t))
	require.NoError(t, err)
	q := u.Query()
	q.Del("create_bucket")
	u.RawQuery = q.Encode()
	u.Host = "comfyq-missing-bucket"
	s, err := storage.Open(ctx, u.String())
	require.NoError(t, err, "opening does not touch the bucket without create_bucket")
	require.ErrorContains(t, s.Ping(ctx), "does not exist")
	_, err = s.Put(ctx, "x", strings.NewReader("x"), storage.PutOptions{})
	require.Error(t, err)
	require.NotErrorIs(t, err, storage.ErrNotFound)
}

func TestURLTTL(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	u, err := s.URL(context.Background(), "a.png", 0)
	require.NoError(t, err)
	require.Contains(t, u, "X-Amz-Expires=3600")
	_, err = s.URL(context.Background(), "a.png", 8*24*60*60*1e9)
	require.ErrorContains(t, err, "longer than the maximum")
}

func BenchmarkPut(b *testing.B) {
	for _, size := range []int64{1 << 20, 32 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			storagetest.BenchmarkPut(b, newStore(b), size)
		})
	}
}
