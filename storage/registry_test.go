package storage_test

import (
	"context"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/storage"
)

// fakeStore records the URL it was opened with; the registry test needs nothing
// more from it.
type fakeStore struct{ u *url.URL }

func (f *fakeStore) Put(context.Context, string, io.Reader, storage.PutOptions) (storage.Object, error) {
	return storage.Object{}, nil
}
func (f *fakeStore) Get(context.Context, string) (io.ReadCloser, storage.Object, error) {
	return nil, storage.Object{}, storage.ErrNotFound
}
func (f *fakeStore) Stat(context.Context, string) (storage.Object, error) {
	return storage.Object{}, storage.ErrNotFound
}
func (f *fakeStore) Delete(context.Context, string) error { return nil }
func (f *fakeStore) URL(context.Context, string, time.Duration) (string, error) {
	return "", storage.ErrNoURL
}
func (f *fakeStore) Ping(context.Context) error { return nil }
func (f *fakeStore) String() string             { return f.u.Redacted() }

func init() {
	storage.Register("registrytest", func(_ context.Context, u *url.URL) (storage.Store, error) {
		return &fakeStore{u: u}, nil
	})
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	s, err := storage.Open(ctx, "RegistryTest://bucket/prefix?x=1")
	require.NoError(t, err)
	require.Equal(t, "bucket", s.(*fakeStore).u.Host)
	require.Contains(t, storage.Schemes(), "registrytest")

	_, err = storage.Open(ctx, "gs://bucket")
	require.ErrorContains(t, err, `unknown scheme "gs"`)
	require.ErrorContains(t, err, "registrytest")

	_, err = storage.Open(ctx, "/var/lib/comfyq")
	require.ErrorContains(t, err, "has no scheme")

	_, err = storage.Open(ctx, "")
	require.ErrorContains(t, err, "empty storage URL")

	_, err = storage.Open(ctx, "gs://user:hunter2@bucket")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")

	_, err = storage.Open(ctx, "registrytest://user:hunter2@bucket/%zz")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
}

func TestRegisterPanicsOnDuplicate(t *testing.T) {
	t.Parallel()
	require.Panics(t, func() {
		storage.Register("registrytest", func(context.Context, *url.URL) (storage.Store, error) { return nil, nil })
	})
	require.Panics(t, func() { storage.Register("", nil) })
}

func TestPutOptionsValidate(t *testing.T) {
	t.Parallel()
	ok := []storage.PutOptions{
		{},
		{ContentType: "image/png", Size: 10, Metadata: map[string]string{"job-id": "0193", "node_id": "9"}},
	}
	for _, o := range ok {
		require.NoError(t, o.Validate(), "%+v", o)
	}
	bad := []storage.PutOptions{
		{ContentType: "image/png\r\nX-Evil: 1"},
		{Metadata: map[string]string{"": "x"}},
		{Metadata: map[string]string{"sha256": "x"}},
		{Metadata: map[string]string{"Job-ID": "x"}},
		{Metadata: map[string]string{"a b": "x"}},
		{Metadata: map[string]string{"a": "line\nbreak"}},
		{Metadata: map[string]string{"a": "ünicode"}},
		{Metadata: map[string]string{"a": strings.Repeat("x", 3000)}},
	}
	for _, o := range bad {
		require.ErrorIs(t, o.Validate(), storage.ErrInvalidOptions, "%+v", o)
	}
}

func TestTypeByKey(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]string{
		"jobs/1/9/ComfyUI_00001_.png": "image/png",
		"a/B.JPG":                     "image/jpeg",
		"v.mp4":                       "video/mp4",
		"a.webm":                      "video/webm",
		"s.flac":                      "audio/flac",
		"noext":                       "application/octet-stream",
		"x.unknownext":                "application/octet-stream",
	} {
		require.Equal(t, want, storage.TypeByKey(key), key)
	}
}
