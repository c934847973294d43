package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
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

// Close stops the store's own hub, if it started one; a Hub given in Config is the
// caller's to close. It does not close the Redis client.
func (s *Store) Close() error {
	s.hubOnce.Do(func() {}) // no hub starts after Close
	if s.ownsHub {
		s.hub.Close()
	}
	return nil
}

// Redis returns the client the store uses.
func (s *Store) Redis() redis.UniversalClient { return s.rdb }

func jobKey(id string) string    { return KeyPrefix + "job:" + id }
func idemKey(k string) string    { return KeyPrefix + "idem:" + k }
func eventsKey(id string) string { return KeyPrefix + "events:" + id }

const indexKey = KeyPrefix + "jobs"

// createScript writes a new job record atomically, honouring an idempotency key.
// KEYS: idem key ("" for none), job key, index. ARGV: id, json, ttl seconds, score, and
// the score below which index entries are past the retention (trimmed on the way).
// It returns the id of the job the key already names, or the new id.
var createScript = redis.NewScript(`
if KEYS[1] ~= "" then
  local existing = redis.call('GET', KEYS[1])
  if existing then return existing end
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
end
if redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3], 'NX') == false then
  return redis.error_reply('job exists')
end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[5])
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
	ik := ""
	if idempotencyKey != "" {
		ik = idemKey(idempotencyKey)
	}
	ttl := strconv.FormatInt(int64(s.retention/time.Second), 10)
	score := strconv.FormatInt(j.CreatedAt.UnixMilli(), 10)
	cutoff := strconv.FormatInt(j.CreatedAt.Add(-s.retention).UnixMilli(), 10)
	got, err := createScript.Run(ctx, s.rdb, []string{ik, jobKey(j.ID), indexKey}, j.ID, data, ttl, score, cutoff).Text()
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
	s.publish(ctx, job.EventStatus, j)
	return j, true, nil
}

// Get returns the job record, or job.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*job.Job, error) {
	if !job.ValidID(id) {
		return nil, job.ErrNotFound
	}
	data, err := s.rdb.Get(ctx, jobKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, job.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("jobstore: get %s: %w", id, err)
	}
	var j job.Job
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("jobstore: decode %s: %w", id, err)
	}
	return &j, nil
}

// UpdateFunc changes a job record in place. Returning ErrSkip leaves the record as it was.
type UpdateFunc func(j *job.Job) error

// ErrSkip, returned by an UpdateFunc, makes Update write nothing and return no error.
var ErrSkip = errors.New("jobstore: skip update")

// Update reads the record, applies fn and writes it back atomically (optimistic locking:
// a concurrent writer makes it retry). A terminal record is never changed: Update returns
// the record and job.ErrTerminal. The change is published on the job's event channel, as a
// progress event when only Progress changed, else a status event.
func (s *Store) Update(ctx context.Context, id string, fn UpdateFunc) (*job.Job, error) {
	key := jobKey(id)
	var result *job.Job
	var kind string
	txf := func(tx *redis.Tx) error {
		data, err := tx.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return job.ErrNotFound
		}
		if err != nil {
			return err
		}
		var j job.Job
		if decErr := json.Unmarshal(data, &j); decErr != nil {
			return fmt.Errorf("jobstore: decode %s: %w", id, decErr)
		}
		if j.Status.Terminal() {
			result = &j
			return job.ErrTerminal
		}
		before := j.Clone()
		if fnErr := fn(&j); fnErr != nil {
			result = before
			return fnErr
		}
		if before.Status == job.StatusCanceling && !j.Status.Terminal() {
			// A canceling job only ends: no write of a worker takes it back.
			j.Status = job.StatusCanceling
		}
		kind = job.EventStatus
		if j.Status == before.Status && j.Attempt == before.Attempt && len(j.Outputs) == len(before.Outputs) &&
			j.Error == nil && before.Error == nil && j.CancelRequested == before.CancelRequested {
			kind = job.EventProgress
		}
		out, err := json.Marshal(&j)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, out, s.retention)
			return nil
		})
		result = &j
		return err
	}
	for i := 0; i < 50; i++ {
		err := s.rdb.Watch(ctx, txf, key)
		switch {
		case err == nil:
			s.publish(ctx, kind, result)
			return result, nil
		case errors.Is(err, redis.TxFailedErr):
			continue
		case errors.Is(err, ErrSkip):
			return result, nil
		default:
			return result, err
		}
	}
	return nil, job.ErrConflict
}

func (s *Store) publish(ctx context.Context, kind string, j *job.Job) {
	data, err := json.Marshal(job.Event{Type: kind, At: time.Now().UTC(), Job: j})
	if err != nil {
		return
	}
	// Events are hints for live streams; the record is the truth, so a failed publish is
	// not an error of the update.
	_ = s.rdb.Publish(ctx, eventsKey(j.ID), data).Err()
}

// List returns jobs newest first, and the cursor of the next page ("" at the end).
func (s *Store) List(ctx context.Context, opts job.ListOptions) ([]*job.Job, string, error) {
	if opts.Limit <= 0 {
		opts.Limit = 50
	}
	if opts.Limit > 500 {
		opts.Limit = 500
	}
	upper := "+inf"
	skipUntil := ""
	if opts.Cursor != "" {
		score, id, ok := strings.Cut(opts.Cursor, "_")
		if _, err := strconv.ParseInt(score, 10, 64); !ok || err != nil || !job.ValidID(id) {
			return nil, "", &job.SpecError{Code: job.CodeInvalidRequest, Field: "cursor", Message: "malformed cursor"}
		}
		upper, skipUntil = score, id
	}
	var out []*job.Job
	const batch = 200
	offset := int64(0)
	for len(out) < opts.Limit {
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, indexKey, &redis.ZRangeBy{Max: upper, Min: "-inf", Offset: offset, Count: batch}).Result()
		if err != nil {
			return nil, "", fmt.Errorf("jobstore: list: %w", err)
		}
		if len(zs) == 0 {
			return out, "", nil
		}
		offset += int64(len(zs))
		ids := make([]string, 0, len(zs))
		for _, z := range zs {
			ids = append(ids, z.Member.(string))
		}
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = jobKey(id)
		}
		vals, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, "", fmt.Errorf("jobstore: list: %w", err)
		}
		var gone []any
		for i, v := range vals {
			id := ids[i]
			if skipUntil != "" {
				if id == skipUntil {
					skipUntil = ""
				}
				continue
			}
			str, ok := v.(string)
			if !ok {
				gone = append(gone, id) // expired record
				continue
			}
			var j job.Job
			if json.Unmarshal([]byte(str), &j) != nil {
				continue
			}
			if (opts.Status != "" && j.Status != opts.Status) || (opts.Queue != "" && j.Queue != opts.Queue) ||
				(opts.Tenant != "" && j.Tenant != opts.Tenant) {
				continue
			}
			out = append(out, &j)
			if len(out) == opts.Limit {
				next := strconv.FormatInt(int64(zs[i].Score), 10) + "_" + id
				if len(gone) > 0 {
					s.rdb.ZRem(ctx, indexKey, gone...)
				}
				return out, next, nil
			}
		}
		if len(gone) > 0 {
			s.rdb.ZRem(ctx, indexKey, gone...)
		}
		if skipUntil != "" {
			// The cursor's own entry was not in this score range any more; start over
			// strictly below its score.
			skipUntil = ""
			score, _, _ := strings.Cut(opts.Cursor, "_")
			upper = "(" + score
			offset = 0
		}
	}
	return out, "", nil
}

// RecordDelivery adds or replaces (by ID) an entry of the job's webhook delivery log.
// Unlike Update it also writes terminal records: deliveries go on after a job ends. It
// changes nothing else and publishes no event.
func (s *Store) RecordDelivery(ctx context.Context, id string, d job.Delivery) error {
	key := jobKey(id)
	txf := func(tx *redis.Tx) error {
		data, err := tx.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return job.ErrNotFound
		}
		if err != nil {
			return err
		}
		var j job.Job
		if decErr := json.Unmarshal(data, &j); decErr != nil {
			return fmt.Errorf("jobstore: decode %s: %w", id, decErr)
		}
		replaced := false
		for i := range j.Webhooks {
			if j.Webhooks[i].ID == d.ID {
				j.Webhooks[i], replaced = d, true
			}
		}
		if !replaced {
			j.Webhooks = append(j.Webhooks, d)
		}
		out, err := json.Marshal(&j)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, out, redis.KeepTTL)
			return nil
		})
		return err
	}
	for i := 0; i < 50; i++ {
		err := s.rdb.Watch(ctx, txf, key)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return job.ErrConflict
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }
