package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/internal/flight"
	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/job"
)

// Recovery in seconds. asynq hands a task out again only when its lease has run out
// (30 s after the last heartbeat of the server that had it, plus 30 s of allowance for
// clock skew, checked once a minute): a worker killed with its jobs on a node would
// leave them for one to two minutes. So each worker process also keeps a heartbeat of
// its own in Redis (internal/flight, refreshed every 2 s, gone 6 s after the process
// died) and marks each job it handles as its own. Then:
//
//   - a worker that starts on a node resumes at once the jobs that its predecessor on
//     the node (the same node URL and client id, see stableClientID) or a dead worker
//     left in flight there: it follows a running prompt, collects a finished one and
//     submits again one the node lost (resumeOn);
//   - every worker looks every 2 s for owners whose heartbeat is gone and takes their
//     jobs over, one taker per job (flight.Registry.Claim), following or collecting the
//     prompt on the dead worker's node first (reap);
//   - when asynq later hands out the dead worker's task again, the handler finds the
//     job ended and acknowledges the task, or finds it owned by its live taker and
//     hands the task back for later (errOwned), without touching the prompt.
//
// A prompt runs again only when the node no longer has it, as in any re-attach.

// errOwned hands a task back, without counting a failure, when another live worker
// process (or another run in this one) handles its job: a taker of a dead worker's job.
var errOwned = errors.New("worker: job handled by another worker")

// ownedRetryDelay is when a task handed back with errOwned is looked at again.
const ownedRetryDelay = flight.DefaultTTL

// recovery is a Worker's part of the in-flight records.
type recovery struct {
	flight *flight.Registry
	insp   *asynq.Inspector
	// active are the jobs this process runs now, by asynq or by a takeover.
	active sync.Map
	// takers are the goroutines running taken-over jobs (joined by Run), with
	// takerBase as their context.
	takers    sync.WaitGroup
	takerBase context.Context
	// closed is set when Run joins the takers: no new takeover starts after it.
	mu     sync.Mutex
	closed bool
}

// startTaker counts a new taker goroutine; false once Run joins them.
func (rc *recovery) startTaker() bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.closed {
		return false
	}
	rc.takers.Add(1)
	return true
}

// begin marks the job as run by this process; false if it already is.
func (rc *recovery) begin(id string) bool {
	_, loaded := rc.active.LoadOrStore(id, struct{}{})
	return !loaded
}

func (rc *recovery) end(id string) { rc.active.Delete(id) }

// own makes the job this process's for an asynq delivery of its task, with the
// commands then queues sent in the same round trip (flight.Registry.OwnThen). It
// returns a function releasing it, or errOwned when another run has it.
func (w *Worker) own(ctx context.Context, id string, then func(redis.Pipeliner)) (func(), error) {
	if !w.rec.begin(id) {
		return nil, fmt.Errorf("%w: running in this process already", errOwned)
	}
	holder, err := w.rec.flight.OwnThen(ctx, id, then)
	if err != nil {
		w.rec.end(id)
		return nil, fmt.Errorf("%w: %w", errHandBack, err)
	}
	if holder != "" {
		w.rec.end(id)
		return nil, fmt.Errorf("%w: owner %s", errOwned, holder)
	}
	return func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := w.rec.flight.Release(rctx, id); err != nil {
			w.log.Warn("could not release the job's in-flight record (a reaper takes it over later)", "job_id", id, "err", err)
		}
		w.rec.end(id)
	}, nil
}

// heartbeat tells what this process drives; draining once it takes no new jobs.
func (w *Worker) heartbeat(draining bool) flight.Heartbeat {
	host, _ := os.Hostname()
	h := flight.Heartbeat{Host: host, Process: fmt.Sprintf("%s/%d", host, os.Getpid()), Draining: draining}
	for _, n := range w.nodes {
		h.Nodes = append(h.Nodes, n.flightNode())
	}
	return h
}

func (n *node) flightNode() flight.Node {
	return flight.Node{Name: n.cfg.Name, URL: n.cfg.URL, ClientID: n.cfg.ClientID}
}

// keepAlive writes the heartbeat every flight.DefaultInterval and, until ctx (taking
// jobs) ends, takes over the jobs of dead workers. It beats on, marked draining, until
// stop ends: a drain may last minutes, and its jobs are still this process's.
func (w *Worker) keepAlive(ctx, stop context.Context) {
	tick := time.NewTicker(flight.DefaultInterval)
	defer tick.Stop()
	var failedAt time.Time // the last heartbeat that could not be written
	for {
		draining := ctx.Err() != nil
		bctx, cancel := context.WithTimeout(stop, flight.DefaultInterval)
		if err := w.rec.flight.Beat(bctx, w.heartbeat(draining)); err != nil && stop.Err() == nil {
			failedAt = time.Now()
			w.log.Warn("heartbeat not written: other workers may take this one's jobs over", "err", err)
		}
		cancel()
		// After Redis did not answer (an outage, a restart), every heartbeat may have
		// expired: the other workers are given a TTL to beat again before any of them
		// counts as dead.
		if !draining && time.Since(failedAt) > flight.DefaultTTL+flight.DefaultInterval {
			w.reap(ctx, nil)
		}
		select {
		case <-stop.Done():
			return
		case <-tick.C:
		}
	}
}

// leave removes the heartbeat at a clean stop.
func (w *Worker) leave(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.rec.flight.Leave(ctx); err != nil {
		w.log.Warn("could not remove the heartbeat", "err", err)
	}
}

// resumeOn takes over, as soon as node n takes jobs, the jobs left in flight on n by
// a dead worker or by this process's predecessor on n (a live heartbeat naming the same
// node, URL and client id, not draining: the process was killed less than a TTL ago).
func (n *node) resumeOn(ctx context.Context) {
	n.w.reap(ctx, n)
}

// reap takes over the jobs of dead owners; with only set, also those of live
// predecessors on that node, and then only the jobs recorded on that node.
func (w *Worker) reap(ctx context.Context, only *node) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	peers, err := w.rec.flight.Peers(rctx)
	if err != nil {
		w.log.Debug("could not list the other workers", "err", err)
		return
	}
	for _, p := range peers {
		if p.Alive && (only == nil || p.Heartbeat.Draining || !p.Heartbeat.Has(only.flightNode())) {
			continue
		}
		ids, err := w.rec.flight.Jobs(rctx, p.Owner)
		if err != nil {
			continue
		}
		if len(ids) == 0 && !p.Alive {
			_, _ = w.rec.flight.Forget(rctx, p.Owner)
			continue
		}
		for _, id := range ids {
			w.takeOver(rctx, id, p, only)
		}
	}
}

// takeOver claims job id from peer p and runs it here, on the node the job was on when
// this process drives it, else on a healthy node of this process (the run then
// follows or collects the prompt on the job's node first: followElsewhere).
func (w *Worker) takeOver(ctx context.Context, id string, p flight.Peer, only *node) {
	base := w.rec.takerBase
	j, err := w.store.Get(ctx, id)
	if errors.Is(err, job.ErrNotFound) || err == nil && j.Status.Terminal() {
		// Nothing left to do: drop it from the dead owner.
		if ok, _ := w.rec.flight.Claim(ctx, id, p.Owner); ok {
			_ = w.rec.flight.Release(ctx, id)
		}
		return
	}
	if err != nil {
		return
	}
	if only != nil && (j.Node != only.cfg.URL || j.NodeName != only.cfg.Name) {
		return
	}
	n := only
	if n == nil {
		if n = w.nodeFor(j); n == nil {
			return // no healthy node here: another worker, or a later pass, takes it
		}
		if (n.cfg.URL != j.Node || n.cfg.Name != j.NodeName) && j.Node != "" && !w.canReach(j.Node, p.Heartbeat.Host) {
			// A loopback URL of another machine (a Kubernetes pod's sidecar): this
			// process cannot look at that node, and running the prompt here could run
			// it twice. The worker's restart there, or asynq's lease, recovers it.
			return
		}
	}
	queue := j.Queue
	if queue == "" {
		queue = "default"
	}
	info, err := w.rec.insp.GetTaskInfo(queue, id)
	if err != nil {
		w.log.Warn("taking over a job whose task cannot be read: leaving it to asynq", "job_id", id, "err", err)
		return
	}
	pl, err := job.DecodePayload(info.Payload)
	if err != nil {
		return
	}
	if !w.rec.begin(id) {
		return // asynq gave the task to this process meanwhile
	}
	if !w.rec.startTaker() {
		w.rec.end(id)
		return // stopping
	}
	ok, err := w.rec.flight.Claim(ctx, id, p.Owner)
	if err != nil || !ok {
		w.rec.end(id)
		w.rec.takers.Done()
		return
	}
	why, reason := "its worker died", "dead"
	if p.Alive {
		why, reason = "its worker on this node was restarted", "restart"
	}
	n.log.Info("taking the job over: "+why, "job_id", id, "from", p.Owner, "status", j.Status, "prompt_node", j.Node)
	metrics.JobsTakenOver.WithLabelValues(n.cfg.Name, reason).Inc()
	metrics.NodeJobsInFlight.WithLabelValues(n.cfg.Name).Inc()
	release := n.held.hold(id)
	go func() {
		defer w.rec.takers.Done()
		defer metrics.NodeJobsInFlight.WithLabelValues(n.cfg.Name).Dec()
		defer release()
		defer w.rec.end(id)
		r := n.newRun(pl, max(j.Attempt, 1))
		// The record again: it may have changed since it was read above, before the claim.
		err := r.execute(base, func() (*job.Job, error) { return w.store.Get(base, id) })
		if errors.Is(err, errHandBack) {
			// Stopping: the job stays this process's, whose heartbeat goes at the end of
			// Run, so another worker takes it over then (its task is still the dead
			// worker's in asynq).
			r.log.Info("taken-over job handed back: another worker takes it over when this one has stopped")
			return
		}
		if err != nil {
			r.log.Warn("taken-over attempt ended without an end: asynq retries the job when the dead worker's lease runs out", "err", err)
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(base), 5*time.Second)
		defer cancel()
		_ = w.rec.flight.Release(rctx, id)
	}()
}

// joinTakers waits for the taken-over jobs at the end of a drain that started at
// drainStart: they get ShutdownGrace from then, like the jobs asynq gave, and are then
// handed back by canceling stopTakers.
func (w *Worker) joinTakers(drainStart time.Time, stopTakers context.CancelFunc) {
	w.rec.mu.Lock()
	w.rec.closed = true
	w.rec.mu.Unlock()
	done := make(chan struct{})
	go func() { w.rec.takers.Wait(); close(done) }()
	t := time.NewTimer(max(w.cfg.ShutdownGrace-time.Since(drainStart), 0))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		stopTakers()
		<-done
	}
}

// nodeFor picks the node of this process a taken-over job runs on: the job's own node
// (same name and URL) when this process drives it and it is healthy, else the healthy
// node holding fewest jobs; nil when none is healthy.
func (w *Worker) nodeFor(j *job.Job) *node {
	var best *node
	bestHeld := 0
	for _, n := range w.nodes {
		if !n.healthy.Load() {
			continue
		}
		if n.cfg.URL == j.Node && n.cfg.Name == j.NodeName {
			return n
		}
		if held := n.held.count(); best == nil || held < bestHeld {
			best, bestHeld = n, held
		}
	}
	return best
}

// canReach tells whether this process can look at the node at nodeURL that a worker
// on host drove: any URL but a loopback one, which only means that node on its own
// machine.
func (w *Worker) canReach(nodeURL, host string) bool {
	u, err := url.Parse(nodeURL)
	if err != nil {
		return false
	}
	h := u.Hostname()
	ip := net.ParseIP(h)
	if !strings.EqualFold(h, "localhost") && (ip == nil || !ip.IsLoopback() && !ip.IsUnspecified()) {
		return true
	}
	mine, _ := os.Hostname()
	return host != "" && host == mine
}
