// Package fairshare shares a queue fairly among its tenants. asynq serves a queue
// first in, first out: one tenant's burst of 5,000 jobs would put another tenant's
// single job behind all of them. The Gate keeps each tenant to a small window of tasks
// waiting in the queue (Window, default 4); the rest of a tenant's jobs are parked, in
// the order they came, and take their place one by one as the tenant's waiting tasks
// are taken by workers. A job of another tenant therefore waits behind at most Window
// tasks of each busy tenant, whatever their backlogs: tenants are served in turn.
//
// A parked job is a real asynq task, durable in Redis like any other: it is enqueued
// scheduled far in the future (ParkFor, default 24h, a safety net should every gate
// stop) and moved to the queue's pending list (asynq's RunTask) when its turn comes.
// Per queue and tenant, Redis holds:
//
//	comfyq:fair:{QUEUE}:TENANT:window   sorted set: the tenant's tasks let into the queue
//	comfyq:fair:{QUEUE}:TENANT:parked   list: the tenant's parked job ids, oldest first
//	comfyq:fair:{QUEUE}:active          set: the queue's tenants with parked jobs
//	comfyq:fair:queues                  set: the queues that ever had parked jobs
//
// The keys of one queue share asynq's hash tag ({QUEUE}), so the script, which also
// reads the state of asynq's task hashes (asynq:{QUEUE}:t:ID, asynq v0.26's layout),
// touches one Redis Cluster slot.
//
// Turns are taken in one Lua script (atomic across API replicas and workers): a window
// member whose task is no longer pending (a worker took it, it was canceled, it
// expired) leaves the window, and parked jobs fill the room in order. Turns are taken
// when a job is admitted, when a worker takes a task, when a job is canceled, and by
// Sweep every few seconds, so a turn missed by a process that died is taken anyway.
//
// Jobs without a tenant, and retries of failed attempts, go straight to the queue.
package fairshare

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Defaults of Config.
const (
	DefaultWindow        = 4
	DefaultParkFor       = 24 * time.Hour
	DefaultSweepInterval = 5 * time.Second
)

// Config configures a Gate.
type Config struct {
	// Window is how many tasks of one tenant wait in a queue at once (default 4). A
	// larger window lets one tenant's jobs reach idle workers sooner, a smaller one
	// makes another tenant's job wait behind fewer.
	Window int
	// ParkFor is when a parked task runs should no gate ever let it in (default 24h).
	ParkFor time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Gate lets tenants' tasks into their queues in turn.
type Gate struct {
	rdb       redis.UniversalClient
	inspector *asynq.Inspector
	cfg       Config
}

// New returns a Gate on rdb.
func New(rdb redis.UniversalClient, cfg Config) *Gate {
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.ParkFor <= 0 {
		cfg.ParkFor = DefaultParkFor
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Gate{rdb: rdb, inspector: asynq.NewInspectorFromRedisClient(rdb), cfg: cfg}
}

// ParkUntil is the time to enqueue a parked task for (asynq.ProcessAt).
func (g *Gate) ParkUntil() time.Time { return time.Now().Add(g.cfg.ParkFor) }

const queuesKey = "comfyq:fair:queues"

func activeKey(queue string) string { return "comfyq:fair:{" + queue + "}:active" }

func keys(queue, tenant string) []string {
	p := "comfyq:fair:{" + queue + "}:" + tenant + ":"
	return []string{p + "window", p + "parked", activeKey(queue), "asynq:{" + queue + "}:t:"}
}

// turnScript takes turns in one queue for one tenant. KEYS: window, parked, active set,
// asynq's task key prefix of the queue. ARGV: window size, id to park ("" none), id to
// drop ("" none), now (ms), the active set's member. It returns the ids to move into
// the queue (RunTask): those let in now, and window members whose task is still
// scheduled (a move that did not happen).
var turnScript = redis.NewScript(`
local size = tonumber(ARGV[1])
if ARGV[3] ~= '' then
  redis.call('ZREM', KEYS[1], ARGV[3])
  redis.call('LREM', KEYS[2], 0, ARGV[3])
end
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local st = redis.call('HGET', KEYS[4] .. id, 'state')
  if st == 'scheduled' then
    table.insert(out, id)
  elseif st ~= 'pending' then
    redis.call('ZREM', KEYS[1], id)
  end
end
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[2])
end
while redis.call('ZCARD', KEYS[1]) < size do
  local id = redis.call('LPOP', KEYS[2])
  if not id then break end
  local st = redis.call('HGET', KEYS[4] .. id, 'state')
  if st == 'scheduled' then
    redis.call('ZADD', KEYS[1], ARGV[4], id)
    table.insert(out, id)
  end
end
if redis.call('LLEN', KEYS[2]) > 0 then
  redis.call('SADD', KEYS[3], ARGV[5])
else
  redis.call('SREM', KEYS[3], ARGV[5])
end
return out
`)

func (g *Gate) turn(ctx context.Context, queue, tenant, park, drop string) error {
	ids, err := turnScript.Run(ctx, g.rdb, keys(queue, tenant), g.cfg.Window, park, drop,
		time.Now().UnixMilli(), tenant).StringSlice()
	if err != nil {
		return fmt.Errorf("fairshare: %w", err)
	}
	for _, id := range ids {
		err := g.inspector.RunTask(queue, id)
		if err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !strings.Contains(err.Error(), "already pending") {
			// Left in the window as scheduled: the next turn moves it.
			g.cfg.Logger.Warn("fair share: cannot move a task into its queue", "job_id", id, "queue", queue, "tenant", tenant, "err", err)
		}
	}
	return nil
}

// Admit takes the turn of a tenant's new job, whose task was enqueued scheduled at
// ParkUntil: it is let into the queue now if the tenant's window has room, else parked
// behind the tenant's earlier jobs.
func (g *Gate) Admit(ctx context.Context, queue, tenant, id string) error {
	if err := g.rdb.SAdd(ctx, queuesKey, queue).Err(); err != nil {
		return fmt.Errorf("fairshare: %w", err)
	}
	return g.turn(ctx, queue, tenant, id, "")
}

// Release says that a tenant's job left the queue (a worker took its task, or it was
// canceled): its place in the window goes to the tenant's next parked job.
func (g *Gate) Release(ctx context.Context, queue, tenant, id string) error {
	return g.turn(ctx, queue, tenant, "", id)
}

// Sweep takes a turn for every queue and tenant with parked jobs, then again every
// interval (DefaultSweepInterval when 0) until ctx ends.
func (g *Gate) Sweep(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		g.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (g *Gate) sweep(ctx context.Context) {
	queues, err := g.rdb.SMembers(ctx, queuesKey).Result()
	if err != nil && ctx.Err() == nil {
		g.cfg.Logger.Debug("fair share sweep", "err", err)
	}
	for _, queue := range queues {
		tenants, err := g.rdb.SMembers(ctx, activeKey(queue)).Result()
		if err != nil && ctx.Err() == nil {
			g.cfg.Logger.Debug("fair share sweep", "queue", queue, "err", err)
		}
		for _, tenant := range tenants {
			if err := g.turn(ctx, queue, tenant, "", ""); err != nil && ctx.Err() == nil {
				g.cfg.Logger.Debug("fair share sweep", "queue", queue, "tenant", tenant, "err", err)
			}
		}
	}
}
