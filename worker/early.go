package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/storage"
)

// Early copies: an output file is copied to storage as soon as its node reports it
// (the `executed` message: the file is on the node's disk by then), while the rest
// of the prompt runs and, when it reads one, while the worker waits for `executing`
// null and reads the history. collect, which copies what the entry lists, takes the
// early copy of a file instead of copying it again. For a video workflow this
// overlaps the first outputs' upload with the later nodes; for a tiny job it takes
// the download and the store's write out of the time between the node's end and the
// job's end.
//
// The entry stays the truth: a file is taken only when the entry (the history, or the
// events' when they were all seen) lists it under the same node and storage key, and
// an early copy the entry does not list is deleted before the job ends. One copy runs
// at a time per job, in the order the node reported them; a copy that fails is left
// to collect, which copies it with retries.

// earlyCopies are one attempt's early copies, by storage key.
type earlyCopies struct {
	r      *run
	ctx    context.Context // the attempt's, canceled by finish
	cancel context.CancelFunc

	mu      sync.Mutex
	copies  map[string]*earlyCopy
	todo    []*earlyCopy
	running bool          // the copier goroutine runs
	idle    chan struct{} // closed when the copier goroutine exits
	closed  bool
	kept    map[string]bool // keys the job's outputs use
}

// earlyCopy is one file's early copy.
type earlyCopy struct {
	nodeID  string
	file    comfy.OutputFile
	key     string
	started bool          // the copier took it (else collect may take it over)
	skipped bool          // collect or finish took it before the copier did
	done    chan struct{} // closed when the copy ended (started copies only)
	out     job.Output
	err     error
}

// add queues the files a node reported for early copying.
func (e *earlyCopies) add(nodeID string, files []comfy.OutputFile) {
	used := map[string]bool{}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	for _, f := range files {
		if f.Type == "temp" && !e.r.w.cfg.UploadPreviews {
			continue
		}
		key, err := e.r.outputKey(nodeID, f, used)
		if err != nil {
			continue // collect reports it
		}
		if e.copies == nil {
			e.copies = map[string]*earlyCopy{}
		}
		if _, dup := e.copies[key]; dup {
			continue // reported twice (a cached node's output sent again)
		}
		c := &earlyCopy{nodeID: nodeID, file: f, key: key, done: make(chan struct{})}
		e.copies[key] = c
		e.todo = append(e.todo, c)
	}
	if len(e.todo) > 0 && !e.running {
		e.running = true
		e.idle = make(chan struct{})
		go e.copier()
	}
}

// copier copies the queued files one after the other until none is left.
func (e *earlyCopies) copier() {
	for {
		e.mu.Lock()
		if len(e.todo) == 0 || e.closed {
			for _, c := range e.todo {
				c.skipped = true
			}
			e.todo = nil
			e.running = false
			close(e.idle)
			e.mu.Unlock()
			return
		}
		c := e.todo[0]
		e.todo = e.todo[1:]
		if c.skipped {
			e.mu.Unlock()
			continue
		}
		c.started = true
		e.mu.Unlock()
		c.out, c.err = e.r.copyOnce(e.ctx, c.nodeID, c.file, c.key)
		if c.err != nil {
			e.r.log.Debug("early copy of an output failed; it is copied again after the prompt", "key", c.key, "err", c.err)
		}
		close(c.done)
	}
}

// copiedBy reports whether file f of node nodeID has been copied to key, waiting
// until deadline for a copy that is under way.
func (e *earlyCopies) copiedBy(nodeID string, f comfy.OutputFile, key string, deadline time.Time) bool {
	e.mu.Lock()
	c := e.copies[key]
	started := c != nil && c.started
	e.mu.Unlock()
	if !started {
		return false
	}
	select {
	case <-c.done:
	default:
		wait := time.NewTimer(time.Until(deadline))
		defer wait.Stop()
		select {
		case <-c.done:
		case <-wait.C:
			return false
		}
	}
	return c.err == nil && c.nodeID == nodeID && c.file == f
}

// take returns the early copy of file f of node nodeID stored under key, waiting for
// it if it is being copied; ok is false when there is none (or it failed), and the
// caller copies the file itself. A different file's early copy under the same key is
// waited for first, so that the caller's copy is the one that stays.
func (e *earlyCopies) take(nodeID string, f comfy.OutputFile, key string) (job.Output, bool) {
	e.mu.Lock()
	c := e.copies[key]
	if c == nil {
		e.mu.Unlock()
		return job.Output{}, false
	}
	if !c.started {
		c.skipped = true
		delete(e.copies, key)
		e.mu.Unlock()
		return job.Output{}, false
	}
	e.mu.Unlock()
	<-c.done
	if c.err != nil || c.nodeID != nodeID || c.file != f {
		return job.Output{}, false
	}
	return c.out, true
}

// keep records that the job's outputs use key: finish leaves it in storage.
func (e *earlyCopies) keep(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.kept == nil {
		e.kept = map[string]bool{}
	}
	e.kept[key] = true
}

// newEarlyCopies returns the early copies of attempt r, made within ctx.
func newEarlyCopies(ctx context.Context, r *run) *earlyCopies {
	ctx, cancel := context.WithCancel(ctx)
	return &earlyCopies{r: r, ctx: ctx, cancel: cancel}
}

// finish stops early copying, stops the copy in progress and deletes the early
// copies whose keys the job's outputs do not use (none, when the job failed).
// Calls after the first do nothing.
func (e *earlyCopies) finish() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	idle := e.idle
	e.mu.Unlock()
	e.cancel() // a copy still running is one collect did not take: not needed
	if idle != nil {
		<-idle
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for key, c := range e.copies {
		// A failed copy may have stored its object before it failed (a short copy):
		// delete every started copy the outputs do not use.
		if c.started && !e.kept[key] {
			if err := e.r.w.cfg.Storage.Delete(context.WithoutCancel(e.ctx), key); err != nil && !errors.Is(err, storage.ErrNotFound) {
				e.r.log.Warn("could not delete an early copy the job does not use", "key", key, "err", err)
			}
		}
	}
}
