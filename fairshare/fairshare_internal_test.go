package fairshare

import (
	"context"
	"fmt"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/testenv"
)

// TestSweepTakesAMissedTurn parks a tenant's burst, then removes a waiting task without
// a Release (a worker that died between taking it and handing its turn on): the sweep
// lets the next parked task in, in order.
func TestSweepTakesAMissedTurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opt, err := redis.ParseURL(testenv.NewRedis(t))
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	g := New(rdb, Config{Window: 2})
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	var ids []string
	for i := 0; i < 4; i++ {
		id := fmt.Sprintf("task-%d", i)
		_, enqErr := client.EnqueueContext(ctx, asynq.NewTask("t", nil, asynq.TaskID(id), asynq.ProcessAt(g.ParkUntil())))
		require.NoError(t, enqErr)
		require.NoError(t, g.Admit(ctx, "default", "acme", id))
		ids = append(ids, id)
	}
	state := func(id string) asynq.TaskState {
		info, infoErr := insp.GetTaskInfo("default", id)
		require.NoError(t, infoErr)
		return info.State
	}
	require.Equal(t, []asynq.TaskState{asynq.TaskStatePending, asynq.TaskStatePending, asynq.TaskStateScheduled, asynq.TaskStateScheduled},
		[]asynq.TaskState{state(ids[0]), state(ids[1]), state(ids[2]), state(ids[3])})

	require.NoError(t, insp.DeleteTask("default", ids[0])) // gone without a Release
	g.sweep(ctx)
	require.Equal(t, asynq.TaskStatePending, state(ids[2]), "the sweep let the next one in")
	require.Equal(t, asynq.TaskStateScheduled, state(ids[3]))

	require.NoError(t, g.Release(ctx, "default", "acme", ids[1]))
	require.NoError(t, insp.DeleteTask("default", ids[1]))
	require.Equal(t, asynq.TaskStatePending, state(ids[3]))
	n, err := rdb.SCard(ctx, activeKey("default")).Result()
	require.NoError(t, err)
	require.Zero(t, n, "nothing parked: the queue's tenant is no longer swept")
}
