package flight_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/flight"
	"github.com/comfyq/comfyq/internal/redistrips"
	"github.com/comfyq/comfyq/internal/testenv"
)

func newRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	opt, err := redis.ParseURL(testenv.NewRedis(t))
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// A job is its owner's while the owner is alive: nobody else owns or claims it. Once
// the owner's heartbeat is gone, exactly one other owner claims it.
func TestOwnershipFollowsTheHeartbeat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := newRedis(t)
	a := flight.New(rdb, time.Hour)
	b := flight.New(rdb, time.Hour)
	c := flight.New(rdb, time.Hour)
	node := flight.Node{Name: "gpu-1", URL: "http://gpu-1:8188", ClientID: "c1"}
	for _, g := range []*flight.Registry{a, b, c} {
		require.NoError(t, g.Beat(ctx, flight.Heartbeat{Process: g.Owner(), Nodes: []flight.Node{node}}))
	}

	holder, err := a.Own(ctx, "j1")
	require.NoError(t, err)
	require.Empty(t, holder)
	holder, err = a.Own(ctx, "j1")
	require.NoError(t, err)
	require.Empty(t, holder, "owning again is a no-op")
	holder, err = b.Own(ctx, "j1")
	require.NoError(t, err)
	require.Equal(t, a.Owner(), holder, "a live owner keeps its job")

	peers, err := b.Peers(ctx)
	require.NoError(t, err)
	require.Len(t, peers, 2)
	for _, p := range peers {
		require.True(t, p.Alive, "%s is alive", p.Owner)
		require.True(t, p.Heartbeat.Has(node))
	}

	// a dies: its heartbeat goes, what it was stays while it has jobs.
	require.NoError(t, rdb.Del(ctx, "comfyq:{flight}:alive:"+a.Owner()).Err())
	peers, err = b.Peers(ctx)
	require.NoError(t, err)
	for _, p := range peers {
		require.Equal(t, p.Owner != a.Owner(), p.Alive, p.Owner)
		require.Equal(t, a.Owner() == p.Owner || c.Owner() == p.Owner, p.Heartbeat.Process == p.Owner)
	}
	jobs, err := b.Jobs(ctx, a.Owner())
	require.NoError(t, err)
	require.Equal(t, []string{"j1"}, jobs)
	gotB, err := b.Claim(ctx, "j1", a.Owner())
	require.NoError(t, err)
	gotC, err := c.Claim(ctx, "j1", a.Owner())
	require.NoError(t, err)
	require.True(t, gotB)
	require.False(t, gotC, "one taker only")
	holder, err = c.Own(ctx, "j1")
	require.NoError(t, err)
	require.Equal(t, b.Owner(), holder)

	forgot, err := b.Forget(ctx, a.Owner())
	require.NoError(t, err)
	require.True(t, forgot, "a dead owner without jobs is forgotten")
	peers, err = c.Peers(ctx)
	require.NoError(t, err)
	require.Len(t, peers, 1)

	// b releases: the job is nobody's, and the next owner takes it at once.
	require.NoError(t, b.Release(ctx, "j1"))
	jobs, err = c.Jobs(ctx, b.Owner())
	require.NoError(t, err)
	require.Empty(t, jobs)
	holder, err = c.Own(ctx, "j1")
	require.NoError(t, err)
	require.Empty(t, holder)

	// A release by an owner that lost the job changes nothing.
	require.NoError(t, b.Release(ctx, "j1"))
	holder, err = b.Own(ctx, "j1")
	require.NoError(t, err)
	require.Equal(t, c.Owner(), holder)

	// A clean stop with a job still held: the heartbeat goes, the owner stays until
	// its job is claimed.
	require.NoError(t, c.Leave(ctx))
	gotB, err = b.Claim(ctx, "j1", c.Owner())
	require.NoError(t, err)
	require.True(t, gotB)
}

// OwnThen owns as Own does and sends the caller's commands in the same round trip,
// after the ownership: on a Redis that has not loaded the script yet too (the
// commands are sent again after it), and whatever the commands answer.
func TestOwnThenReadsInTheSameTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := newRedis(t).(*redis.Client)
	trips := redistrips.New()
	rdb.AddHook(trips)
	a := flight.New(rdb, time.Hour)
	b := flight.New(rdb, time.Hour)
	for _, g := range []*flight.Registry{a, b} {
		require.NoError(t, g.Beat(ctx, flight.Heartbeat{Process: g.Owner()}))
	}
	require.NoError(t, rdb.Set(ctx, "record", "v1", 0).Err())

	var get *redis.StringCmd
	calls := 0
	holder, err := a.OwnThen(ctx, "j1", func(p redis.Pipeliner) { calls++; get = p.Get(ctx, "record") })
	require.NoError(t, err)
	require.Empty(t, holder)
	require.Equal(t, 2, calls, "a new Redis has no script: the commands are sent again once the job is owned")
	require.Equal(t, "v1", get.Val())

	trips.Reset()
	holder, err = a.OwnThen(ctx, "j2", func(p redis.Pipeliner) { get = p.Get(ctx, "no such record") })
	require.NoError(t, err, "a command of the caller's that fails is not the ownership's failure")
	require.Empty(t, holder)
	require.ErrorIs(t, get.Err(), redis.Nil)
	require.Equal(t, 1, trips.Trips(), "the ownership and the read: one round trip")

	holder, err = b.OwnThen(ctx, "j1", func(p redis.Pipeliner) { get = p.Get(ctx, "record") })
	require.NoError(t, err)
	require.Equal(t, a.Owner(), holder, "a live owner keeps its job")
	jobs, err := a.Jobs(ctx, a.Owner())
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"j1", "j2"}, jobs)
}
