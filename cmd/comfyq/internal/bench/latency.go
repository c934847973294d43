package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/comfyq/comfyq/internal/retry"
	"github.com/comfyq/comfyq/storage"
)

// LatencyStore is a storage.Store that waits a fixed time before each request to the
// store it wraps, like the round trip to a remote object store: Put, Get, Stat, Delete
// and Ping each count as one request. URL does not (presigning is local).
type LatencyStore struct {
	storage.Store
	// Latency is waited before each request.
	Latency time.Duration
}

// WithLatency wraps s so that each of its requests first waits d. d <= 0 returns s.
func WithLatency(s storage.Store, d time.Duration) storage.Store {
	if d <= 0 {
		return s
	}
	return &LatencyStore{Store: s, Latency: d}
}

func (l *LatencyStore) wait(ctx context.Context) error { return retry.Sleep(ctx, l.Latency) }

// Put waits, then puts.
func (l *LatencyStore) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Object, error) {
	if err := l.wait(ctx); err != nil {
		return storage.Object{}, err
	}
	return l.Store.Put(ctx, key, r, opts)
}

// Get waits, then gets.
func (l *LatencyStore) Get(ctx context.Context, key string) (io.ReadCloser, storage.Object, error) {
	if err := l.wait(ctx); err != nil {
		return nil, storage.Object{}, err
	}
	return l.Store.Get(ctx, key)
}

// Stat waits, then stats.
func (l *LatencyStore) Stat(ctx context.Context, key string) (storage.Object, error) {
	if err := l.wait(ctx); err != nil {
		return storage.Object{}, err
	}
	return l.Store.Stat(ctx, key)
}

// Delete waits, then deletes.
func (l *LatencyStore) Delete(ctx context.Context, key string) error {
	if err := l.wait(ctx); err != nil {
		return err
	}
	return l.Store.Delete(ctx, key)
}

// Ping waits, then pings.
func (l *LatencyStore) Ping(ctx context.Context) error {
	if err := l.wait(ctx); err != nil {
		return err
	}
	return l.Store.Ping(ctx)
}

// String names the wrapped store and the latency.
func (l *LatencyStore) String() string {
	return l.Store.String() + " (+" + l.Latency.String() + " per request)"
}

// latencyProxy is a reverse proxy that waits before forwarding each request, put in
// front of an S3 endpoint so that a real S3 client sees a remote store's round trips.
// Requests keep their Host header, so SigV4 signatures stay valid. (The fault proxy of
// the tests does more, but it is test machinery and stays out of the binary.)
type latencyProxy struct {
	rp       *httputil.ReverseProxy
	latency  atomic.Int64 // nanoseconds
	requests atomic.Int64
}

func newLatencyProxy(target string) (*latencyProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q: want http://host:port", target)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host
	}}
	return &latencyProxy{rp: rp}, nil
}

// SetLatency sets the wait before each forwarded request.
func (p *latencyProxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// Requests returns how many requests reached the proxy.
func (p *latencyProxy) Requests() int64 { return p.requests.Load() }

func (p *latencyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	if d := time.Duration(p.latency.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	p.rp.ServeHTTP(w, r)
}
