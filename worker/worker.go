package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/fairshare"
	"github.com/comfyq/comfyq/internal/flight"
	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/internal/netguard"
	"github.com/comfyq/comfyq/internal/seal"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
)

// Notifier is told of a job's lifecycle events (job.started, job.succeeded, …), for
// webhooks. It must not block for long.
type Notifier interface {
	Notify(ctx context.Context, event string, j *job.Job)
}

// Worker runs jobs on its ComfyUI nodes.
type Worker struct {
	cfg    Config
	store  *jobstore.Store
	inputs netguard.Policy // cfg.Inputs
	log    *slog.Logger
	nodes  []*node
	// fair hands a tenant's turn in its queue on when this worker takes its task.
	fair   *fairshare.Gate
	sealer *seal.Sealer // nil without Config.SealKey

	draining chan struct{} // closed when a drain starts
	drainMu  sync.Once
	rec      recovery // in-flight records and takeovers (takeover.go)
}

// New checks the configuration and returns a Worker; it does no network I/O.
func New(cfg Config) (*Worker, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	w := &Worker{
		cfg:      cfg,
		store:    jobstore.New(cfg.Redis, jobstore.Config{Retention: cfg.Retention}),
		inputs:   cfg.Inputs.guard(),
		log:      cfg.Logger,
		fair:     fairshare.New(cfg.Redis, fairshare.Config{Logger: cfg.Logger}),
		draining: make(chan struct{}),
	}
	w.rec.flight = flight.New(cfg.Redis, 0)
	w.rec.insp = asynq.NewInspectorFromRedisClient(cfg.Redis)
	if len(cfg.SealKey) > 0 {
		sl, err := seal.New(cfg.SealKey)
		if err != nil {
			return nil, fmt.Errorf("worker: seal key: %w", err)
		}
		w.sealer = sl
	}
	for _, nc := range cfg.Nodes {
		client, err := comfy.New(comfy.Config{BaseURL: nc.URL, Header: nc.Header, ClientID: nc.ClientID, Logger: cfg.Logger.With("node", nc.Name)})
		if err != nil {
			return nil, fmt.Errorf("worker: node %s: %w", nc.Name, err)
		}
		n := &node{w: w, cfg: nc, comfy: client, log: cfg.Logger.With("node", nc.Name), depthChanged: make(chan struct{}, 1)}
		if cfg.Depth == 0 {
			n.ctl = newDepthController(cfg.MaxDepth)
		}
		w.nodes = append(w.nodes, n)
	}
	return w, nil
}

// Run attaches to every node and processes jobs until ctx is done, then drains: jobs
// executing on a GPU get ShutdownGrace to finish, jobs still waiting in a node's queue
// are taken back from the node and handed back to Redis. Cancel force (which may be nil)
// to stop waiting for running jobs; they are handed back too and re-attached by the
// next worker.
func (w *Worker) Run(ctx context.Context, force <-chan struct{}) error {
	if err := w.cfg.Redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("worker: Redis unreachable: %w", err)
	}
	// Handlers get a context that outlives ctx (drain) but ends on force.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	if force != nil {
		go func() {
			select {
			case <-force:
				w.log.Warn("forced stop: handing back running jobs")
				cancelBase()
			case <-base.Done():
			}
		}()
	}
	// Taken-over jobs (takeover.go) get base too, and are handed back at the end of
	// the drain's grace; the heartbeat lasts until they ended.
	takerBase, stopTakers := context.WithCancel(base)
	defer stopTakers()
	stopBeat, endBeat := context.WithCancel(context.WithoutCancel(ctx))
	beating := make(chan struct{})
	w.rec.takerBase = takerBase
	go func() { defer close(beating); w.keepAlive(ctx, stopBeat) }()
	var wg sync.WaitGroup
	for _, n := range w.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.supervise(ctx, base)
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); w.reportStatus(ctx) }()
	<-ctx.Done()
	w.drainMu.Do(func() { close(w.draining) })
	w.log.Info("draining: no new jobs; waiting for jobs on the GPUs", "grace", w.cfg.ShutdownGrace)
	drainStart := time.Now()
	wg.Wait()
	w.joinTakers(drainStart, stopTakers)
	endBeat()
	<-beating
	w.leave(ctx)
	for _, n := range w.nodes {
		n.comfy.Close()
	}
	w.log.Info("worker stopped")
	return nil
}

// node is one attached ComfyUI node and its asynq server.
type node struct {
	w     *Worker
	cfg   NodeConfig
	comfy *comfy.Client
	log   *slog.Logger

	healthy   atomic.Bool
	capsStale atomic.Bool   // a probe failed since capabilities were detected
	srv       *slotServers  // while the node takes jobs
	held      heldJobs      // for the node status record (status.go)
	info      publishedInfo // the object_info published for the API (objectinfo.go)

	// ctl is the automatic depth's controller (depth.go), nil with a fixed depth;
	// depthChanged tells the node's servers (slots.go) that its depth changed.
	ctl          *depthController
	depthChanged chan struct{}
	// promptsOnNode counts the prompts this worker queued on the node whose execution
	// has not ended yet: a prompt queued while it is 0 found the node out of work.
	promptsOnNode atomic.Int64
}

// depth returns the number of jobs the node may hold now.
func (n *node) depth() int {
	if n.ctl == nil {
		return n.w.cfg.Depth
	}
	return n.ctl.current()
}

// observeDepth feeds one job's times to the automatic depth's controller.
func (n *node) observeDepth(s depthSample) {
	if n.ctl == nil {
		return
	}
	if _, changed := n.ctl.observe(s); changed {
		select {
		case n.depthChanged <- struct{}{}:
		default: // a change is already pending; the servers read the latest depth
		}
	}
}

// supervise probes the node and runs an asynq server only while the node is healthy,
// so a node that is down takes no jobs; it stops the server when ctx ends.
func (n *node) supervise(ctx, base context.Context) {
	fails := 0
	tick := time.NewTicker(n.w.cfg.HealthInterval)
	defer tick.Stop()
	for {
		ok := n.probe(ctx)
		switch {
		case ok:
			fails = 0
			metrics.NodeUp.WithLabelValues(n.cfg.Name).Set(1)
			if !n.healthy.Swap(true) {
				n.log.Info("node is up: taking jobs")
			}
			if n.srv == nil {
				if err := n.start(base); err != nil {
					n.log.Error("could not start job processing", "err", err)
				} else {
					n.resumeOn(ctx)
				}
			}
		default:
			fails++
			if fails >= n.w.cfg.DownAfter {
				metrics.NodeUp.WithLabelValues(n.cfg.Name).Set(0)
			}
			if fails >= n.w.cfg.DownAfter && (n.healthy.Swap(false) || n.srv != nil) {
				n.log.Warn("node is down: not taking jobs until it answers again", "failed_probes", fails)
				n.stop()
			}
		}
		select {
		case <-ctx.Done():
			n.stop()
			return
		case <-tick.C:
		}
	}
}

func (n *node) probe(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := n.comfy.SystemStats(ctx)
	if err != nil {
		n.capsStale.Store(true)
		return false
	}
	n.learn(ctx, st.System.ComfyUIVersion)
	return true
}

func (n *node) start(base context.Context) error {
	srv, err := startSlots(n, base)
	if err != nil {
		return err
	}
	n.srv = srv
	return nil
}

func (n *node) stop() {
	if n.srv == nil {
		return
	}
	n.srv.shutdown()
	n.srv = nil
}

// errHandBack and errNodeDown send a task back to the queue without counting a failure.
var (
	errHandBack = errors.New("worker: job handed back")
	errNodeDown = errors.New("worker: node unavailable")
)

func isFailure(err error) bool {
	return !errors.Is(err, errHandBack) && !errors.Is(err, errNodeDown) && !errors.Is(err, errOwned) &&
		!errors.Is(err, asynq.ErrLeaseExpired) && !errors.Is(err, comfy.ErrUnavailable)
}

func (w *Worker) retryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if errors.Is(err, errOwned) {
		return ownedRetryDelay + time.Duration(rand.IntN(1000))*time.Millisecond
	}
	if !isFailure(err) {
		return time.Duration(500+rand.IntN(1000)) * time.Millisecond
	}
	// Exponential backoff with jitter: base, 2×base, 4×base … capped at 2 minutes.
	d := min(w.cfg.RetryBackoff<<min(n, 10), 2*time.Minute)
	return d + time.Duration(rand.Int64N(int64(d/4)+1))
}

// asynqLogger adapts asynq's logger to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
