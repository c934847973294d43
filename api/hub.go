package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/job"
)

// eventsPrefix is the prefix of the per-job event channels, comfyq:events:{id}, as
// package job documents its Redis layout.
const eventsPrefix = job.KeyPrefix + "events:"

// hub fans the live job events of Redis out to this process's event streams. One
// pattern subscription (PSUBSCRIBE comfyq:events:*) serves every stream, instead of a
// Redis connection per open stream; events published by any producer or worker reach
// every API replica, so any replica can serve any job's stream.
//
// The hub also hands every terminal status event to observe (the metrics).
type hub struct {
	rdb     redis.UniversalClient
	log     *slog.Logger
	observe func(*job.Job)

	mu   sync.Mutex
	subs map[string]map[*subscriber]struct{}

	ready  chan struct{} // closed once the pattern subscription is active
	cancel context.CancelFunc
	done   chan struct{}
}

// subscriber is one stream's interest in one job. Events that do not fit its buffer
// are dropped and lagged is signalled instead: the stream then re-reads the record.
type subscriber struct {
	events chan job.Event
	lagged chan struct{}
}

func newHub(rdb redis.UniversalClient, log *slog.Logger, observe func(*job.Job)) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	h := &hub{
		rdb:     rdb,
		log:     log,
		observe: observe,
		subs:    map[string]map[*subscriber]struct{}{},
		ready:   make(chan struct{}),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go h.run(ctx)
	return h
}

func (h *hub) close() {
	h.cancel()
	<-h.done
}

// waitReady waits until the pattern subscription is active, so that an event published
// after it returns is not missed.
func (h *hub) waitReady(ctx context.Context) error {
	select {
	case <-h.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *hub) run(ctx context.Context) {
	defer close(h.done)
	readyOnce := sync.OnceFunc(func() { close(h.ready) })
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		ps := h.rdb.PSubscribe(ctx, eventsPrefix+"*")
		if _, err := ps.Receive(ctx); err != nil {
			ps.Close()
			if ctx.Err() != nil {
				return
			}
			h.log.Warn("live events: cannot subscribe; retrying", "err", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		readyOnce()
		// go-redis resubscribes by itself after a dropped connection; what is published
		// meanwhile is lost, which the streams' periodic re-read covers.
		ch := ps.Channel(redis.WithChannelSize(1024))
		h.consume(ctx, ch)
		ps.Close()
	}
}

func (h *hub) consume(ctx context.Context, ch <-chan *redis.Message) {
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

func (h *hub) dispatch(m *redis.Message) {
	id := strings.TrimPrefix(m.Channel, eventsPrefix)
	payload := []byte(m.Payload)
	isStatus := bytes.HasPrefix(payload, statusPrefix)
	h.mu.Lock()
	subs := h.subs[id]
	n := len(subs)
	h.mu.Unlock()
	// Progress events of jobs nobody here follows are skipped without decoding.
	if n == 0 && !isStatus {
		return
	}
	var ev job.Event
	if json.Unmarshal(payload, &ev) != nil || ev.Job == nil || ev.Job.ID != id {
		return
	}
	if isStatus && ev.Job.Status.Terminal() && h.observe != nil {
		h.observe(ev.Job)
	}
	if n == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[id] {
		select {
		case s.events <- ev:
		default:
			select {
			case s.lagged <- struct{}{}:
			default:
			}
		}
	}
}

// subscribe registers interest in a job's events; call cancel when done.
func (h *hub) subscribe(id string) (*subscriber, func()) {
	s := &subscriber{events: make(chan job.Event, 64), lagged: make(chan struct{}, 1)}
	h.mu.Lock()
	m := h.subs[id]
	if m == nil {
		m = map[*subscriber]struct{}{}
		h.subs[id] = m
	}
	m[s] = struct{}{}
	h.mu.Unlock()
	return s, func() {
		h.mu.Lock()
		delete(h.subs[id], s)
		if len(h.subs[id]) == 0 {
			delete(h.subs, id)
		}
		h.mu.Unlock()
	}
}
