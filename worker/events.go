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
	v, err := ev.Decode()
	if err != nil {
		return
	}
	now := time.Now()
	switch v.(type) {
	case *comfy.ExecutionStart:
		r.markRunning(context.Background(), now)
		return
	case *comfy.ExecutionCached, *comfy.Executing, *comfy.Progress, *comfy.ProgressState, *comfy.Executed:
		// Any of these means execution started, even if execution_start was missed.
		r.markRunning(context.Background(), now)
	}
	r.mu.Lock()
	if r.progress == nil {
		r.progress = newProgressTracker(nil)
	}
	changed := r.progress.apply(v)
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

// markRunning records that execution started, once.
func (r *run) markRunning(ctx context.Context, at time.Time) {
	r.mu.Lock()
	if !r.started.IsZero() {
		r.mu.Unlock()
		return
	}
	r.started = at
	r.lastWrite = at // the running write below carries the first progress
	close(r.startedCh)
	r.mu.Unlock()
	moved := false
	j, err := r.w.store.Update(ctx, r.id, func(j *job.Job) error {
		// Only a queued job starts running: a late write never takes an uploading job
		// back to running.
		if j.Status != job.StatusQueued {
			return jobstore.ErrSkip
		}
		t := at.UTC()
		j.Status = job.StatusRunning
		if j.StartedAt == nil {
			j.StartedAt = &t
		}
		j.Progress = &job.Progress{}
		moved = true
		return nil
	})
	if err == nil && moved {
		r.notify(ctx, job.WebhookStarted, j)
	}
}

func (r *run) notify(ctx context.Context, event string, j *job.Job) {
	if r.w.cfg.Notifier != nil && j != nil {
		r.w.cfg.Notifier.Notify(context.WithoutCancel(ctx), event, j)
	}
}
