package quota

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// bucketScript takes one token of a bucket. KEYS: the bucket (hash: tokens, ts).
// ARGV: rate per second, size. The time is Redis's own (TIME), the one clock every
// replica shares. It returns {1, 0} when a token was taken, else {0, ms until one is
// back}.
var bucketScript = redis.NewScript(`
local rate = tonumber(ARGV[1])
local size = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens, ts = size, now
end
if now > ts then
  tokens = math.min(size, tokens + (now - ts) * rate / 1000)
  ts = now
end
local ttl = math.ceil(size / rate * 1000) + 1000
if tokens >= 1 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', ts)
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {1, 0}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', ts)
redis.call('PEXPIRE', KEYS[1], ttl)
return {0, math.ceil((1 - tokens) * 1000 / rate)}
`)

// Limiter is a token bucket per key in Redis.
type Limiter struct {
	rdb redis.UniversalClient
}

// NewLimiter returns a Limiter on rdb.
func NewLimiter(rdb redis.UniversalClient) *Limiter { return &Limiter{rdb: rdb} }

// Allow takes a token of id's bucket, which holds size tokens and refills at rate per
// second. It reports whether a token was taken and, when not, how long until one is.
// A rate of 0 or less is no limit.
func (l *Limiter) Allow(ctx context.Context, id string, rate float64, size int) (bool, time.Duration, error) {
	if rate <= 0 {
		return true, 0, nil
	}
	size = max(size, 1)
	res, err := bucketScript.Run(ctx, l.rdb, []string{"comfyq:quota:rate:" + id},
		strconv.FormatFloat(rate, 'f', -1, 64), size).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("quota: rate limit: %w", err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("quota: rate limit: unexpected answer %v", res)
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(min(res[1], math.MaxInt32)) * time.Millisecond, nil
}
