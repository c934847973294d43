// Package storagetest is the conformance suite for storage backends, in the
// spirit of litestream's replica client tests: every backend's tests call
// RunConformance, so all backends behave the same for the worker and the API.
//
//	func TestConformance(t *testing.T) {
//		storagetest.RunConformance(t, func(t *testing.T) storage.Store {
//			return newStoreForTest(t)
//		})
//	}
//
// newStore is called once per subtest and must return an empty store that no
// other subtest uses (a fresh directory, a fresh bucket prefix), whose URL method
// returns URLs that a plain net/http client on this machine can fetch. The
// subtests run in parallel.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/storage"
)

// LargeSize is the size of the object of the "large" subtest: larger than the
// S3 backend's default part size twice over, so that it goes up as a multipart
// upload with several parts.
const LargeSize = 20 << 20

// RunConformance runs the conformance suite against the stores newStore returns.
func RunConformance(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Helper()

	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"PutGetRoundtrip", testPutGetRoundtrip},
		{"PutResult", testPutResult},
		{"ContentType", testContentType},
		{"Metadata", testMetadata},
		{"Stat", testStat},
		{"NotFound", testNotFound},
		{"DeleteIdempotent", testDeleteIdempotent},
		{"Overwrite", testOverwrite},
		{"EmptyObject", testEmptyObject},
		{"LargeObjectStreamed", testLargeObject},
		{"UnknownSize", testUnknownSize},
		{"SizeMismatch", testSizeMismatch},
		{"ReaderError", testReaderError},
		{"InvalidKeys", testInvalidKeys},
		{"InvalidOptions", testInvalidOptions},
		{"ContextCanceledBefore", testContextCanceledBefore},
		{"ContextCanceledDuringPut", testContextCanceledDuringPut},
		{"URLFetchable", testURLFetchable},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ConcurrentPutsSameKey", testConcurrentPutsSameKey},
		{"KeysWithUnusualCharacters", testUnusualKeys},
		{"PingAndString", testPingAndString},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			require.NotNil(t, s, "newStore returned nil")
			tt.fn(t, s)
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// put stores data under key and checks the result.
func put(t *testing.T, s storage.Store, key string, data []byte, opts storage.PutOptions) storage.Object {
	t.Helper()
	obj, err := s.Put(ctxFor(t), key, bytes.NewReader(data), opts)
	require.NoError(t, err, "Put %q", key)
	require.Equal(t, key, obj.Key)
	require.Equal(t, int64(len(data)), obj.Size)
	require.Equal(t, sha(data), obj.SHA256)
	return obj
}

// get reads the object under key whole.
func get(t *testing.T, s storage.Store, key string) ([]byte, storage.Object) {
	t.Helper()
	rc, obj, err := s.Get(ctxFor(t), key)
	require.NoError(t, err, "Get %q", key)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err, "reading %q", key)
	return b, obj
}

func requireNotFound(t *testing.T, s storage.Store, key string) {
	t.Helper()
	_, err := s.Stat(ctxFor(t), key)
	require.ErrorIs(t, err, storage.ErrNotFound, "Stat %q", key)
	rc, _, err := s.Get(ctxFor(t), key)
	if rc != nil {
		rc.Close()
	}
	require.ErrorIs(t, err, storage.ErrNotFound, "Get %q", key)
}

func testPutGetRoundtrip(t *testing.T, s storage.Store) {
	data := Bytes(1, 100_000)
	put(t, s, "jobs/a/9/ComfyUI_00001_.png", data, storage.PutOptions{ContentType: "image/png", Size: int64(len(data))})
	got, obj := get(t, s, "jobs/a/9/ComfyUI_00001_.png")
	require.True(t, bytes.Equal(data, got), "content differs after roundtrip")
	require.Equal(t, "jobs/a/9/ComfyUI_00001_.png", obj.Key)
	require.Equal(t, int64(len(data)), obj.Size)
	require.Equal(t, sha(data), obj.SHA256)
	require.Equal(t, "image/png", obj.ContentType)
}

func testPutResult(t *testing.T, s storage.Store) {
	data := []byte("hello, comfyq\n")
	before := time.Now().Add(-time.Minute)
	obj := put(t, s, "result.txt", data, storage.PutOptions{})
	// sha256("hello, comfyq\n"), computed independently of the code under test.
	require.Equal(t, sha(data), obj.SHA256)
	require.Len(t, obj.SHA256, 64)
	require.Equal(t, int64(14), obj.Size)
	require.True(t, obj.ModTime.After(before), "ModTime %v is not recent", obj.ModTime)
}

func testContentType(t *testing.T, s storage.Store) {
	put(t, s, "given.bin", []byte("x"), storage.PutOptions{ContentType: "image/webp"})
	put(t, s, "guessed.png", []byte("x"), storage.PutOptions{})
	put(t, s, "guessed-video.mp4", []byte("x"), storage.PutOptions{})
	put(t, s, "noext", []byte("x"), storage.PutOptions{})
	for key, want := range map[string]string{
		"given.bin":         "image/webp",
		"guessed.png":       "image/png",
		"guessed-video.mp4": "video/mp4",
		"noext":             "application/octet-stream",
	} {
		obj, err := s.Stat(ctxFor(t), key)
		require.NoError(t, err)
		require.Equal(t, want, obj.ContentType, "Stat %q", key)
		_, obj = get(t, s, key)
		require.Equal(t, want, obj.ContentType, "Get %q", key)
	}
}

func testMetadata(t *testing.T, s storage.Store) {
	md := map[string]string{"job-id": "01937c9e-8f3a-7b2c-9d1e-4f5a6b7c8d9e", "node_id": "9"}
	put(t, s, "meta.png", []byte("x"), storage.PutOptions{Metadata: md})
	obj, err := s.Stat(ctxFor(t), "meta.png")
	require.NoError(t, err)
	require.Equal(t, md, obj.Metadata)
	_, obj = get(t, s, "meta.png")
	require.Equal(t, md, obj.Metadata)

	put(t, s, "nometa.png", []byte("x"), storage.PutOptions{})
	obj, err = s.Stat(ctxFor(t), "nometa.png")
	require.NoError(t, err)
	require.Empty(t, obj.Metadata)
}

func testStat(t *testing.T, s storage.Store) {
	data := Bytes(2, 4096)
	putObj := put(t, s, "dir/sub/stat.bin", data, storage.PutOptions{ContentType: "application/x-test"})
	obj, err := s.Stat(ctxFor(t), "dir/sub/stat.bin")
	require.NoError(t, err)
	require.Equal(t, "dir/sub/stat.bin", obj.Key)
	require.Equal(t, int64(4096), obj.Size)
	require.Equal(t, sha(data), obj.SHA256)
	require.Equal(t, "application/x-test", obj.ContentType)
	require.Equal(t, putObj.ETag, obj.ETag)
	require.False(t, obj.ModTime.IsZero())
	require.WithinDuration(t, putObj.ModTime, obj.ModTime, 2*time.Second)

	// A "directory" is not an object.
	requireNotFound(t, s, "dir/sub")
	requireNotFound(t, s, "dir")
}

func testNotFound(t *testing.T, s storage.Store) {
	requireNotFound(t, s, "missing")
	requireNotFound(t, s, "missing/deeper/key.png")
	put(t, s, "present", []byte("x"), storage.PutOptions{})
	requireNotFound(t, s, "present/below")
	requireNotFound(t, s, "Present")
}

func testDeleteIdempotent(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	put(t, s, "del/x.png", []byte("x"), storage.PutOptions{})
	put(t, s, "del/y.png", []byte("y"), storage.PutOptions{})
	require.NoError(t, s.Delete(ctx, "del/x.png"))
	requireNotFound(t, s, "del/x.png")
	require.NoError(t, s.Delete(ctx, "del/x.png"), "second delete")
	require.NoError(t, s.Delete(ctx, "never/existed"))
	// The neighbour is untouched.
	got, _ := get(t, s, "del/y.png")
	require.Equal(t, "y", string(got))
	// The key can be used again.
	put(t, s, "del/x.png", []byte("again"), storage.PutOptions{})
	got, _ = get(t, s, "del/x.png")
	require.Equal(t, "again", string(got))
}

func testOverwrite(t *testing.T, s storage.Store) {
	put(t, s, "over.txt", []byte("first version, longer"), storage.PutOptions{ContentType: "text/plain", Metadata: map[string]string{"v": "1"}})
	second := []byte("second")
	put(t, s, "over.txt", second, storage.PutOptions{ContentType: "application/json"})
	got, obj := get(t, s, "over.txt")
	require.Equal(t, second, got)
	require.Equal(t, sha(second), obj.SHA256)
	require.Equal(t, int64(len(second)), obj.Size)
	require.Equal(t, "application/json", obj.ContentType)
	require.Empty(t, obj.Metadata, "metadata of the first version survived")
}

func testEmptyObject(t *testing.T, s storage.Store) {
	for _, size := range []int64{-1, 0} {
		key := fmt.Sprintf("empty%d", size)
		obj, err := s.Put(ctxFor(t), key, bytes.NewReader(nil), storage.PutOptions{Size: size})
		require.NoError(t, err)
		require.Equal(t, int64(0), obj.Size)
		require.Equal(t, sha(nil), obj.SHA256)
		got, obj := get(t, s, key)
		require.Empty(t, got)
		require.Equal(t, int64(0), obj.Size)
		require.Equal(t, sha(nil), obj.SHA256)
	}
}

func testLargeObject(t *testing.T, s storage.Store) {
	const size = LargeSize + 12345 // not a multiple of any part size
	want := sha256.New()
	_, err := io.Copy(want, NewReader(3, size))
	require.NoError(t, err)
	wantSum := hex.EncodeToString(want.Sum(nil))

	// The content is generated as it is read: Put cannot get it as one buffer.
	obj, err := s.Put(ctxFor(t), "large/video.mp4", NewReader(3, size), storage.PutOptions{Size: -1})
	require.NoError(t, err)
	require.Equal(t, int64(size), obj.Size)
	require.Equal(t, wantSum, obj.SHA256)

	st, err := s.Stat(ctxFor(t), "large/video.mp4")
	require.NoError(t, err)
	require.Equal(t, int64(size), st.Size)
	require.Equal(t, wantSum, st.SHA256)
	require.Equal(t, "video/mp4", st.ContentType)

	rc, _, err := s.Get(ctxFor(t), "large/video.mp4")
	require.NoError(t, err)
	defer rc.Close()
	n, err := Compare(rc, NewReader(3, size))
	require.NoError(t, err, "content differs after %d bytes", n)
	require.Equal(t, int64(size), n)
}

func testUnknownSize(t *testing.T, s storage.Store) {
	// A reader that is not a *bytes.Reader and hides its length, with a known
	// size given, and without.
	data := Bytes(4, 70_000)
	for i, size := range []int64{int64(len(data)), -1} {
		key := fmt.Sprintf("unknown/%d", i)
		obj, err := s.Put(ctxFor(t), key, io.MultiReader(bytes.NewReader(data[:100]), bytes.NewReader(data[100:])), storage.PutOptions{Size: size})
		require.NoError(t, err)
		require.Equal(t, sha(data), obj.SHA256)
		got, _ := get(t, s, key)
		require.Equal(t, data, got)
	}
}

func testSizeMismatch(t *testing.T, s storage.Store) {
	data := Bytes(5, 1000)
	_, err := s.Put(ctxFor(t), "short", bytes.NewReader(data), storage.PutOptions{Size: 1001})
	require.ErrorIs(t, err, storage.ErrSizeMismatch)
	requireNotFound(t, s, "short")

	_, err = s.Put(ctxFor(t), "long", bytes.NewReader(data), storage.PutOptions{Size: 999})
	require.ErrorIs(t, err, storage.ErrSizeMismatch)
	requireNotFound(t, s, "long")

	// A failed overwrite leaves the old object.
	put(t, s, "kept", []byte("old"), storage.PutOptions{})
	_, err = s.Put(ctxFor(t), "kept", bytes.NewReader(data), storage.PutOptions{Size: 5})
	require.ErrorIs(t, err, storage.ErrSizeMismatch)
	got, obj := get(t, s, "kept")
	require.Equal(t, "old", string(got))
	require.Equal(t, sha([]byte("old")), obj.SHA256)
}

var errBroken = errors.New("storagetest: source broke")

func testReaderError(t *testing.T, s storage.Store) {
	for _, n := range []int64{0, 1000, 6 << 20} {
		key := fmt.Sprintf("broken/%d", n)
		r := io.MultiReader(NewReader(6, n), &errReader{err: errBroken})
		_, err := s.Put(ctxFor(t), key, r, storage.PutOptions{})
		require.ErrorIs(t, err, errBroken, "after %d bytes", n)
		requireNotFound(t, s, key)
	}
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

func testInvalidKeys(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	for _, key := range []string{"", "/abs", "../escape", "a/../../b", "a//b", "a/", ".", "..", "a\\b", "a\x00b", "a\nb", "\xff"} {
		_, err := s.Put(ctx, key, strings.NewReader("x"), storage.PutOptions{})
		require.ErrorIs(t, err, storage.ErrInvalidKey, "Put %q", key)
		_, _, err = s.Get(ctx, key)
		require.ErrorIs(t, err, storage.ErrInvalidKey, "Get %q", key)
		_, err = s.Stat(ctx, key)
		require.ErrorIs(t, err, storage.ErrInvalidKey, "Stat %q", key)
		require.ErrorIs(t, s.Delete(ctx, key), storage.ErrInvalidKey, "Delete %q", key)
		_, err = s.URL(ctx, key, time.Minute)
		require.ErrorIs(t, err, storage.ErrInvalidKey, "URL %q", key)
	}
}

func testInvalidOptions(t *testing.T, s storage.Store) {
	_, err := s.Put(ctxFor(t), "opts", strings.NewReader("x"), storage.PutOptions{Metadata: map[string]string{"sha256": "forged"}})
	require.ErrorIs(t, err, storage.ErrInvalidOptions)
	_, err = s.Put(ctxFor(t), "opts", strings.NewReader("x"), storage.PutOptions{ContentType: "text/plain\r\nX-Injected: 1"})
	require.ErrorIs(t, err, storage.ErrInvalidOptions)
	requireNotFound(t, s, "opts")
}

func testContextCanceledBefore(t *testing.T, s storage.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Put(ctx, "canceled", strings.NewReader("x"), storage.PutOptions{})
	require.ErrorIs(t, err, context.Canceled)
	requireNotFound(t, s, "canceled")

	put(t, s, "exists", []byte("x"), storage.PutOptions{})
	_, _, err = s.Get(ctx, "exists")
	require.ErrorIs(t, err, context.Canceled, "Get")
	_, err = s.Stat(ctx, "exists")
	require.ErrorIs(t, err, context.Canceled, "Stat")
	require.ErrorIs(t, s.Delete(ctx, "exists"), context.Canceled, "Delete")
	require.ErrorIs(t, s.Ping(ctx), context.Canceled, "Ping")
	// Nothing was deleted by the canceled Delete.
	got, _ := get(t, s, "exists")
	require.Equal(t, "x", string(got))
}

func testContextCanceledDuringPut(t *testing.T, s storage.Store) {
	// The reader cancels the context once it has produced cancelAt bytes: some
	// parts may be on their way, none of the object may appear.
	for _, cancelAt := range []int64{1000, 9 << 20} {
		for _, key := range []string{fmt.Sprintf("midway/new-%d", cancelAt), fmt.Sprintf("midway/old-%d", cancelAt)} {
			old := strings.HasPrefix(key, "midway/old")
			if old {
				put(t, s, key, []byte("previous"), storage.PutOptions{})
			}
			ctx, cancel := context.WithCancel(t.Context())
			r := &cancelingReader{r: NewReader(7, 12<<20), at: cancelAt, cancel: cancel}
			_, err := s.Put(ctx, key, r, storage.PutOptions{})
			cancel()
			require.ErrorIs(t, err, context.Canceled, "Put %q", key)
			if old {
				got, obj := get(t, s, key)
				require.Equal(t, "previous", string(got))
				require.Equal(t, sha([]byte("previous")), obj.SHA256)
			} else {
				requireNotFound(t, s, key)
			}
		}
	}
}

type cancelingReader struct {
	r      io.Reader
	n, at  int64
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n >= c.at {
		c.cancel()
	}
	return n, err
}

func testURLFetchable(t *testing.T, s storage.Store) {
	data := Bytes(8, 50_000)
	for _, key := range []string{"url/plain.png", "url/with space/ünï cødé #1?.png"} {
		put(t, s, key, data, storage.PutOptions{ContentType: "image/png"})
		u, err := s.URL(ctxFor(t), key, 5*time.Minute)
		require.NoError(t, err, "URL %q (a store under test must be able to hand out URLs)", key)
		req, err := http.NewRequestWithContext(ctxFor(t), http.MethodGet, u, nil)
		require.NoError(t, err, "URL %q", u)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", u, body)
		require.True(t, bytes.Equal(data, body), "GET %s returned other content", u)
	}
	// The default TTL works as well.
	u, err := s.URL(ctxFor(t), "url/plain.png", 0)
	require.NoError(t, err)
	require.NotEmpty(t, u)
}

func testConcurrentPuts(t *testing.T, s storage.Store) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			data := Bytes(uint64(100+i), 30_000+i)
			_, errs[i] = s.Put(ctxFor(t), fmt.Sprintf("conc/%d/out.png", i), bytes.NewReader(data), storage.PutOptions{})
		})
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "Put %d", i)
		got, obj := get(t, s, fmt.Sprintf("conc/%d/out.png", i))
		want := Bytes(uint64(100+i), 30_000+i)
		require.Equal(t, want, got, "object %d", i)
		require.Equal(t, sha(want), obj.SHA256)
	}
}

func testConcurrentPutsSameKey(t *testing.T, s storage.Store) {
	const n = 6
	contents := make(map[string][]byte, n)
	for i := range n {
		data := Bytes(uint64(200+i), 10_000+i)
		contents[sha(data)] = data
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, data := range contents {
		wg.Go(func() {
			_, err := s.Put(ctxFor(t), "same/key.png", bytes.NewReader(data), storage.PutOptions{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// The last writer wins whole: the content is one of the writes, and a
	// SHA-256, when the store reports one, matches that content.
	got, obj := get(t, s, "same/key.png")
	_, ok := contents[sha(got)]
	require.True(t, ok, "content after concurrent puts is none of the written ones (%d bytes)", len(got))
	require.Equal(t, int64(len(got)), obj.Size)
	if obj.SHA256 != "" {
		require.Equal(t, sha(got), obj.SHA256)
	}
}

func testUnusualKeys(t *testing.T, s storage.Store) {
	for i, key := range []string{
		"spaces in/a name.png",
		"ünïcødé/画像.webp",
		"emoji/🦊.png",
		"symbols/a+b=c&d;e,f@g$h!i'j(k)l~m.png",
		"percent/100%.png",
		"query-like/a?b=c#frag.png",
		".hidden/.dotfile",
		"a.b/c..d/...e",
		"deep/" + strings.Repeat("d/", 30) + "leaf.bin",
		storage.SanitizeName("../../etc/passwd"),
	} {
		data := []byte(fmt.Sprintf("content %d", i))
		put(t, s, key, data, storage.PutOptions{})
		got, obj := get(t, s, key)
		require.Equal(t, data, got, "key %q", key)
		require.Equal(t, key, obj.Key)
		require.NoError(t, s.Delete(ctxFor(t), key))
		requireNotFound(t, s, key)
	}
}

func testPingAndString(t *testing.T, s storage.Store) {
	require.NoError(t, s.Ping(ctxFor(t)))
	str := s.String()
	require.NotEmpty(t, str)
	require.Contains(t, str, "://")
	for _, secret := range []string{"AWS_SECRET_ACCESS_KEY", "secret="} {
		require.NotContains(t, str, secret)
	}
}
