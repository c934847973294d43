package delivery

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/jobstore"
)

// Redis keys of the delivery machinery, besides asynq's own. The parts of one
// (job, destination) pair share a hash tag, so that they live in one Redis
// Cluster slot and a script may touch them together.
//
//	comfyq:webhook:{<order key>}:seq       INCR counter: the next sequence number
//	comfyq:webhook:{<order key>}:pending   ZSET webhook-id → sequence number, of messages not yet delivered or given up
//	comfyq:webhook:{<order key>}:reserved  HASH webhook-id → unix ms when it was added
//	comfyq:webhook:first:<webhook-id>      unix ms of the message's first attempt (the horizon starts there)
//	comfyq:webhook:progress:<job id>       present while job.progress is rate-limited
func seqKey(ok string) string         { return jobstore.KeyPrefix + "webhook:{" + ok + "}:seq" }
func pendingKey(ok string) string     { return jobstore.KeyPrefix + "webhook:{" + ok + "}:pending" }
func reservedKey(ok string) string    { return jobstore.KeyPrefix + "webhook:{" + ok + "}:reserved" }
func firstKey(id string) string       { return jobstore.KeyPrefix + "webhook:first:" + id }
func progressKey(jobID string) string { return jobstore.KeyPrefix + "webhook:progress:" + jobID }

// orphanGrace is how long a pending message whose task cannot be found is
// still waited for: the dispatcher reserves its place just before it
// enqueues the task.
const orphanGrace = time.Minute

// reserveScript gives a message its place in the order of its (job,
// destination) pair. KEYS: seq, pending, reserved. ARGV: webhook-id, now ms,
// ttl ms. Returns {seq, added}: a message already pending keeps its place.
var reserveScript = redis.NewScript(`
local existing = redis.call('ZSCORE', KEYS[2], ARGV[1])
if existing then return {tonumber(existing), 0} end
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return {seq, 1}
`)

// reserve returns the sequence number of message id in its order, and
// whether it was added now (false: it was pending already).
func reserve(ctx context.Context, rdb redis.UniversalClient, ok, id string, ttl time.Duration) (int64, bool, error) {
	res, err := reserveScript.Run(ctx, rdb, []string{seqKey(ok), pendingKey(ok), reservedKey(ok)},
		id, time.Now().UnixMilli(), ttl.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, false, fmt.Errorf("webhook: reserve order: %w", err)
	}
	if len(res) != 2 {
		return 0, false, fmt.Errorf("webhook: reserve order: unexpected reply %v", res)
	}
	return res[0], res[1] == 1, nil
}

// release removes message id from the pending messages of its order: it was
// delivered or given up, and the next one may go.
func release(ctx context.Context, rdb redis.UniversalClient, ok, id string) error {
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, pendingKey(ok), id)
		p.HDel(ctx, reservedKey(ok), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("webhook: release order: %w", err)
	}
	return nil
}

// predecessorCheck decides whether a message may be sent now.
type predecessorCheck struct {
	rdb       redis.UniversalClient
	inspector *asynq.Inspector
	queue     string
	delay     time.Duration // how soon a waiting message looks again
	maxDelay  time.Duration // the longest wait before looking again
}

// maxStale bounds how many finished predecessors one check cleans up before
// it lets the message wait and look again.
const maxStale = 16

// check returns nil when no earlier message of the same order is pending,
// else a *waitError saying when to look again. Entries of messages whose
// task has completed, was archived or vanished (an orphan) are removed on
// the way.
func (c predecessorCheck) check(ctx context.Context, p *taskPayload) error {
	for range maxStale {
		zs, err := c.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
			Key: pendingKey(p.OrderKey), Start: "-inf", Stop: "(" + strconv.FormatInt(p.Seq, 10),
			ByScore: true, Count: 1,
		}).Result()
		if err != nil {
			return fmt.Errorf("webhook: check order: %w", err)
		}
		if len(zs) == 0 {
			return nil
		}
		prev, _ := zs[0].Member.(string)
		wait, err := c.pending(ctx, p.OrderKey, prev)
		if err != nil {
			return err
		}
		if wait != nil {
			return wait
		}
		if err := release(ctx, c.rdb, p.OrderKey, prev); err != nil {
			return err
		}
	}
	return &waitError{id: "(several)", delay: c.delay}
}

// pending returns a *waitError when message prev is still being delivered,
// nil when it is finished (its entry is stale).
func (c predecessorCheck) pending(ctx context.Context, ok, prev string) (*waitError, error) {
	info, err := c.inspector.GetTaskInfo(c.queue, prev)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		reserved, hgetErr := c.rdb.HGet(ctx, reservedKey(ok), prev).Int64()
		if hgetErr != nil && !errors.Is(hgetErr, redis.Nil) {
			return nil, fmt.Errorf("webhook: check order: %w", hgetErr)
		}
		if hgetErr == nil && time.Since(time.UnixMilli(reserved)) < orphanGrace {
			return &waitError{id: prev, delay: c.delay}, nil // being enqueued right now
		}
		return nil, nil // never enqueued, or gone from asynq: do not wait for it
	case err != nil:
		return nil, fmt.Errorf("webhook: check order: %w", err)
	}
	var event string
	if pp, err := decodeTask(info.Payload); err == nil {
		event = pp.Event
	}
	switch info.State {
	case asynq.TaskStateCompleted, asynq.TaskStateArchived:
		return nil, nil
	case asynq.TaskStateRetry, asynq.TaskStateScheduled:
		d := time.Until(info.NextProcessAt) + c.delay
		return &waitError{id: prev, event: event, delay: min(max(d, c.delay), c.maxDelay)}, nil
	default: // pending, active, aggregating
		return &waitError{id: prev, event: event, delay: c.delay}, nil
	}
}

// firstAttemptScript returns the time of a message's first attempt, storing
// now when it has none. KEYS: first key. ARGV: now ms, ttl ms.
var firstAttemptScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return tonumber(v) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return tonumber(ARGV[1])
`)

func firstAttempt(ctx context.Context, rdb redis.UniversalClient, id string, now time.Time, ttl time.Duration) (time.Time, error) {
	ms, err := firstAttemptScript.Run(ctx, rdb, []string{firstKey(id)}, now.UnixMilli(), ttl.Milliseconds()).Int64()
	if err != nil {
		return time.Time{}, fmt.Errorf("webhook: first attempt: %w", err)
	}
	return time.UnixMilli(ms), nil
}
