package jobstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/internal/retry"
	"github.com/comfyq/comfyq/job"
)

// eventsPrefix is the prefix of the per-job event channels, comfyq:events:{id}.
const eventsPrefix = KeyPrefix + "events:"

// HubConfig configures a Hub.
type HubConfig struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OnTerminal, if set, is called with every terminal status event the hub sees, for
	// any job, whether or not anyone here follows it (the API's metrics). It runs on the
	// hub's goroutine and must not block.
	OnTerminal func(*job.Job)
}

// Hub fans the live job events of Redis out to this process's watchers. One pattern
// subscription (PSUBSCRIBE comfyq:events:*) serves every watcher, instead of a Redis
// connection per watcher; events published by any producer or worker reach every
// process, so any process can follow any job.
type Hub struct {
	rdb        redis.UniversalClient
	log        *slog.Logger
	onTerminal func(*job.Job)

	mu   sync.Mutex
	subs map[string]map[*Subscription]struct{}

	ready     chan struct{} // closed once the pattern subscription is active
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// Subscription is one watcher's interest in one job. Events that do not fit its buffer
// are dropped and Lagged is signalled instead: the watcher then re-reads the record.
type Subscription struct {
	events chan job.Event
	lagged chan struct{}
	cancel func()
}

// Events delivers the job's events as published.
func (s *Subscription) Events() <-chan job.Event { return s.events }

// Lagged receives a value when events were dropped because Events was not read fast
// enough.
func (s *Subscription) Lagged() <-chan struct{} { return s.lagged }

// Close ends the subscription.
func (s *Subscription) Close() { s.cancel() }

// NewHub starts a hub on rdb; Close stops it.
func NewHub(rdb redis.UniversalClient, cfg HubConfig) *Hub {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		rdb:        rdb,
		log:        cfg.Logger,
		onTerminal: cfg.OnTerminal,
		subs:       map[string]map[*Subscription]struct{}{},
		ready:      make(chan struct{}),
		cancel:     cancel,
		done:       make(chan struct{}),
	}
	go h.run(ctx)
	return h
}

// Close stops the hub; closing twice is safe.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		h.cancel()
		<-h.done
	})
}

// WaitReady waits until the pattern subscription is active, so that an event published
// after it returns is not missed.
func (h *Hub) WaitReady(ctx context.Context) error {
	select {
	case <-h.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hub) run(ctx context.Context) {
	defer close(h.done)
	readyOnce := sync.OnceFunc(func() { close(h.ready) })
	subscribe := retry.Policy{
		Backoff: retry.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second},
		// A closed client never comes back: the hub ends with it.
		Retryable: func(err error) bool { return !errors.Is(err, redis.ErrClosed) },
		OnRetry: func(_ int, err error, wait time.Duration) {
			h.log.Warn("live events: cannot subscribe; retrying", "err", err, "in", wait)
		},
	}
	for ctx.Err() == nil {
		var ps *redis.PubSub
		err := retry.Do(ctx, subscribe, func(ctx context.Context) error {
			ps = h.rdb.PSubscribe(ctx, eventsPrefix+"*")
			if _, err := ps.Receive(ctx); err != nil {
				_ = ps.Close()
				return err
			}
			return nil
		})
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("live events: the Redis client is closed; the hub stops", "err", err)
			}
			return
		}
		readyOnce()
		// go-redis resubscribes by itself after a dropped connection; what is published
		// meanwhile is lost, which the watchers' periodic re-read covers.
		ch := ps.Channel(redis.WithChannelSize(1024))
		h.consume(ctx, ch)
		ps.Close()
	}
}

func (h *Hub) consume(ctx context.Context, ch <-chan *redis.Message) {
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			h.dispatch(m)
		}
	}
}

var statusPrefix = []byte(`{"type":"` + job.EventStatus + `"`)

func (h *Hub) dispatch(m *redis.Message) {
	id := strings.TrimPrefix(m.Channel, eventsPrefix)
	payload := []byte(m.Payload)
	isStatus := bytes.HasPrefix(payload, statusPrefix)
	h.mu.Lock()
	n := len(h.subs[id])
	h.mu.Unlock()
	// Progress events of jobs nobody here follows are skipped without decoding.
	if n == 0 && (!isStatus || h.onTerminal == nil) {
		return
	}
	var ev job.Event
	if json.Unmarshal(payload, &ev) != nil || ev.Job == nil || ev.Job.ID != id {
		return
	}
	if isStatus && ev.Job.Status.Terminal() && h.onTerminal != nil {
		h.onTerminal(ev.Job)
	}
	if n == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[id] {
		// Each watcher gets its own copy: watchers may change what they receive (the API
		// adds URLs to outputs).
		e := ev
		if len(h.subs[id]) > 1 {
			e.Job = ev.Job.Clone()
		}
		select {
		case s.events <- e:
		default:
			select {
			case s.lagged <- struct{}{}:
			default:
			}
		}
	}
}

// Watchers returns how many subscriptions follow the job in this process.
func (h *Hub) Watchers(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs[id])
}

// Subscribe registers interest in a job's events; Close the subscription when done.
// Call WaitReady first when no event may be missed.
func (h *Hub) Subscribe(id string) *Subscription {
	s := &Subscription{events: make(chan job.Event, 64), lagged: make(chan struct{}, 1)}
	h.mu.Lock()
	m := h.subs[id]
	if m == nil {
		m = map[*Subscription]struct{}{}
		h.subs[id] = m
	}
	m[s] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	s.cancel = func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs[id], s)
			if len(h.subs[id]) == 0 {
				delete(h.subs, id)
			}
			h.mu.Unlock()
		})
	}
	return s
}
