// Package redistrips counts the round trips a go-redis client makes to Redis (one per
// command, one per pipeline), by kind, and the bytes its connections move. The
// benchmarks use it to report what a job costs in Redis: add a Counter as the
// client's hook before its first command, so that every connection is counted.
package redistrips

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Counter is a redis.Hook counting round trips and bytes. The zero value is not
// ready: use New.
type Counter struct {
	mu    sync.Mutex
	trips map[string]int
	total int

	sent, recv atomic.Int64
}

// New returns an empty Counter.
func New() *Counter { return &Counter{trips: map[string]int{}} }

var (
	uuidRE   = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	serverRE = regexp.MustCompile(`\{[^}]*:\d+:[^}]*\}`)
)

// Kind names a command by its name and first key, with job ids and asynq server ids
// folded: "evalsha asynq:{q}:pending", "get comfyq:job:{id}".
func Kind(cmd redis.Cmder) string {
	args := cmd.Args()
	name := strings.ToLower(cmd.Name())
	first := 1
	if name == "evalsha" || name == "eval" {
		first = 3 // the script, the number of keys, then the keys
	}
	if len(args) > first {
		if k, ok := args[first].(string); ok && k != "" {
			k = uuidRE.ReplaceAllString(k, "{id}")
			k = serverRE.ReplaceAllString(k, "{server}")
			return name + " " + k
		}
	}
	return name
}

func (c *Counter) add(kind string) {
	c.mu.Lock()
	c.trips[kind]++
	c.total++
	c.mu.Unlock()
}

// DialHook wraps each new connection to count its bytes.
func (c *Counter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: conn, c: c}, nil
	}
}

// ProcessHook counts a command.
func (c *Counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(Kind(cmd))
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts a pipeline (or MULTI/EXEC transaction) as one trip.
func (c *Counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		kinds := make([]string, len(cmds))
		for i, cmd := range cmds {
			kinds[i] = strings.Fields(Kind(cmd))[0]
		}
		c.add("pipeline [" + strings.Join(kinds, " ") + "]")
		return next(ctx, cmds)
	}
}

// Reset forgets what was counted.
func (c *Counter) Reset() {
	c.mu.Lock()
	c.trips, c.total = map[string]int{}, 0
	c.mu.Unlock()
	c.sent.Store(0)
	c.recv.Store(0)
}

// Snapshot returns a Counter holding what c has counted so far, which later trips
// of c's client do not change.
func (c *Counter) Snapshot() *Counter {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := New()
	for k, n := range c.trips {
		s.trips[k] = n
	}
	s.total = c.total
	s.sent.Store(c.sent.Load())
	s.recv.Store(c.recv.Load())
	return s
}

// Trips is the number of round trips counted.
func (c *Counter) Trips() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Kinds returns the round trips counted by kind (see Kind).
func (c *Counter) Kinds() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.trips))
	for k, n := range c.trips {
		out[k] = n
	}
	return out
}

// Bytes is the number of bytes the client's connections sent and received.
func (c *Counter) Bytes() int64 { return c.sent.Load() + c.recv.Load() }

// Report lists the kinds of trips, most frequent first, each per job of n.
func (c *Counter) Report(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	kinds := make([]string, 0, len(c.trips))
	for k := range c.trips {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, k int) bool {
		if c.trips[kinds[i]] != c.trips[kinds[k]] {
			return c.trips[kinds[i]] > c.trips[kinds[k]]
		}
		return kinds[i] < kinds[k]
	})
	var sb strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&sb, "  %6.2f/job  %5d  %s\n", float64(c.trips[k])/float64(n), c.trips[k], k)
	}
	return sb.String()
}

type countingConn struct {
	net.Conn
	c *Counter
}

func (cc *countingConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	cc.c.recv.Add(int64(n))
	return n, err
}

func (cc *countingConn) Write(p []byte) (int, error) {
	n, err := cc.Conn.Write(p)
	cc.c.sent.Add(int64(n))
	return n, err
}
