package worker

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/comfyq/comfyq/internal/nodestatus"
)

// Heartbeat of the node status records (package nodestatus): the API's GET /v1/nodes
// and the console read them.
const (
	statusInterval = 5 * time.Second
	// busyWindow is the span of the busy fraction, sampled once a second.
	busyWindow = 5 * time.Minute
)

// heldJobs is the set of jobs a node holds, and a ring of once-a-second samples of
// whether it held any.
type heldJobs struct {
	mu      sync.Mutex
	ids     []string
	samples []bool // ring, newest at next-1
	next    int
	filled  bool
	version string
	probed  time.Time
	healthy bool // as last reported
	depth   int  // as last reported
}

// hold records that the node took job id; the returned func releases it.
func (h *heldJobs) hold(id string) func() {
	h.mu.Lock()
	h.ids = append(h.ids, id)
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if i := slices.Index(h.ids, id); i >= 0 {
			h.ids = slices.Delete(h.ids, i, i+1)
		}
	}
}

// count is how many jobs the node holds.
func (h *heldJobs) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ids)
}

func (h *heldJobs) sample() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.samples == nil {
		h.samples = make([]bool, int(busyWindow/time.Second))
	}
	h.samples[h.next] = len(h.ids) > 0
	h.next++
	if h.next == len(h.samples) {
		h.next, h.filled = 0, true
	}
}

// snapshot returns the held job ids, the busy fraction and the seconds it covers.
func (h *heldJobs) snapshot() ([]string, float64, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.next
	if h.filled {
		n = len(h.samples)
	}
	busy := 0
	for _, b := range h.samples[:n] {
		if b {
			busy++
		}
	}
	frac := 0.0
	if n > 0 {
		frac = float64(busy) / float64(n)
	}
	return append([]string{}, h.ids...), frac, n
}

// reportStatus samples every node once a second and writes its status record every
// statusInterval until ctx ends, then removes the records: a stopped worker's nodes
// leave the list at once instead of after nodestatus.TTL.
func (w *Worker) reportStatus(ctx context.Context) {
	host, _ := os.Hostname()
	id := fmt.Sprintf("%s/%d", host, os.Getpid())
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := time.Time{}
	for {
		for _, n := range w.nodes {
			n.held.sample()
		}
		due := time.Since(last) >= statusInterval
		for _, n := range w.nodes {
			// A change of health or depth is reported at once, not at the next beat.
			if healthy, depth := n.held.reported(); !due && n.healthy.Load() == healthy && n.depth() == depth {
				continue
			}
			st := n.status(ctx, id)
			if err := nodestatus.Write(ctx, w.cfg.Redis, st); err != nil && ctx.Err() == nil {
				n.log.Debug("node status not written", "err", err)
			}
			n.held.setReported(st.Healthy, st.Depth)
		}
		if due {
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			for _, n := range w.nodes {
				_ = nodestatus.Remove(rctx, w.cfg.Redis, n.cfg.Name)
			}
			cancel()
			return
		case <-tick.C:
		}
	}
}

// status reads the node's queue (and, once a minute, its version) from ComfyUI and
// returns its record. A node that does not answer is reported as it was last known.
func (n *node) status(ctx context.Context, workerID string) *nodestatus.Status {
	ids, busy, window := n.held.snapshot()
	st := &nodestatus.Status{
		Name: n.cfg.Name, URL: n.cfg.URL, Healthy: n.healthy.Load(), Depth: n.depth(),
		Jobs: ids, Busy: busy, BusyWindowS: window, Worker: workerID, UpdatedAt: time.Now().UTC(),
	}
	if !st.Healthy {
		st.ComfyUIVersion = n.held.cachedVersion()
		st.ObjectInfoSHA256 = n.info.current()
		return st
	}
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if q, err := n.comfy.Queue(qctx); err == nil {
		st.QueueRunning, st.QueuePending = len(q.Running), len(q.Pending)
	}
	if time.Since(n.held.probedAt()) > time.Minute {
		if ss, err := n.comfy.SystemStats(qctx); err == nil {
			n.held.setVersion(ss.System.ComfyUIVersion)
		}
	}
	st.ComfyUIVersion = n.held.cachedVersion()
	st.ObjectInfoSHA256 = n.objectInfoHash(ctx)
	return st
}

func (h *heldJobs) cachedVersion() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.version
}

func (h *heldJobs) probedAt() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.probed
}

func (h *heldJobs) setVersion(v string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.version, h.probed = v, time.Now()
}

func (h *heldJobs) reported() (healthy bool, depth int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.healthy, h.depth
}

func (h *heldJobs) setReported(healthy bool, depth int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.healthy, h.depth = healthy, depth
}
