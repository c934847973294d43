package delivery

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/webhook"
)

// The order check against the states a predecessor can be in.
func TestPredecessorCheck(t *testing.T) {
	t.Parallel()
	opt, err := redis.ParseURL(testenv.NewRedis(t))
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	client := asynq.NewClientFromRedisClient(rdb)
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	c := predecessorCheck{rdb: rdb, inspector: inspector, queue: DefaultQueue, delay: 50 * time.Millisecond, maxDelay: time.Minute}
	ok := orderKey(testJobID, "", "https://a.example/hook")

	place := func(id string) *taskPayload {
		seq, added, resErr := reserve(ctx, rdb, ok, id, time.Hour)
		require.NoError(t, resErr)
		require.True(t, added)
		p := validPayload()
		p.ID, p.OrderKey, p.Seq = id, ok, seq
		return p
	}
	enqueue := func(p *taskPayload, opts ...asynq.Option) {
		data, encErr := encodeTask(p)
		require.NoError(t, encErr)
		_, enqErr := client.Enqueue(asynq.NewTask(job.TypeWebhook, data), append(opts, asynq.TaskID(p.ID), asynq.Queue(DefaultQueue))...)
		require.NoError(t, enqErr)
	}
	waiting := func(p *taskPayload) *waitError {
		t.Helper()
		checkErr := c.check(ctx, p)
		we, isWait := errors.AsType[*waitError](checkErr)
		require.True(t, isWait, "want a wait, got %v", checkErr)
		return we
	}

	first := place("msg_first")
	require.NoError(t, c.check(ctx, first), "nothing before the first")
	seq, added, err := reserve(ctx, rdb, ok, "msg_first", time.Hour)
	require.NoError(t, err)
	require.False(t, added, "a pending message keeps its place")
	require.Equal(t, first.Seq, seq)

	// Reserved a moment ago, task not enqueued yet: wait for it.
	second := place("msg_second")
	require.Equal(t, "msg_first", waiting(second).id)

	// A pending task: wait briefly. A task scheduled for later: wait until
	// then, at most maxDelay.
	enqueue(first)
	we := waiting(second)
	require.Equal(t, c.delay, we.delay)
	require.Equal(t, webhook.EventJobSucceeded, we.event)
	require.NoError(t, inspector.DeleteTask(DefaultQueue, first.ID))
	enqueue(first, asynq.ProcessIn(30*time.Second))
	we = waiting(second)
	require.Greater(t, we.delay, 20*time.Second)
	require.LessOrEqual(t, we.delay, time.Minute)

	// Archived (given up, or by hand in the dashboard): done; its entry goes.
	require.NoError(t, inspector.ArchiveTask(DefaultQueue, first.ID))
	require.NoError(t, c.check(ctx, second))
	n, err := rdb.ZCard(ctx, pendingKey(ok)).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "only the second is pending")

	// An orphan (reserved long ago, never enqueued) is not waited for.
	third := place("msg_third")
	require.Equal(t, "msg_second", waiting(third).id)
	old := time.Now().Add(-2 * orphanGrace).UnixMilli()
	require.NoError(t, rdb.HSet(ctx, reservedKey(ok), "msg_second", strconv.FormatInt(old, 10)).Err())
	require.NoError(t, c.check(ctx, third))

	// Released messages let the next go.
	fourth := place("msg_fourth")
	require.Equal(t, "msg_third", waiting(fourth).id)
	require.NoError(t, release(ctx, rdb, ok, "msg_third"))
	require.NoError(t, c.check(ctx, fourth))

	// The keys expire.
	ttl, err := rdb.PTTL(ctx, pendingKey(ok)).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 50*time.Minute)
}

func TestFirstAttempt(t *testing.T) {
	t.Parallel()
	opt, err := redis.ParseURL(testenv.NewRedis(t))
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	t0 := time.UnixMilli(time.Now().UnixMilli())
	got, err := firstAttempt(ctx, rdb, "msg_x", t0, time.Hour)
	require.NoError(t, err)
	require.True(t, got.Equal(t0))
	got, err = firstAttempt(ctx, rdb, "msg_x", t0.Add(time.Hour), time.Hour)
	require.NoError(t, err)
	require.True(t, got.Equal(t0), "the first attempt's time is kept")
}
