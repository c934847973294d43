package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/worker"
)

const loadImageWorkflow = `{
 "1": {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}},
 "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
 "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "fetched"}}
}`

// A transient failure fetching an input (5xx) is retried within the attempt; a
// permanent one (4xx) fails the job with invalid_input after one attempt, before the
// prompt runs.
func TestInputFetchTransientRetriedPermanentInvalidInput(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{worker: func(c *worker.Config) { c.Inputs.AllowPrivate = true }})
	first := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)}).ID)
	require.Equal(t, job.StatusSucceeded, first.Status)
	pngBytes := b.output(t, first.Outputs[0])

	var fetches atomic.Int32
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/flaky.png":
			if fetches.Add(1) <= 2 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(pngBytes)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(src.Close)

	ok := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(loadImageWorkflow),
		Images: map[string]job.ImageSource{"1.inputs.image": {URL: src.URL + "/flaky.png"}}}).ID)
	require.Equal(t, job.StatusSucceeded, ok.Status, describe(ok))
	require.Equal(t, 1, ok.Attempt, "the fetch was retried inside the attempt")
	require.Equal(t, int32(3), fetches.Load())

	gone := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(loadImageWorkflow), MaxAttempts: 3,
		Images: map[string]job.ImageSource{"1.inputs.image": {URL: src.URL + "/missing.png"}}}).ID)
	require.Equal(t, job.StatusFailed, gone.Status)
	require.Equal(t, job.CodeInvalidInput, gone.Error.Code, describe(gone))
	require.Equal(t, 1, gone.Attempt, "a permanent input failure is not retried")
	require.Equal(t, 0, b.sim.Executions(gone.ID))
}

// An input whose bytes are not an image, video or audio file (an HTML page behind a
// .png URL, a data:text/html) fails the job with invalid_input before the prompt runs,
// whatever its name or Content-Type says.
func TestInputNotAnImageIsInvalidInput(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{worker: func(c *worker.Config) { c.Inputs.AllowPrivate = true }})
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write([]byte("<!DOCTYPE html><script>alert(document.cookie)</script>"))
	}))
	t.Cleanup(src.Close)
	for name, img := range map[string]job.ImageSource{
		"url":            {URL: src.URL + "/cat.png"},
		"data:text/html": {Base64: "data:text/html;base64,PGh0bWw+PC9odG1sPg=="},
		"base64 text":    {Base64: "aGVsbG8gd29ybGQ="},
	} {
		j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(loadImageWorkflow), MaxAttempts: 3,
			Images: map[string]job.ImageSource{"1.inputs.image": img}}).ID)
		require.Equal(t, job.StatusFailed, j.Status, name)
		require.Equal(t, job.CodeInvalidInput, j.Error.Code, "%s: %s", name, describe(j))
		require.Contains(t, j.Error.Message, "not an image", name)
		require.Equal(t, 1, j.Attempt, "%s: a bad input is not retried", name)
		require.Equal(t, 0, b.sim.Executions(j.ID), name)
	}
}

// flakyGets is a storage whose Get of an input key fails (before any byte, or after
// some) a given number of times before it answers, as a store that is briefly
// unreachable does.
type flakyGets struct {
	storage.Store
	mu    sync.Mutex
	fails map[string]int // key → failures left
	gets  map[string]int
	cut   bool // fail after the first bytes instead of at once
}

func (s *flakyGets) Get(ctx context.Context, key string) (io.ReadCloser, storage.Object, error) {
	s.mu.Lock()
	s.gets[key]++
	failing := s.fails[key] > 0
	if failing {
		s.fails[key]--
	}
	s.mu.Unlock()
	if !failing {
		return s.Store.Get(ctx, key)
	}
	if !s.cut {
		return nil, storage.Object{}, errors.New("storage: 503 SlowDown, please reduce your request rate")
	}
	body, o, err := s.Store.Get(ctx, key)
	if err != nil {
		return nil, o, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(body, 16), iotest.ErrReader(errors.New("connection reset by peer"))), body}, o, nil
}

func (s *flakyGets) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[key]
}

// A transient failure getting an input is retried inside the attempt, wherever it
// happens: a storage error before the first byte, a connection cut in the middle of
// the body (URL or storage), a URL whose body stalls past the fetch timeout.
func TestInputTransientFailuresRetried(t *testing.T) {
	t.Parallel()
	flaky := &flakyGets{fails: map[string]int{"inputs/flaky.png": 2}, gets: map[string]int{}}
	cut := &flakyGets{fails: map[string]int{"inputs/cut.png": 1}, gets: map[string]int{}, cut: true}
	b := setup(t, setupOpts{worker: func(c *worker.Config) {
		c.Inputs.AllowPrivate = true
		c.Inputs.Timeout = 500 * time.Millisecond
		flaky.Store = c.Storage
		cut.Store = flaky
		c.Storage = cut
	}})
	first := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)}).ID)
	require.Equal(t, job.StatusSucceeded, first.Status)
	pngBytes := b.output(t, first.Outputs[0])
	for _, key := range []string{"inputs/flaky.png", "inputs/cut.png"} {
		_, err := b.store.Put(b.ctx, key, bytes.NewReader(pngBytes), storage.PutOptions{ContentType: "image/png"})
		require.NoError(t, err)
	}

	var fetches sync.Map // path → *atomic.Int32
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := fetches.LoadOrStore(r.URL.Path, new(atomic.Int32))
		if n.(*atomic.Int32).Add(1) == 1 {
			switch r.URL.Path {
			case "/stalls.png": // the first bytes, then nothing until the timeout
				w.Header().Set("Content-Length", strconv.Itoa(len(pngBytes)))
				_, _ = w.Write(pngBytes[:16])
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
				return
			case "/cut.png": // the first bytes, then the connection closes
				conn, rw, err := w.(http.Hijacker).Hijack()
				require.NoError(t, err)
				fmt.Fprintf(rw, "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n", len(pngBytes))
				_, _ = rw.Write(pngBytes[:16])
				_ = rw.Flush()
				conn.Close()
				return
			}
		}
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(pngBytes)
	}))
	t.Cleanup(src.Close)

	for name, tc := range map[string]struct {
		img   job.ImageSource
		tries func() int
	}{
		"storage error":    {job.ImageSource{Key: "inputs/flaky.png"}, func() int { return flaky.count("inputs/flaky.png") }},
		"storage body cut": {job.ImageSource{Key: "inputs/cut.png"}, func() int { return cut.count("inputs/cut.png") }},
		"url body cut": {job.ImageSource{URL: src.URL + "/cut.png"}, func() int {
			n, _ := fetches.Load("/cut.png")
			return int(n.(*atomic.Int32).Load())
		}},
		"url body stalls": {job.ImageSource{URL: src.URL + "/stalls.png"}, func() int {
			n, _ := fetches.Load("/stalls.png")
			return int(n.(*atomic.Int32).Load())
		}},
	} {
		j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(loadImageWorkflow),
			Images: map[string]job.ImageSource{"1.inputs.image": tc.img}}).ID)
		require.Equal(t, job.StatusSucceeded, j.Status, "%s: %s", name, describe(j))
		require.Equal(t, 1, j.Attempt, "%s: retried inside the attempt", name)
		require.Equal(t, 1, b.sim.Executions(j.ID), name)
		want := 2
		if name == "storage error" {
			want = 3
		}
		require.Equal(t, want, tc.tries(), "%s: tries", name)
	}
}

// An input larger than the worker's limit fails the job with invalid_input after one
// try, before the prompt runs, whether the size is announced (Content-Length), only
// found while streaming (a chunked body), or that of an object in storage.
func TestInputTooLargeIsInvalidInput(t *testing.T) {
	t.Parallel()
	const limit = 4096
	b := setup(t, setupOpts{worker: func(c *worker.Config) {
		c.Inputs.AllowPrivate = true
		c.Inputs.MaxBytes = limit
	}})
	first := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)}).ID)
	require.Equal(t, job.StatusSucceeded, first.Status)
	// A PNG (its bytes sniff as one) followed by more than the limit of padding.
	big := append(b.output(t, first.Outputs[0]), make([]byte, 2*limit)...)
	_, err := b.store.Put(b.ctx, "inputs/big.png", bytes.NewReader(big), storage.PutOptions{ContentType: "image/png"})
	require.NoError(t, err)

	var fetches atomic.Int32
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "image/png")
		if r.URL.Path == "/chunked.png" { // no Content-Length: written in pieces
			for chunk := range slices.Chunk(big, 1024) {
				_, _ = w.Write(chunk)
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		_, _ = w.Write(big)
	}))
	t.Cleanup(src.Close)

	for name, img := range map[string]job.ImageSource{
		"url, Content-Length": {URL: src.URL + "/sized.png"},
		"url, chunked":        {URL: src.URL + "/chunked.png"},
		"storage key":         {Key: "inputs/big.png"},
	} {
		before := fetches.Load()
		j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(loadImageWorkflow), MaxAttempts: 3,
			Images: map[string]job.ImageSource{"1.inputs.image": img}}).ID)
		require.Equal(t, job.StatusFailed, j.Status, "%s: %s", name, describe(j))
		require.Equal(t, job.CodeInvalidInput, j.Error.Code, "%s: %s", name, describe(j))
		require.Regexp(t, `too large|larger than`, j.Error.Message, name)
		require.Equal(t, 1, j.Attempt, "%s: a too large input is not retried", name)
		require.Equal(t, 0, b.sim.Executions(j.ID), name)
		if img.URL != "" {
			require.Equal(t, int32(1), fetches.Load()-before, "%s: fetched once", name)
		}
	}
}
