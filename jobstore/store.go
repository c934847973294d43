package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/job"
)

// KeyPrefix prefixes every Redis key comfyq writes (asynq keeps its own "asynq:" keys).
const KeyPrefix = "comfyq:"

// DefaultRetention is how long a job record is kept after its last change.
const DefaultRetention = 7 * 24 * time.Hour

// Config configures a Store.
type Config struct {
	// Retention is how long a job record lives after its last update (default 7 days).
	Retention time.Duration
	// Hub delivers the live events Watch streams. Default: a Hub of the store's own,
	// started on the first Watch and stopped by Close. Give one Hub to every Store of a
	// process so that the process holds one pattern subscription.
	Hub *Hub
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Store keeps job records in Redis and publishes their live events.
type Store struct {
	rdb       redis.UniversalClient
	retention time.Duration
	log       *slog.Logger

	hubOnce sync.Once
	hub     *Hub
	ownsHub bool

	cache   recordCache
	indexed atomic.Bool // the filter sets are known to hold every job (backfill done)

	backfillOnce sync.Once
	stopBackfill context.CancelFunc
	backfillDone chan struct{}
}

// New returns a Store on rdb.
func New(rdb redis.UniversalClient, cfg Config) *Store {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Store{rdb: rdb, retention: cfg.Retention, log: cfg.Logger, hub: cfg.Hub}
}

// Hub returns the hub Watch uses, starting the store's own if none was given; nil once
// the store is closed without having started one.
func (s *Store) Hub() *Hub {
	s.hubOnce.Do(func() {
		if s.hub == nil {
			s.hub = NewHub(s.rdb, HubConfig{Logger: s.log})
			s.ownsHub = true
		}
	})
	return s.hub
}

// Close stops the store's own hub, if it started one, and a backfill it runs; a Hub
// given in Config is the caller's to close. It does not close the Redis client.
func (s *Store) Close() error {
	s.hubOnce.Do(func() {}) // no hub starts after Close
	if s.ownsHub {
		s.hub.Close()
	}
	s.backfillOnce.Do(func() {}) // no backfill starts after Close
	if s.stopBackfill != nil {
		s.stopBackfill()
		<-s.backfillDone
	}
	return nil
}

// Redis returns the client the store uses.
func (s *Store) Redis() redis.UniversalClient { return s.rdb }

func jobKey(id string) string    { return KeyPrefix + "job:" + id }
func idemKey(k string) string    { return KeyPrefix + "idem:" + k }
func eventsKey(id string) string { return KeyPrefix + "events:" + id }

// createScript writes a new job record atomically, honouring an idempotency key, lists
// it in the index and its filter sets and publishes its first event: one round trip.
// KEYS: idem key ("" for none), job key, index, then the filter sets. ARGV: id, json,
// ttl seconds, score, the score below which index entries are past the retention
// (trimmed on the way), the event channel and the event up to its job (see
// writeScript). It returns the id of the job the key already names, or the new id.
var createScript = redis.NewScript(`
if KEYS[1] ~= "" then
  local existing = redis.call('GET', KEYS[1])
  if existing then return existing end
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
end
if redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3], 'NX') == false then
  return redis.error_reply('job exists')
end
for i = 3, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[4], ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[5])
  if i > 3 then redis.call('EXPIRE', KEYS[i], ARGV[3]) end
end
redis.call('PUBLISH', ARGV[6], ARGV[7] .. ARGV[2] .. '}')
return ARGV[1]
`)

// Create stores a new job record. With a non-empty idempotency key that already names a
// job, it stores nothing and returns that job with created false.
func (s *Store) Create(ctx context.Context, j *job.Job, idempotencyKey string) (*job.Job, bool, error) {
	if !job.ValidID(j.ID) {
		return nil, false, fmt.Errorf("jobstore: create: invalid id %q", j.ID)
	}
	data, err := json.Marshal(j)
	if err != nil {
		return nil, false, fmt.Errorf("jobstore: create: %w", err)
	}
	keys, args := s.createCall(j, data, idempotencyKey)
	got, err := createScript.Run(ctx, s.rdb, keys, args...).Text()
	if err != nil {
		return nil, false, fmt.Errorf("jobstore: create %s: %w", j.ID, err)
	}
	if got != j.ID {
		existing, err := s.Get(ctx, got)
		if err != nil {
			return nil, false, fmt.Errorf("jobstore: idempotency key names job %s: %w", got, err)
		}
		return existing, false, nil
	}
	s.cache.put(j.ID, data)
	return j, true, nil
}

// createCall returns the keys and arguments of createScript for job j (JSON data).
func (s *Store) createCall(j *job.Job, data []byte, idempotencyKey string) ([]string, []any) {
	ik := ""
	if idempotencyKey != "" {
		ik = idemKey(idempotencyKey)
	}
	ttl := strconv.FormatInt(int64(s.retention/time.Second), 10)
	score := strconv.FormatInt(j.CreatedAt.UnixMilli(), 10)
	cutoff := strconv.FormatInt(j.CreatedAt.Add(-s.retention).UnixMilli(), 10)
	keys := append([]string{ik, jobKey(j.ID), indexKey}, indexKeys(j)...)
	return keys, []any{j.ID, data, ttl, score, cutoff, eventsKey(j.ID), eventPrefix(job.EventStatus, time.Now())}
}

// Get returns the job record, or job.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*job.Job, error) {
	if !job.ValidID(id) {
		return nil, job.ErrNotFound
	}
	return s.read(id, s.rdb.Get(ctx, jobKey(id)))
}

// Fetch is Get in a pipeline of the caller's: it queues the read of the record on p
// and returns the function that gives the record once p has run.
func (s *Store) Fetch(ctx context.Context, p redis.Pipeliner, id string) func() (*job.Job, error) {
	if !job.ValidID(id) {
		return func() (*job.Job, error) { return nil, job.ErrNotFound }
	}
	cmd := p.Get(ctx, jobKey(id))
	return func() (*job.Job, error) { return s.read(id, cmd) }
}

// read decodes the record a GET answered and keeps its bytes as the base of the next
// write.
func (s *Store) read(id string, cmd *redis.StringCmd) (*job.Job, error) {
	data, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, job.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("jobstore: get %s: %w", id, err)
	}
	j, err := decode(id, data)
	if err != nil {
		return nil, err
	}
	s.cache.put(id, data)
	return j, nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }
