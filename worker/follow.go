package worker

import (
	"context"
	"errors"
	"time"

	"github.com/comfyq/comfyq/comfy"
)

// runPrompt gets the prompt to a finished, successful history entry: it re-attaches to
// a prompt the node already has, collects one that finished, or submits it.
func (r *run) runPrompt(ctx context.Context) (*comfy.HistoryEntry, error) {
	c := r.c
	for lost := 0; ; lost++ {
		// A job no attempt has placed on a node is submitted without a look first
		// (one request less per job); a prompt the node lost is looked for again.
		var (
			loc   = comfy.PromptAbsent
			entry *comfy.HistoryEntry
			err   error
		)
		if lost > 0 || !r.unplaced {
			if loc, entry, err = c.Locate(ctx, r.id); err != nil {
				return nil, r.nodeErr(err)
			}
		}
		switch loc {
		case comfy.PromptDone:
			if _, failed := entry.Failed(); !failed && !entry.Interrupted() {
				r.log.Info("prompt already finished on the node: collecting its outputs")
				return entry, nil
			}
			// An earlier attempt failed: clear its history entry and run again.
			if err = c.DeleteHistory(ctx, r.id); err != nil {
				return nil, r.nodeErr(err)
			}
			entry, err = r.follow(ctx, true)
		case comfy.PromptQueued, comfy.PromptRunning:
			r.log.Info("prompt already on the node: re-attaching", "where", loc)
			entry, err = r.follow(ctx, false)
		default:
			entry, err = r.follow(ctx, true)
		}
		if errors.Is(err, comfy.ErrPromptLost) && lost < maxLostResubmits {
			r.log.Warn("the node lost the prompt (restarted?): submitting it again")
			continue
		}
		return entry, err
	}
}

// follow submits (when submit is set) and follows the prompt until it ends, watching
// for cancel, timeout and drain.
func (r *run) follow(ctx context.Context, submit bool) (*comfy.HistoryEntry, error) {
	select {
	case <-r.w.draining:
		if submit {
			return nil, errHandBack // draining: submit nothing new
		}
	default:
	}
	fctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	watched := make(chan struct{})
	// The watcher is joined before follow returns: a write of it (running) must not
	// land after the job moved on to uploading or ended.
	defer func() {
		close(done)
		cancel(nil)
		<-watched
		r.leaveNode()
	}()
	onNode := make(chan struct{}) // closed once the prompt is known to be on the node
	go func() {
		defer close(watched)
		r.watch(ctx, fctx, cancel, done, onNode)
	}()

	c := r.c
	// The entry of a prompt whose events all arrived is made from them (FromEvents): no
	// /history read after a prompt this attempt queued succeeds.
	opts := comfy.FollowOptions{StallTimeout: r.w.cfg.StallTimeout, OnEvent: r.onEvent, WithoutPrompt: true, FromEvents: true}
	var entry *comfy.HistoryEntry
	var err error
	// Subscribe before queueing so no early message is lost; a prompt re-attached to
	// needs the socket too: its events come to this node's client id, whichever process
	// of ours queued it (see stableClientID).
	opts.Subscription = c.Subscribe(r.id)
	cctx, ccancel := context.WithTimeout(fctx, 10*time.Second)
	if connErr := c.Connect(cctx); connErr != nil && fctx.Err() == nil {
		r.log.Warn("WebSocket not connected; following the prompt by polling", "err", connErr)
	}
	ccancel()
	if submit {
		var req comfy.PromptRequest
		if req, err = r.prepare(fctx); err != nil {
			opts.Subscription.Close()
			if fctx.Err() != nil && ctx.Err() == nil {
				return nil, context.Cause(fctx)
			}
			return nil, err
		}
		if c == r.n.comfy {
			r.countOnNode()
		}
		_, err = c.QueuePrompt(fctx, req)
		if err != nil {
			opts.Subscription.Close()
			if fctx.Err() != nil && ctx.Err() == nil {
				return nil, context.Cause(fctx)
			}
			if ctx.Err() != nil {
				return nil, r.ctxEnded(ctx)
			}
			return nil, err
		}
	}
	close(onNode)
	// A prompt this attempt queued itself, subscribed before: its events tell the rest.
	opts.Queued = submit
	entry, err = c.Follow(fctx, r.id, opts)
	if fctx.Err() != nil && ctx.Err() == nil {
		return entry, context.Cause(fctx)
	}
	if err != nil && ctx.Err() != nil {
		// Our own context ended: a cancel (asynq CancelProcessing) or a forced stop.
		return entry, r.ctxEnded(ctx)
	}
	return entry, err
}

// watch cancels the follow context on timeout or, during a drain, when the prompt has
// not started executing yet.
func (r *run) watch(ctx, fctx context.Context, cancel context.CancelCauseFunc, done, onNode <-chan struct{}) {
	var timeout <-chan time.Time
	draining := r.w.draining
	startedCh := r.startedCh
	// The WebSocket may miss execution_start (a reconnect, a lossy subscription): while
	// the prompt has not been seen starting, look at the node's queue now and then.
	poll := time.NewTicker(2 * time.Second)
	defer poll.Stop()
	for {
		select {
		case <-done:
			return
		case <-fctx.Done():
			return
		case <-poll.C:
			select {
			case <-onNode:
			default:
				continue
			}
			if startedCh == nil {
				poll.Stop()
				continue
			}
			if loc, _, err := r.c.Locate(fctx, r.id); err == nil && (loc == comfy.PromptRunning || loc == comfy.PromptDone) {
				r.markRunning(ctx, time.Now())
			}
		case <-startedCh:
			startedCh = nil
			t := time.NewTimer(time.Duration(r.p.TimeoutS) * time.Second)
			defer t.Stop()
			timeout = t.C
		case <-timeout:
			cancel(errTimeout)
			return
		case <-draining:
			draining = nil
			select {
			case <-onNode:
			case <-done:
				return
			case <-fctx.Done():
				return
			}
			if r.takeBack(ctx) {
				cancel(errHandBack)
				return
			}
		}
	}
}

// takeBack removes a prompt that has not started from the node's queue, during a drain.
// It reports whether the prompt is no longer on the node.
func (r *run) takeBack(ctx context.Context) bool {
	r.mu.Lock()
	started := !r.started.IsZero()
	r.mu.Unlock()
	if started {
		return false
	}
	c := r.c
	if err := c.DeleteFromQueue(ctx, r.id); err != nil {
		return false
	}
	loc, _, err := c.Locate(ctx, r.id)
	if err != nil || loc == comfy.PromptRunning || loc == comfy.PromptDone {
		return false
	}
	r.log.Info("drain: took the job back from the node's queue")
	return true
}

// ctxEnded tells why the handler's own context ended: a cancel of the job, or a forced
// stop of the worker.
func (r *run) ctxEnded(ctx context.Context) error {
	j, err := r.w.store.Get(context.WithoutCancel(ctx), r.id)
	if err == nil && j.CancelRequested {
		return errCanceled
	}
	return errHandBack
}
