package file_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/storage/file"
	"github.com/comfyq/comfyq/storage/storagetest"
)

// newStore opens a file store in a fresh directory, served over HTTP on
// loopback under /files/ so that URL can be tested.
func newStore(tb testing.TB) (*file.Store, string) {
	tb.Helper()
	dir := tb.TempDir()
	srv := httptest.NewServer(http.StripPrefix("/files/", http.FileServer(http.Dir(dir))))
	tb.Cleanup(srv.Close)
	u := url.URL{Scheme: "file", Path: dir, RawQuery: url.Values{"base_url": {srv.URL + "/files/"}}.Encode()}
	s, err := storage.Open(context.Background(), u.String())
	require.NoError(tb, err)
	return s.(*file.Store), dir
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.RunConformance(t, func(t *testing.T) storage.Store {
		s, _ := newStore(t)
		return s
	})
}

func TestConfigFromURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()

	s, err := storage.Open(ctx, "file://"+dir+"/new/sub")
	require.NoError(t, err, "the root directory is created")
	require.DirExists(t, filepath.Join(dir, "new", "sub"))
	require.Equal(t, "file://"+dir+"/new/sub", s.String())
	require.NoError(t, s.Ping(ctx))
	_, err = s.URL(ctx, "a.png", 0)
	require.ErrorIs(t, err, storage.ErrNoURL)

	s, err = storage.Open(ctx, "file://localhost"+dir+"?base_url=https://cdn.example.com/out")
	require.NoError(t, err)
	u, err := s.URL(ctx, "jobs/1/a b#.png", 0)
	require.NoError(t, err)
	require.Equal(t, "https://cdn.example.com/out/jobs/1/a%20b%23.png", u)
	require.Contains(t, s.String(), "base_url=")

	for raw, msg := range map[string]string{
		"file://relative/dir":               "has a host",
		"file:relative":                     "not of the form",
		"file://" + dir + "?bse_url=x":      `unknown option "bse_url"`,
		"file://" + dir + "?base_url=/rel":  "not an absolute http",
		"file://" + dir + "?base_url=ftp:x": "not an absolute http",
		"file://u:pw@/" + dir:               "user information",
	} {
		_, err := storage.Open(ctx, raw)
		require.ErrorContains(t, err, msg, raw)
		require.NotContains(t, err.Error(), ":pw@", raw)
	}
}

func TestSymlinksDoNotEscapeRoot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, dir := newStore(t)
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "abs")))
	require.NoError(t, os.Symlink(filepath.Join("..", filepath.Base(outside)), filepath.Join(dir, "rel")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "filelink")))

	for _, key := range []string{"abs/secret", "rel/secret", "filelink", "abs/new.png", "rel/sub/new.png"} {
		_, err := s.Put(ctx, key, strings.NewReader("pwned"), storage.PutOptions{})
		if key != "filelink" {
			// Replacing the link itself would be harmless; writing through it is not.
			require.Error(t, err, "Put %q", key)
		}
		rc, _, err := s.Get(ctx, key)
		if err == nil {
			rc.Close()
		}
		if key == "filelink" {
			// Put replaced the link by a file inside the root.
			require.NoError(t, err)
			continue
		}
		// A link out of the root makes the key invalid, not a transient failure.
		require.ErrorIs(t, err, storage.ErrInvalidKey, "Get %q", key)
		_, err = s.Stat(ctx, key)
		require.ErrorIs(t, err, storage.ErrInvalidKey, "Stat %q", key)
		_ = s.Delete(ctx, key)
	}
	b, err := os.ReadFile(filepath.Join(outside, "secret"))
	require.NoError(t, err, "a file outside the root was removed")
	require.Equal(t, "secret", string(b), "a file outside the root was changed")
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Len(t, entries, 1, "files were created outside the root")
}

func TestMetaDirIsReserved(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	_, err := s.Put(context.Background(), file.MetaDir+"/x", strings.NewReader("x"), storage.PutOptions{})
	require.ErrorIs(t, err, storage.ErrInvalidKey)
	_, err = s.Stat(context.Background(), file.MetaDir)
	require.ErrorIs(t, err, storage.ErrInvalidKey)
}

func TestFileReplacedBehindTheStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, dir := newStore(t)
	_, err := s.Put(ctx, "a/b.png", strings.NewReader("original"), storage.PutOptions{ContentType: "image/x-custom"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a", "b.png"), []byte("changed by hand"), 0o644))
	obj, err := s.Stat(ctx, "a/b.png")
	require.NoError(t, err)
	require.Empty(t, obj.SHA256, "a stale SHA-256 was reported")
	require.Equal(t, "image/png", obj.ContentType, "the stale content type was reported")
	require.Equal(t, int64(len("changed by hand")), obj.Size)
}

func TestFailedPutsLeaveNoTempFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, dir := newStore(t)
	_, err := s.Put(ctx, "a/b", strings.NewReader("x"), storage.PutOptions{Size: 2})
	require.ErrorIs(t, err, storage.ErrSizeMismatch)
	// An object where a directory is: refused, not a panic.
	_, err = s.Put(ctx, "a/c/d", strings.NewReader("x"), storage.PutOptions{})
	require.NoError(t, err)
	_, err = s.Put(ctx, "a/c", strings.NewReader("x"), storage.PutOptions{})
	require.Error(t, err)
	// A directory where an object is.
	_, err = s.Put(ctx, "a/c/d/e", strings.NewReader("x"), storage.PutOptions{})
	require.Error(t, err)
	require.NoError(t, s.Delete(ctx, "a/c"), "a directory is not an object: nothing to delete")
	require.DirExists(t, filepath.Join(dir, "a", "c"))

	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		require.False(t, strings.HasPrefix(d.Name(), ".comfyq-tmp-"), "temporary file left: %s", p)
		return nil
	})
	require.NoError(t, err)
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	_, err := file.New(file.Config{})
	require.ErrorContains(t, err, "Dir is required")
	_, err = file.New(file.Config{Dir: "relative"})
	require.ErrorContains(t, err, "not an absolute path")
	f := filepath.Join(t.TempDir(), "afile")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	_, err = file.New(file.Config{Dir: f})
	require.Error(t, err, "root is a file")

	s, err := file.New(file.Config{Dir: filepath.Join(t.TempDir(), "gone")})
	require.NoError(t, err)
	require.NoError(t, os.Remove(s.Dir()))
	require.Error(t, s.Ping(context.Background()), "Ping with the root removed")
}

func BenchmarkPut(b *testing.B) {
	for _, size := range []int64{1 << 20, 32 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			s, _ := newStore(b)
			storagetest.BenchmarkPut(b, s, size)
		})
	}
}

// BenchmarkPutOutput puts what a worker stores for a fast job: a small image under a
// key of its own directory (jobs/<job id>/<node>/<file>), a new directory each time.
func BenchmarkPutOutput(b *testing.B) {
	s, _ := newStore(b)
	data := bytes.Repeat([]byte{0x89}, 4<<10)
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		key := fmt.Sprintf("jobs/%08d-0000-4000-8000-000000000000/9/ComfyUI_00001_.png", i)
		if _, err := s.Put(b.Context(), key, bytes.NewReader(data), storage.PutOptions{Size: int64(len(data))}); err != nil {
			b.Fatal(err)
		}
	}
}

func byteSize(n int64) string { return fmt.Sprintf("%dMiB", n>>20) }

// FuzzKeysStayInRoot puts objects under arbitrary keys: either the key is
// refused, or the object lands inside the root and nothing appears beside it.
func FuzzKeysStayInRoot(f *testing.F) {
	for _, k := range []string{"a", "a/b", "../x", "a/../../x", "/etc/x", "a\\..\\x", ".comfyq-meta/x", "..", "a/./b", "x\x00y"} {
		f.Add(k)
	}
	parent := f.TempDir()
	root := filepath.Join(parent, "root")
	s, err := file.New(file.Config{Dir: root})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, key string) {
		_, err := s.Put(context.Background(), key, strings.NewReader("x"), storage.PutOptions{})
		if err == nil {
			require.NoError(t, storage.ValidateKey(key))
			b, rerr := os.ReadFile(filepath.Join(root, filepath.FromSlash(key)))
			require.NoError(t, rerr, "object %q is not where its key says", key)
			require.Equal(t, "x", string(b))
		}
		entries, rerr := os.ReadDir(parent)
		require.NoError(t, rerr)
		require.Len(t, entries, 1, "key %q created something outside the root", key)
	})
}
