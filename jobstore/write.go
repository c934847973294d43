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
// the filter sets and publishes the events. It is the whole write of Update,
// UpdateSteps and RecordDelivery: no WATCH, no read before the write when the caller
// has the record.
//
// KEYS: the record, then the filter sets the job leaves, then those it joins.
// ARGV:
//
//	1 SHA-1 (hex) of the record the change was made to
//	2 the new record
//	3 TTL in seconds, or "" to keep the record's
//	4 the event channel
//	5 job id, 6 its score (creation, Unix ms), 7 the score below which filter-set
//	  entries are past the retention, 8 how many KEYS after the record are left
//	9 how many states follow: the states the record may be in (job.From of the
//	  first step's state); none: any
//	then the events, two arguments each: the event up to its job, and the job ("":
//	the new record); each is published as prefix .. job .. "}"
//
// It returns {"ok"}, {"missing"}, {"changed", current record} or {"refused", current
// record} (the record is not in one of the states named).
var writeScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return {'missing'} end
if redis.sha1hex(cur) ~= ARGV[1] then return {'changed', cur} end
local nfrom = tonumber(ARGV[9])
if nfrom > 0 then
  local st = string.match(cur, '^{"id":"[^"]*","status":"([a-z]+)"')
  local allowed = false
  for i = 10, 9 + nfrom do
    if ARGV[i] == st then allowed = true break end
  end
  if not allowed then return {'refused', cur} end
end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
local leave = tonumber(ARGV[8])
for i = 2, 1 + leave do
  redis.call('ZREM', KEYS[i], ARGV[5])
end
for i = 2 + leave, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[6], ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[7])
  redis.call('EXPIRE', KEYS[i], ARGV[3])
end
for i = 10 + nfrom, #ARGV, 2 do
  local body = ARGV[i + 1]
  if body == '' then body = ARGV[2] end
  redis.call('PUBLISH', ARGV[4], ARGV[i] .. body .. '}')
end
return {'ok'}
`)

// maxWriteTries bounds how often a write starts again on a record that changed under
// it (another writer in between).
const maxWriteTries = 50

// change is one write of a record through writeScript.
type change struct {
	id         string
	base, next []byte // the record changed, and the new record
	// before and after place the job in the filter sets (indexKeys); before holds
	// only the fields that do.
	before, after *job.Job
	keepTTL       bool
	// from is the state the first step moved the job to: the script checks that the
	// record may move there (job.From); "" for no check.
	from               job.Status
	events             []event
	score, cutoff, ttl string
}

// event is one event a write publishes: its kind and the record it carries (nil: the
// new record).
type event struct {
	kind string
	job  []byte
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
	args := []any{hex.EncodeToString(sum[:]), c.next, ttl, eventsKey(c.id), c.id, c.score, c.cutoff, len(leave)}
	var from []job.Status
	if c.from != "" {
		from = job.From(c.from)
	}
	args = append(args, len(from))
	for _, st := range from {
		args = append(args, string(st))
	}
	now := time.Now()
	for _, e := range c.events {
		args = append(args, eventPrefix(e.kind, now), e.job)
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
	js, err := s.UpdateSteps(ctx, id, fn)
	if len(js) == 0 {
		return nil, err
	}
	return js[0], err
}

// UpdateSteps is Update for changes that happen in the same moment (a prompt found
// finished: running, then uploading): it applies each step to the record in turn and
// writes the result in one round trip, publishing one event per step, in order. It
// returns the record after each step. A step returning ErrSkip changes nothing and
// publishes nothing; if every step skips, nothing is written. The state machine holds
// for each step.
func (s *Store) UpdateSteps(ctx context.Context, id string, steps ...UpdateFunc) ([]*job.Job, error) {
	raw, err := s.base(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make([]*job.Job, len(steps))
	for range maxWriteTries {
		// cur is the record as of the last step; each step changes a copy of it
		// decoded from curRaw, its JSON (cheaper than job.Clone, which encodes it
		// first), but the first, which changes the record decoded here: it is nobody
		// else's yet.
		cur, err := decode(id, raw)
		if err != nil {
			return nil, err
		}
		if cur.Status.Terminal() {
			for i := range out {
				out[i] = cur
			}
			return out, job.ErrTerminal
		}
		first := cur.Status
		c := change{id: id, base: raw, before: indexed(cur)}
		curRaw, shared := raw, false
		for i, fn := range steps {
			if cur.Status.Terminal() { // a step after one that ended the job
				out[i], shared = cur, true
				continue
			}
			next := cur
			if shared {
				if next, err = decode(id, curRaw); err != nil {
					return nil, err
				}
			}
			kind, stepErr := apply(id, stateOf(cur), next, fn)
			if stepErr != nil {
				if !shared { // fn may have changed cur itself: read it again
					if cur, err = decode(id, curRaw); err != nil {
						return nil, err
					}
				}
				out[i], shared = cur, true
				if errors.Is(stepErr, ErrSkip) {
					continue
				}
				return out, stepErr
			}
			if c.from == "" {
				c.from = next.Status
			}
			data, mErr := json.Marshal(next)
			if mErr != nil {
				return nil, fmt.Errorf("jobstore: update %s: %w", id, mErr)
			}
			c.events = append(c.events, event{kind: kind, job: data})
			c.next, out[i], cur, curRaw, shared = data, next, next, data, true
		}
		if len(c.events) == 0 {
			return out, nil
		}
		c.events[len(c.events)-1].job = nil // the record itself: sent once
		c.after = cur
		c.score, c.cutoff, c.ttl = s.scores(cur)
		res, err := s.run(ctx, c)
		if err != nil {
			return out, fmt.Errorf("jobstore: update %s: %w", id, err)
		}
		switch res.outcome {
		case "ok":
			s.cache.put(id, c.next)
			return out, nil
		case "changed":
			raw = res.current
			s.cache.put(id, raw)
		case "missing":
			s.cache.drop(id)
			return nil, job.ErrNotFound
		default:
			return out, fmt.Errorf("jobstore: update %s: Redis refused %s → %s: %s", id, first, c.from, res.outcome)
		}
	}
	return nil, job.ErrConflict
}

// state is what a step's event kind and the state machine are judged on: the
// record before the step.
type state struct {
	status           job.Status
	attempt, outputs int
	failed, cancel   bool
}

func stateOf(j *job.Job) state {
	return state{status: j.Status, attempt: j.Attempt, outputs: len(j.Outputs), failed: j.Error != nil, cancel: j.CancelRequested}
}

// indexed is the part of j that places it in the filter sets (indexKeys).
func indexed(j *job.Job) *job.Job {
	return &job.Job{Status: j.Status, Queue: j.Queue, Template: j.Template, Tenant: j.Tenant}
}

// apply runs one step on j, a copy of the record that was in state prev, and settles
// the state: the kind of the step's event.
func apply(id string, prev state, j *job.Job, fn UpdateFunc) (string, error) {
	if err := fn(j); err != nil {
		return "", err
	}
	settled, ok := prev.status.Settle(j.Status)
	if !ok {
		return "", fmt.Errorf("jobstore: update %s: %q is not a job state", id, j.Status)
	}
	j.Status = settled
	kind := job.EventStatus
	if j.Status == prev.status && j.Attempt == prev.attempt && len(j.Outputs) == prev.outputs &&
		j.Error == nil && !prev.failed && j.CancelRequested == prev.cancel {
		kind = job.EventProgress
	}
	return kind, nil
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
		// No event: deliveries are not changes of the job's state.
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
