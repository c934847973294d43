// Package flight records in Redis which worker process handles which job, and whether
// that process is alive, so that the jobs of a worker that died are taken over in
// seconds instead of when asynq's lease of their tasks runs out (a minute or two).
//
// Every worker process has an owner id (random, one per process). It keeps a heartbeat
// key with a short TTL, and marks each job it handles as its own:
//
//	comfyq:{flight}:alive:{owner}  the owner's heartbeat, expiring after TTL
//	comfyq:{flight}:owners         hash: owner id → its Heartbeat JSON, kept after its
//	                               death until it holds no job (who it was, where)
//	comfyq:{flight}:jobs           hash: job id → owner id handling it
//	comfyq:{flight}:owned:{owner}  set: the job ids an owner handles
//
// An owner whose heartbeat key is gone is dead; any worker may then claim its jobs, one
// at a time and atomically (Claim), and follow them to their end. The keys share one
// hash tag so that the scripts stay within one Redis Cluster slot.
package flight

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	prefix    = "comfyq:{flight}:"
	ownersKey = prefix + "owners"
	jobsKey   = prefix + "jobs"
)

func aliveKey(owner string) string { return prefix + "alive:" + owner }
func ownedKey(owner string) string { return prefix + "owned:" + owner }

// Defaults of Registry's heartbeat: refreshed every Interval, gone TTL after the last
// refresh. A worker that dies has its jobs taken over TTL (plus one reaper pass) later.
const (
	DefaultInterval = 2 * time.Second
	DefaultTTL      = 6 * time.Second
)

// Node is one ComfyUI node a worker drives: its name and URL (as job records give
// them) and the client id of its prompts.
type Node struct {
	Name     string `json:"name"`
	URL      string `json:"url"`
	ClientID string `json:"client_id"`
}

// Heartbeat is what an owner tells about itself while alive.
type Heartbeat struct {
	// Host is the machine's host name (a pod's name in Kubernetes): the one place a
	// loopback node URL means.
	Host string `json:"host"`
	// Process identifies the worker process for people (host/pid).
	Process string `json:"process"`
	Nodes   []Node `json:"nodes"`
	// Draining is set once the process stops taking jobs: it still finishes or hands
	// back the ones it has, so nobody else may take them.
	Draining bool `json:"draining,omitempty"`
}

// Has reports whether the heartbeat lists the node with the same client id.
func (h *Heartbeat) Has(n Node) bool {
	for _, m := range h.Nodes {
		if m == n {
			return true
		}
	}
	return false
}

// Peer is an owner as the registry shows it: its last heartbeat, and whether that
// is still alive.
type Peer struct {
	Owner     string
	Heartbeat Heartbeat
	Alive     bool
}

// Registry is one worker process's view of the records.
type Registry struct {
	rdb   redis.UniversalClient
	owner string
	ttl   time.Duration
}

// New returns the registry of a new owner with a random id; ttl ≤ 0 means DefaultTTL.
func New(rdb redis.UniversalClient, ttl time.Duration) *Registry {
	var b [8]byte
	_, _ = rand.Read(b[:])
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Registry{rdb: rdb, owner: hex.EncodeToString(b[:]), ttl: ttl}
}

// Owner is this process's owner id.
func (g *Registry) Owner() string { return g.owner }

// Beat writes the heartbeat (call it well within the TTL).
func (g *Registry) Beat(ctx context.Context, h Heartbeat) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	_, err = g.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, aliveKey(g.owner), b, g.ttl)
		p.HSet(ctx, ownersKey, g.owner, b)
		return nil
	})
	if err != nil {
		return fmt.Errorf("flight: heartbeat: %w", err)
	}
	return nil
}

// Leave ends the heartbeat at a clean stop; the owner id is forgotten once it holds no
// job (one handed back but not released is then taken over at once).
func (g *Registry) Leave(ctx context.Context) error {
	if err := g.rdb.Del(ctx, aliveKey(g.owner)).Err(); err != nil {
		return fmt.Errorf("flight: leave: %w", err)
	}
	_, err := g.Forget(ctx, g.owner)
	return err
}

// ownScript makes job ARGV[1] owner ARGV[2]'s unless another live owner has it; it
// returns that owner, or "" when the job is now ARGV[2]'s.
var ownScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and cur ~= ARGV[2] then
  if redis.call('EXISTS', ARGV[3] .. cur) == 1 then return cur end
  redis.call('SREM', ARGV[4] .. cur, ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', ARGV[4] .. ARGV[2], ARGV[1])
return ''
`)

// Own marks the job as this owner's. When another owner that is alive has it, Own
// changes nothing and returns that owner.
func (g *Registry) Own(ctx context.Context, jobID string) (string, error) {
	holder, err := ownScript.Run(ctx, g.rdb, []string{jobsKey}, g.ownArgs(jobID)...).Text()
	if err != nil {
		return "", fmt.Errorf("flight: own job: %w", err)
	}
	return holder, nil
}

func (g *Registry) ownArgs(jobID string) []any {
	return []any{jobID, g.owner, prefix + "alive:", prefix + "owned:"}
}

// OwnThen is Own with the commands then queues sent in the same round trip, after
// the ownership is settled: what the owner reads first (its job's record) costs no
// trip of its own. The commands' results are the caller's to check, each on its own;
// when the job is another owner's they are to be ignored. then may run twice (the
// second time alone, after Own, when Redis had not loaded the script yet): the
// commands of its last call are the ones that ran.
func (g *Registry) OwnThen(ctx context.Context, jobID string, then func(redis.Pipeliner)) (string, error) {
	var own *redis.Cmd
	// The pipeline's error is its first failed command's, maybe one of the caller's
	// (a record not found): the ownership's own is what counts here.
	_, _ = g.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		own = ownScript.EvalSha(ctx, p, []string{jobsKey}, g.ownArgs(jobID)...)
		then(p)
		return nil
	})
	if redis.HasErrorPrefix(own.Err(), "NOSCRIPT") {
		// The script ran nowhere: own the job the long way (EVAL loads the script),
		// then send the caller's commands again.
		holder, err := g.Own(ctx, jobID)
		if err != nil || holder != "" {
			return holder, err
		}
		_, _ = g.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { then(p); return nil })
		return "", nil
	}
	holder, err := own.Text()
	if err != nil {
		return "", fmt.Errorf("flight: own job: %w", err)
	}
	return holder, nil
}

// releaseScript drops job ARGV[1] from owner ARGV[2] if it still has it.
var releaseScript = redis.NewScript(`
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
`)

// Release ends this owner's handling of the job.
func (g *Registry) Release(ctx context.Context, jobID string) error {
	if err := releaseScript.Run(ctx, g.rdb, []string{jobsKey, ownedKey(g.owner)}, jobID, g.owner).Err(); err != nil {
		return fmt.Errorf("flight: release job: %w", err)
	}
	return nil
}

// claimScript moves job ARGV[1] from owner ARGV[2] to owner ARGV[3], only if ARGV[2]
// has it still.
var claimScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  redis.call('SREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
`)

// Claim takes the job over from owner from (dead, or a predecessor on the same node):
// it reports false when from no longer has it (another worker claimed it first, or it
// ended).
func (g *Registry) Claim(ctx context.Context, jobID, from string) (bool, error) {
	n, err := claimScript.Run(ctx, g.rdb, []string{jobsKey, ownedKey(from), ownedKey(g.owner)},
		jobID, from, g.owner).Int()
	if err != nil {
		return false, fmt.Errorf("flight: claim job: %w", err)
	}
	return n == 1, nil
}

// Peers lists the other owners, alive or dead, with their last heartbeats.
func (g *Registry) Peers(ctx context.Context) ([]Peer, error) {
	owners, err := g.rdb.HGetAll(ctx, ownersKey).Result()
	if err != nil {
		return nil, fmt.Errorf("flight: list owners: %w", err)
	}
	var peers []Peer
	var alive []*redis.IntCmd
	_, err = g.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for o, b := range owners {
			if o == g.owner {
				continue
			}
			var h Heartbeat
			_ = json.Unmarshal([]byte(b), &h) // an unreadable one is a dead stranger
			peers = append(peers, Peer{Owner: o, Heartbeat: h})
			alive = append(alive, p.Exists(ctx, aliveKey(o)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("flight: read heartbeats: %w", err)
	}
	for i, c := range alive {
		peers[i].Alive = c.Val() == 1
	}
	return peers, nil
}

// Jobs lists the jobs an owner handles.
func (g *Registry) Jobs(ctx context.Context, owner string) ([]string, error) {
	ids, err := g.rdb.SMembers(ctx, ownedKey(owner)).Result()
	if err != nil {
		return nil, fmt.Errorf("flight: list jobs: %w", err)
	}
	return ids, nil
}

// forgetScript drops owner ARGV[1] when it has no heartbeat and no job.
var forgetScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('SCARD', KEYS[3]) > 0 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3])
return 1
`)

// Forget drops a dead owner that holds no job from the owners set; it reports whether
// it did.
func (g *Registry) Forget(ctx context.Context, owner string) (bool, error) {
	n, err := forgetScript.Run(ctx, g.rdb, []string{ownersKey, aliveKey(owner), ownedKey(owner)}, owner).Int()
	if err != nil {
		return false, fmt.Errorf("flight: forget owner: %w", err)
	}
	return n == 1, nil
}
