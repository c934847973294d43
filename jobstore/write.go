package jobstore

import (
	"context"
	"crypto/sha1" //nolint:gosec // a digest to compare with Redis's redis.sha1hex, not a security measure
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/job"
)

// writeScript replaces a record in one round trip, if it is still the record the
// caller changed, and in the same step checks the state machine, moves the job between
// the filter sets and publishes the event. It is the whole write of Update and
// RecordDelivery: no WATCH, no read before the write when the caller has the record.
//
// KEYS: the record, then the filter sets the job leaves, then those it joins.
// ARGV:
//
//	1 SHA-1 (hex) of the record the change was made to
//	2 the new record
//	3 TTL in seconds, or "" to keep the record's
//	4 the event channel, or "" for no event
//	5 the event up to its job (the event is ARGV[5] .. record .. "}")
//	6 job id, 7 its score (creation, Unix ms), 8 the score below which filter-set
//	  entries are past the retention, 9 how many KEYS after the record are left
//	10.. the states the record may be in (job.From of the new state); none: any
//
// It returns {"ok"}, {"missing"}, {"changed", current record} or {"refused", current
// record} (the record is not in one of the states ARGV[10..] names).
var writeScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return {'missing'} end
if redis.sha1hex(cur) ~= ARGV[1] then return {'changed', cur} end
if #ARGV >= 10 then
  local st = string.match(cur, '^{"id":"[^"]*","status":"([a-z]+)"')
  local allowed = false
  for i = 10, #ARGV do
    if ARGV[i] == st then allowed = true break end
  end
  if not allowed then return {'refused', cur} end
end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
local leave = tonumber(ARGV[9])
for i = 2, 1 + leave do
  redis.call('ZREM', KEYS[i], ARGV[6])
end
for i = 2 + leave, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[7], ARGV[6])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[8])
  redis.call('EXPIRE', KEYS[i], ARGV[3])
end
if ARGV[4] ~= '' then
  redis.call('PUBLISH', ARGV[4], ARGV[5] .. ARGV[2] .. '}')
end
return {'ok'}
`)

// maxWriteTries bounds how often a write starts again on a record that changed under
// it (another writer in between).
const maxWriteTries = 50

// change is one write of a record through writeScript.
type change struct {
	id                 string
	base, next         []byte // the record changed, and the new record
	before, after      *job.Job
	keepTTL            bool
	event              string // event kind, "" for none
	checkState         bool   // hand job.From(after.Status) to the script
	score, cutoff, ttl string
}

// writeResult is what the script answered: ok, missing, changed or refused, with the
// current record for the last two.
type writeResult struct {
	outcome string
	current []byte
}

func (s *Store) run(ctx context.Context, c change) (writeResult, error) {
	leave, join := moves(c.before, c.after)
	keys := make([]string, 0, 1+len(leave)+len(join))
	keys = append(keys, jobKey(c.id))
	keys = append(keys, leave...)
	keys = append(keys, join...)
	sum := sha1.Sum(c.base) //nolint:gosec // see the import
	ttl := c.ttl
	if c.keepTTL {
		ttl = ""
	}
	channel, prefix := "", ""
	if c.event != "" {
		channel = eventsKey(c.id)
		prefix = eventPrefix(c.event, time.Now())
	}
	args := []any{hex.EncodeToString(sum[:]), c.next, ttl, channel, prefix, c.id, c.score, c.cutoff, len(leave)}
	if c.checkState {
		for _, st := range job.From(c.after.Status) {
			args = append(args, string(st))
		}
	}
	res, err := writeScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return writeResult{}, err
	}
	if len(res) == 0 {
		return writeResult{}, errors.New("jobstore: write script answered nothing")
	}
	r := writeResult{outcome: res[0]}
	if len(res) > 1 {
		r.current = []byte(res[1])
	}
	return r, nil
}

// eventPrefix is a job.Event's JSON up to its job: the script appends the record.
func eventPrefix(kind string, at time.Time) string {
	k, _ := json.Marshal(kind)
	t, _ := json.Marshal(at.UTC())
	return `{"type":` + string(k) + `,"at":` + string(t) + `,"job":`
}

// base returns the record's bytes to change: the cached ones when this process has
// them, else read from Redis.
func (s *Store) base(ctx context.Context, id string) ([]byte, error) {
	if raw := s.cache.get(id); raw != nil {
		return raw, nil
	}
	if !job.ValidID(id) {
		return nil, job.ErrNotFound
	}
	raw, err := s.rdb.Get(ctx, jobKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, job.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("jobstore: get %s: %w", id, err)
	}
	return raw, nil
}

func decode(id string, raw []byte) (*job.Job, error) {
	var j job.Job
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("jobstore: decode %s: %w", id, err)
	}
	return &j, nil
}

func (s *Store) scores(j *job.Job) (score, cutoff, ttl string) {
	return strconv.FormatInt(j.CreatedAt.UnixMilli(), 10),
		strconv.FormatInt(time.Now().Add(-s.retention).UnixMilli(), 10),
		strconv.FormatInt(int64(s.retention/time.Second), 10)
}

// UpdateFunc changes a job record in place. Returning ErrSkip leaves the record as it was.
type UpdateFunc func(j *job.Job) error

// ErrSkip, returned by an UpdateFunc, makes Update write nothing and return no error.
var ErrSkip = errors.New("jobstore: skip update")

// Update applies fn to the record and writes it back atomically, in one round trip to
// Redis when this process has the record's current bytes (it read or wrote it last),
// two otherwise; a concurrent writer makes fn run again on the record it wrote. The
// state machine (job.Status.Settle) holds: a terminal record is never changed (Update
// returns it and job.ErrTerminal), a canceling job stays canceling until it ends. The
// change is published on the job's event channel, as a progress event when only
// Progress changed, else a status event.
func (s *Store) Update(ctx context.Context, id string, fn UpdateFunc) (*job.Job, error) {
	raw, err := s.base(ctx, id)
	if err != nil {
		return nil, err
	}
	for range maxWriteTries {
		j, err := decode(id, raw)
		if err != nil {
			return nil, err
		}
		if j.Status.Terminal() {
			return j, job.ErrTerminal
		}
		before := j.Clone()
		if fnErr := fn(j); fnErr != nil {
			if errors.Is(fnErr, ErrSkip) {
				return before, nil
			}
			return before, fnErr
		}
		settled, ok := before.Status.Settle(j.Status)
		if !ok {
			return before, fmt.Errorf("jobstore: update %s: %q is not a job state", id, j.Status)
		}
		j.Status = settled
		kind := job.EventStatus
		if j.Status == before.Status && j.Attempt == before.Attempt && len(j.Outputs) == len(before.Outputs) &&
			j.Error == nil && before.Error == nil && j.CancelRequested == before.CancelRequested {
			kind = job.EventProgress
		}
		next, err := json.Marshal(j)
		if err != nil {
			return nil, fmt.Errorf("jobstore: update %s: %w", id, err)
		}
		c := change{id: id, base: raw, next: next, before: before, after: j, event: kind, checkState: true}
		c.score, c.cutoff, c.ttl = s.scores(j)
		res, err := s.run(ctx, c)
		if err != nil {
			return j, fmt.Errorf("jobstore: update %s: %w", id, err)
		}
		switch res.outcome {
		case "ok":
			s.cache.put(id, next)
			return j, nil
		case "changed":
			raw = res.current
			s.cache.put(id, raw)
		case "missing":
			s.cache.drop(id)
			return nil, job.ErrNotFound
		default:
			return before, fmt.Errorf("jobstore: update %s: Redis refused %s → %s: %s", id, before.Status, j.Status, res.outcome)
		}
	}
	return nil, job.ErrConflict
}

// RecordDelivery adds or replaces (by ID) an entry of the job's webhook delivery log.
// Unlike Update it also writes terminal records: deliveries go on after a job ends. It
// changes nothing else, keeps the record's expiry and publishes no event.
func (s *Store) RecordDelivery(ctx context.Context, id string, d job.Delivery) error {
	raw, err := s.base(ctx, id)
	if err != nil {
		return err
	}
	for range maxWriteTries {
		j, err := decode(id, raw)
		if err != nil {
			return err
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
		next, err := json.Marshal(j)
		if err != nil {
			return fmt.Errorf("jobstore: record delivery %s: %w", id, err)
		}
		res, err := s.run(ctx, change{id: id, base: raw, next: next, keepTTL: true})
		if err != nil {
			return fmt.Errorf("jobstore: record delivery %s: %w", id, err)
		}
		switch res.outcome {
		case "ok":
			s.cache.put(id, next)
			return nil
		case "changed":
			raw = res.current
			s.cache.put(id, raw)
		default:
			s.cache.drop(id)
			return job.ErrNotFound
		}
	}
	return job.ErrConflict
}
