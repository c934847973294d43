package quota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrFull is returned by InFlight.Reserve when the key has as many jobs in flight as
// its quota allows.
var ErrFull = errors.New("quota: too many jobs in flight")

// reserveTTL is how long a reservation holds a place before its job is recorded: a
// submission that dies in between gives its place back after this long.
const reserveTTL = time.Minute

// reserveScript adds a member to a key's in-flight set if it has room. KEYS: the set.
// ARGV: max, member, now (ms), reservation ttl (ms), job key prefix. When the set is
// full, members whose job records ended or are gone are dropped first; a reservation
// ("r:…") counts until its ttl passes. Returns 1 when added, 0 when full.
var reserveScript = redis.NewScript(`
local max = tonumber(ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= max then
  local now = tonumber(ARGV[3])
  local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #members, 2 do
    local m = members[i]
    local score = tonumber(members[i + 1])
    local live = true
    if string.sub(m, 1, 2) == 'r:' then
      live = now - score < tonumber(ARGV[4])
    else
      local rec = redis.call('GET', ARGV[5] .. m)
      if not rec then
        live = false
      else
        local st = string.match(rec, '"status":"(%a+)"')
        live = st ~= 'succeeded' and st ~= 'failed' and st ~= 'canceled'
      end
    end
    if not live then redis.call('ZREM', KEYS[1], m) end
  end
  if redis.call('ZCARD', KEYS[1]) >= max then return 0 end
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
return 1
`)

// InFlight counts the jobs of each key that have not ended.
type InFlight struct {
	rdb       redis.UniversalClient
	jobPrefix string
}

// NewInFlight returns an InFlight on rdb. jobPrefix is the Redis key prefix of job
// records ("comfyq:job:"), read to find the jobs that ended.
func NewInFlight(rdb redis.UniversalClient, jobPrefix string) *InFlight {
	return &InFlight{rdb: rdb, jobPrefix: jobPrefix}
}

// Reservation holds a place in a key's in-flight set until Commit names its job or
// Release gives it back.
type Reservation struct {
	f      *InFlight
	set    string
	member string
}

func (f *InFlight) setKey(id string) string { return "comfyq:quota:inflight:" + id }

// Reserve takes a place in id's in-flight set of at most max, atomically: concurrent
// submissions never take more places than max. It returns ErrFull when there is none.
// A max of 0 or less is no limit (a Reservation that does nothing).
func (f *InFlight) Reserve(ctx context.Context, id string, limit int) (*Reservation, error) {
	if limit <= 0 {
		return &Reservation{}, nil
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	r := &Reservation{f: f, set: f.setKey(id), member: "r:" + hex.EncodeToString(b)}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	n, err := reserveScript.Run(ctx, f.rdb, []string{r.set}, limit, r.member, now, reserveTTL.Milliseconds(), f.jobPrefix).Int()
	if err != nil {
		return nil, fmt.Errorf("quota: in flight: %w", err)
	}
	if n == 0 {
		return nil, ErrFull
	}
	return r, nil
}

// Commit turns the reservation into its job's place: the place is given back when the
// job ends.
func (r *Reservation) Commit(ctx context.Context, jobID string) error {
	if r.f == nil {
		return nil
	}
	_, err := r.f.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, r.set, r.member)
		p.ZAdd(ctx, r.set, redis.Z{Score: float64(time.Now().UnixMilli()), Member: jobID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("quota: in flight: %w", err)
	}
	return nil
}

// Release gives the place back (the submission was refused).
func (r *Reservation) Release(ctx context.Context) {
	if r.f == nil {
		return
	}
	_ = r.f.rdb.ZRem(ctx, r.set, r.member).Err()
}

// Count returns how many places of id's set are taken, without pruning.
func (f *InFlight) Count(ctx context.Context, id string) (int64, error) {
	return f.rdb.ZCard(ctx, f.setKey(id)).Result()
}
