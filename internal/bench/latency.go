package bench

import (
	"context"
	"io"
	"time"

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

func (l *LatencyStore) wait(ctx context.Context) error {
	t := time.NewTimer(l.Latency)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

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
