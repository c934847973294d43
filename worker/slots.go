package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/job"
)

// slotServers are the asynq servers that pull a node's jobs. A job is pulled only
// when a slot is free, so jobs spread across nodes by pull: a node holds at most its
// depth, whatever the length of the queue.
//
// With a fixed depth there is one server whose Concurrency is the depth. With the
// automatic depth there is one server of Concurrency 1 per slot, because asynq's
// concurrency is fixed for a server's life: the depth rises by starting servers and
// falls by shutting some down, which stop pulling at once and finish the job they
// hold first (the slot is given up when that job ends, never by stopping it).
type slotServers struct {
	n    *node
	base context.Context

	servers  []*asynq.Server // owned by watch once it runs
	retiring sync.WaitGroup  // servers shutting down after the depth fell
	quit     chan struct{}
	watched  chan struct{}
}

// startSlots starts the servers of node n for its current depth and, for the
// automatic depth, a goroutine following its changes.
func startSlots(n *node, base context.Context) (*slotServers, error) {
	s := &slotServers{n: n, base: base, quit: make(chan struct{}), watched: make(chan struct{})}
	if n.ctl == nil {
		srv, err := s.newServer(n.w.cfg.Depth)
		if err != nil {
			return nil, err
		}
		s.servers = []*asynq.Server{srv}
		close(s.watched)
		metrics.NodeDepth.WithLabelValues(n.cfg.Name).Set(float64(n.w.cfg.Depth))
		return s, nil
	}
	if err := s.resize(n.ctl.current()); err != nil {
		s.shutdownAll()
		return nil, err
	}
	go s.watch()
	return s, nil
}

func (s *slotServers) newServer(concurrency int) (*asynq.Server, error) {
	n, cfg := s.n, s.n.w.cfg
	srv := asynq.NewServerFromRedisClient(cfg.Redis, asynq.Config{
		Concurrency:       concurrency,
		TaskCheckInterval: cfg.PollInterval,
		BaseContext:       func() context.Context { return s.base },
		Queues:            cfg.Queues,
		StrictPriority:    cfg.StrictPriority,
		IsFailure:         isFailure,
		RetryDelayFunc:    n.w.retryDelay,
		ShutdownTimeout:   cfg.ShutdownGrace,
		Logger:            asynqLogger{n.log},
		LogLevel:          asynq.WarnLevel,
	})
	mux := asynq.NewServeMux()
	if concurrency == 1 && n.ctl != nil {
		mux.HandleFunc(job.TypeJob, (&slotTurn{max: cfg.PollInterval / 2}).wrap(n.handle))
	} else {
		mux.HandleFunc(job.TypeJob, n.handle)
	}
	if err := srv.Start(mux); err != nil {
		return nil, err
	}
	return srv, nil
}

// slotTurn measures the turnaround of a slot: from the end of its job to the start
// of the next (asynq marks the task done, releases the slot, dequeues the next task),
// part of the work before a job for the automatic depth. A turnaround of max or more
// means that asynq found the queue empty and slept (TaskCheckInterval): no job was
// waiting, the depth did not matter, and it is not counted.
type slotTurn struct {
	max     time.Duration
	lastEnd atomic.Int64 // Unix nanoseconds; atomic: asynq may start the next handler of a slot whose lease ran out before the last one returned
}

type slotTurnKey struct{}

func (s *slotTurn) wrap(h asynq.HandlerFunc) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		if last := s.lastEnd.Load(); last != 0 {
			if gap := time.Since(time.Unix(0, last)); gap < s.max {
				ctx = context.WithValue(ctx, slotTurnKey{}, gap)
			}
		}
		defer func() { s.lastEnd.Store(time.Now().UnixNano()) }()
		return h(ctx, t)
	}
}

// slotTurnaround returns the turnaround of the slot running the handler of ctx (0
// when unknown).
func slotTurnaround(ctx context.Context) time.Duration {
	d, _ := ctx.Value(slotTurnKey{}).(time.Duration)
	return d
}

// watch applies the automatic depth's changes until shutdown.
func (s *slotServers) watch() {
	defer close(s.watched)
	for {
		select {
		case <-s.quit:
			return
		case <-s.n.depthChanged:
			if err := s.resize(s.n.ctl.current()); err != nil {
				s.n.log.Error("could not change the node's depth", "depth", s.n.ctl.current(), "err", err)
			}
		}
	}
}

// resize runs d servers of one slot each: it starts the missing ones, or shuts the
// newest down (in the background: each finishes the job it holds).
func (s *slotServers) resize(d int) error {
	for len(s.servers) < d {
		srv, err := s.newServer(1)
		if err != nil {
			s.setGauge()
			return err
		}
		s.servers = append(s.servers, srv)
	}
	for len(s.servers) > d {
		srv := s.servers[len(s.servers)-1]
		s.servers = s.servers[:len(s.servers)-1]
		s.retiring.Add(1)
		go func() {
			defer s.retiring.Done()
			srv.Shutdown()
		}()
	}
	s.n.log.Debug("node depth", "depth", d)
	s.setGauge()
	return nil
}

func (s *slotServers) setGauge() {
	metrics.NodeDepth.WithLabelValues(s.n.cfg.Name).Set(float64(len(s.servers)))
}

// shutdown stops pulling jobs and waits for the jobs the servers hold (each server's
// ShutdownTimeout is the drain's grace; what is left then is handed back).
func (s *slotServers) shutdown() {
	close(s.quit)
	<-s.watched
	s.shutdownAll()
}

func (s *slotServers) shutdownAll() {
	var wg sync.WaitGroup
	for _, srv := range s.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv.Shutdown()
		}()
	}
	s.servers = nil
	wg.Wait()
	s.retiring.Wait()
}
