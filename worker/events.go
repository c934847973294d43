package worker

import (
	"context"
	"time"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
)

// onEvent turns the prompt's events into status and progress writes.
func (r *run) onEvent(ev comfy.Event) {
	if ev.Type == comfy.EventPreviewImage && ev.Binary != nil {
		r.onPreview(ev.Binary)
		return
	}
	v, err := ev.Decode()
	if err != nil {
		return
	}
	now := time.Now()
	switch e := v.(type) {
	case *comfy.ExecutionStart:
		r.mu.Lock()
		if e.Timestamp > 0 {
			r.nodeStart = time.UnixMilli(e.Timestamp)
		}
		r.mu.Unlock()
		r.markRunning(context.Background(), now)
		return
	case *comfy.Executed:
		if e.PromptID == "" || e.PromptID == r.id {
			r.early.add(e.Node, e.Output.Files())
		}
		return
	case *comfy.ExecutionSuccess:
		r.mu.Lock()
		if e.Timestamp > 0 {
			r.nodeEnd = time.UnixMilli(e.Timestamp)
		}
		r.execSeen = now
		r.leaveNodeLocked()
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	if r.progress == nil {
		r.progress = newProgressTracker(nil)
	}
	changed := r.progress.apply(v)
	switch v.(type) {
	case *comfy.ExecutionCached, *comfy.Executing, *comfy.Progress, *comfy.ProgressState, *comfy.Executed:
		// Any of these means execution started, even if execution_start was missed:
		// the running write carries this first progress (one write, not two).
		if r.started.IsZero() {
			first := r.progress.snapshot()
			r.mu.Unlock()
			r.markRunningWith(context.Background(), now, &first)
			return
		}
	}
	due := changed && now.Sub(r.lastWrite) >= r.w.cfg.ProgressInterval
	var snap job.Progress
	if due {
		r.lastWrite = now
		snap = r.progress.snapshot()
	}
	r.mu.Unlock()
	if due {
		j, err := r.w.store.Update(context.Background(), r.id, func(j *job.Job) error {
			if j.Status != job.StatusRunning {
				return jobstore.ErrSkip
			}
			j.Progress = &snap
			return nil
		})
		if err == nil && j != nil && j.Status == job.StatusRunning {
			r.notify(context.Background(), job.WebhookProgress, j)
		}
	}
}

// ranOnNode makes the record true for a prompt that finished on the node, whatever the
// worker saw of it: the node's own execution_start and execution_success timestamps
// from the history entry, and running, started_at and job.started when no event told
// of the start (a fast prompt, a prompt found finished after a restart). The changes
// in then (the next state: uploading) ride in the same write when running is written
// here; it reports whether they did.
func (r *run) ranOnNode(ctx context.Context, entry *comfy.HistoryEntry, then ...jobstore.UpdateFunc) bool {
	now := time.Now()
	r.mu.Lock()
	r.noteNodeSpanLocked(entry)
	at := now
	if !r.nodeStart.IsZero() && !r.nodeEnd.IsZero() {
		// Not seen live: it started as long before its end as the node says.
		at = now.Add(-r.nodeEnd.Sub(r.nodeStart))
	}
	r.mu.Unlock()
	return r.markRunningWith(ctx, at, nil, then...)
}

// noteNodeSpanLocked takes the node's own times of the prompt's execution from its
// history entry: execution_start, and its end (execution_success, or the
// execution_interrupted of a stopped prompt, or execution_error).
func (r *run) noteNodeSpanLocked(entry *comfy.HistoryEntry) {
	for _, m := range entry.Status.Messages {
		switch m.Type {
		case "execution_start":
			r.nodeStart = m.Timestamp()
		case "execution_success", "execution_interrupted", "execution_error":
			r.nodeEnd = m.Timestamp()
		}
	}
}

// markRunning records that execution started, once.
func (r *run) markRunning(ctx context.Context, at time.Time) {
	r.markRunningWith(ctx, at, nil)
}

// markRunningWith is markRunning writing the job's first progress (none: empty
// progress) and the changes in then in the same write, one round trip; it reports
// whether it wrote (false: running was recorded before, then is not applied).
func (r *run) markRunningWith(ctx context.Context, at time.Time, first *job.Progress, then ...jobstore.UpdateFunc) bool {
	r.mu.Lock()
	if !r.started.IsZero() {
		r.mu.Unlock()
		return false
	}
	r.started = at
	r.lastWrite = at // the running write below carries the first progress
	close(r.startedCh)
	r.mu.Unlock()
	moved := false
	running := func(j *job.Job) error {
		moved = false // run again on the current record when another writer came first
		t := at.UTC()
		switch j.Status {
		case job.StatusQueued:
		case job.StatusCanceling:
			// Canceled while it waited on the node, which started it anyway: the
			// record says it ran (started_at, and so its timings) and stays
			// canceling; a job being canceled gets no job.started.
			if j.StartedAt != nil {
				return jobstore.ErrSkip
			}
			j.StartedAt = &t
			return nil
		default:
			// Only a queued job starts running: a late write never takes an
			// uploading job back to running.
			return jobstore.ErrSkip
		}
		j.Status = job.StatusRunning
		if j.StartedAt == nil {
			j.StartedAt = &t
		}
		j.Progress = &job.Progress{}
		if first != nil {
			j.Progress = first
		}
		moved = true
		return nil
	}
	js, err := r.w.store.UpdateSteps(ctx, r.id, append([]jobstore.UpdateFunc{running}, then...)...)
	if err == nil && moved {
		r.notify(ctx, job.WebhookStarted, js[0])
	}
	return err == nil
}

func (r *run) notify(ctx context.Context, event string, j *job.Job) {
	if r.w.cfg.Notifier != nil && j != nil {
		r.w.cfg.Notifier.Notify(context.WithoutCancel(ctx), event, j)
	}
}

// previewEvery is the least time between two previews a job keeps (for the Comfy
// API v2 event stream): ComfyUI sends one a sampler step.
const previewEvery = time.Second

// onPreview keeps the latest preview image of the prompt, at most one a second.
func (r *run) onPreview(f *comfy.BinaryFrame) {
	now := time.Now()
	r.mu.Lock()
	if now.Sub(r.lastPreview) < previewEvery || len(f.Image) == 0 {
		r.mu.Unlock()
		return
	}
	r.lastPreview = now
	node := ""
	if r.progress != nil {
		node = r.progress.snapshot().Node
	}
	r.mu.Unlock()
	p := jobstore.Preview{NodeID: node, ContentType: "image/jpeg", Data: append([]byte(nil), f.Image...), At: now.UTC()}
	if f.ImageFormat == comfy.ImageFormatPNG {
		p.ContentType = "image/png"
	}
	if m := f.Metadata; m != nil {
		if m.NodeID != "" {
			p.NodeID = m.NodeID
		}
		if m.ImageType != "" {
			p.ContentType = m.ImageType
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.w.store.SetPreview(ctx, r.id, p); err != nil {
		r.log.Debug("could not keep a preview", "err", err)
	}
}
