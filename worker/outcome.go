package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/internal/retry"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
)

// fail records an attempt's error and tells asynq whether to retry.
func (r *run) fail(ctx context.Context, err error) error {
	wctx := context.WithoutCancel(ctx)
	c := r.c
	switch {
	case errors.Is(err, errCanceled):
		r.stopPrompt(wctx, c)
		r.finishCanceled(wctx, r.awaitStopped(wctx, c))
		return nil
	case errors.Is(err, errHandBack):
		r.requeue(wctx, nil)
		return err
	case errors.Is(err, errNodeDown), errors.Is(err, comfy.ErrUnavailable):
		r.log.Warn("node unavailable: handing the job back", "err", err)
		r.requeue(wctx, &job.Error{Code: job.CodeNodeUnavailable, Message: err.Error(), Retryable: true})
		return fmt.Errorf("%w: %w", errNodeDown, err)
	case errors.Is(err, errTimeout):
		r.stopPrompt(wctx, c)
		r.finish(wctx, job.StatusFailed, &job.Error{Code: job.CodeTimeout,
			Message: fmt.Sprintf("the job ran longer than its timeout of %ds and was interrupted", r.p.TimeoutS)})
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	jerr := toJobError(err)
	if jerr.Code == job.CodeExecutionError {
		var ee *comfy.ExecutionError
		if errors.As(err, &ee) && ee.IsOOM() {
			r.log.Warn("out of memory on the node: asking it to free memory before the retry")
			_ = c.Free(wctx, true, true)
		}
	}
	retry := !r.last && jerr.Code != job.CodeValidationFailed && jerr.Code != job.CodeInvalidWorkflow &&
		jerr.Code != job.CodeInvalidInput && jerr.Code != job.CodeInvalidRequest
	if retry && jerr.Code == job.CodeExecutionError {
		var ee *comfy.ExecutionError
		if errors.As(err, &ee) && !r.retryableExecution(ee) {
			r.log.Info("deterministic execution error: not retrying", "exception_type", ee.ExceptionType)
			retry = false
		}
	}
	if !retry {
		r.log.Error("job failed", "code", jerr.Code, "err", err, "attempt", r.attempt)
		r.finish(wctx, job.StatusFailed, jerr)
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	r.log.Warn("attempt failed, will retry", "code", jerr.Code, "err", err, "attempt", r.attempt)
	jerr.Retryable = true
	r.requeue(wctx, jerr)
	return err
}

// stopPrompt removes the job's prompt from the node: from its queue if pending, by an
// interrupt aimed at this prompt only if running (comfy.Client.Cancel: atomically
// through the jobs API where the node has it). c is the node's client: this run's
// node, or the node of an earlier attempt.
func (r *run) stopPrompt(ctx context.Context, c *comfy.Client) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Cancel(ctx, r.id); err != nil {
		r.log.Warn("could not cancel the prompt on the node", "err", err)
	}
}

// stopConfirmFor bounds the wait for the node to confirm a stopped prompt (ComfyUI
// interrupts between nodes, so one long node delays it).
const stopConfirmFor = 2 * time.Minute

// awaitStopped waits until the node confirms that the prompt is stopped: gone from its
// queue, or ended (interrupted) in its history. It interrupts again now and then, and
// returns the message of the job's cancel.
func (r *run) awaitStopped(ctx context.Context, c *comfy.Client) string {
	ctx, cancel := context.WithTimeout(ctx, stopConfirmFor)
	defer cancel()
	for i := 1; ; i++ {
		loc, entry, err := c.Locate(ctx, r.id)
		if err == nil && loc != comfy.PromptQueued && loc != comfy.PromptRunning {
			if entry != nil { // it ran (and was interrupted, or ended): its times are the node's
				r.mu.Lock()
				r.noteNodeSpanLocked(entry)
				if r.execEnded.IsZero() {
					r.execEnded = time.Now()
				}
				r.mu.Unlock()
			}
			return "canceled"
		}
		if i%20 == 0 {
			r.stopPrompt(ctx, c)
		}
		if retry.Sleep(ctx, 100*time.Millisecond) != nil {
			r.log.Warn("the node did not confirm the prompt stopped", "err", err)
			return "canceled (the node did not confirm that the prompt stopped)"
		}
	}
}

// cancelEarlier ends a job canceled before this attempt ran: a prompt an earlier
// attempt left on a node (the job record names it) is stopped there first.
func (r *run) cancelEarlier(ctx context.Context, j *job.Job) {
	if j.Node == "" {
		r.finishCanceled(ctx, "canceled before it ran")
		return
	}
	c, release := r.clientFor(j.Node)
	if c == nil {
		r.finishCanceled(ctx, "canceled before it ran")
		return
	}
	if release != nil {
		defer release()
	}
	wctx := context.WithoutCancel(ctx)
	if loc, _, err := c.Locate(wctx, r.id); err == nil && (loc == comfy.PromptQueued || loc == comfy.PromptRunning) {
		r.log.Info("canceled: stopping the prompt an earlier attempt left on its node", "prompt_node", j.Node)
		r.stopPrompt(wctx, c)
		r.finishCanceled(wctx, r.awaitStopped(wctx, c))
		return
	}
	r.finishCanceled(wctx, "canceled")
}

// scrubber scrubs the errors of this run's node (scrub.go).
func (r *run) scrubber() scrubber {
	return scrubber{nodeURL: r.nodeURL, nodeName: r.nodeName}
}

// requeue puts the record back to queued for the next attempt.
func (r *run) requeue(ctx context.Context, e *job.Error) {
	_, _ = r.w.store.Update(ctx, r.id, func(j *job.Job) error {
		j.Status = job.StatusQueued
		j.Progress = nil
		if e != nil {
			j.Error = r.scrubber().scrubError(e)
		}
		return nil
	})
}

func (r *run) finishCanceled(ctx context.Context, msg string) {
	r.finish(ctx, job.StatusCanceled, &job.Error{Code: job.CodeCanceled, Message: msg})
}

// finish moves the record to a terminal state and notifies.
func (r *run) finish(ctx context.Context, status job.Status, e *job.Error) {
	j, err := r.recordEnd(ctx, func(j *job.Job) error {
		now := time.Now().UTC()
		j.Status = status
		j.Error = r.scrubber().scrubError(e)
		j.FinishedAt = &now
		r.settleTimes(j, now, 0)
		if status != job.StatusSucceeded {
			j.Progress = nil
		}
		return nil
	})
	if err != nil {
		r.log.Error("could not record the job's end", "status", status, "err", err)
		return
	}
	event := job.WebhookFailed
	if status == job.StatusCanceled {
		event = job.WebhookCanceled
	}
	r.notify(ctx, event, j)
}

func (r *run) succeed(ctx context.Context, outputs []job.Output, uploadMS int64) error {
	canceled := false
	j, err := r.recordEnd(ctx, func(j *job.Job) error {
		now := time.Now().UTC()
		if canceled = j.Status == job.StatusCanceling; canceled {
			// Asked to stop while it finished: the cancel wins, the outputs stay in storage.
			j.Status = job.StatusCanceled
			j.Error = &job.Error{Code: job.CodeCanceled, Message: "canceled while its outputs uploaded"}
			j.FinishedAt = &now
			r.settleTimes(j, now, uploadMS)
			j.Progress = nil
			return nil
		}
		j.Status = job.StatusSucceeded
		j.Outputs = outputs
		j.Error = nil
		j.FinishedAt = &now
		r.settleTimes(j, now, uploadMS)
		p := job.Progress{Fraction: 1}
		r.mu.Lock()
		if r.progress != nil {
			snap := r.progress.snapshot()
			p.NodesTotal, p.NodesDone = snap.NodesTotal, snap.NodesTotal
		}
		r.mu.Unlock()
		j.Progress = &p
		return nil
	})
	if errors.Is(err, job.ErrTerminal) {
		// Canceled while uploading: the cancel wins, the outputs stay in storage.
		r.log.Info("job ended while its outputs uploaded", "status", j.Status)
		return nil
	}
	if err != nil {
		return fmt.Errorf("worker: record success: %w", err)
	}
	if canceled {
		r.log.Info("job canceled while its outputs uploaded")
		r.notify(ctx, job.WebhookCanceled, j)
		return nil
	}
	r.log.Info("job succeeded", "outputs", len(outputs), "execution_ms", j.Timings.ExecutionMS, "upload_ms", uploadMS)
	r.notify(ctx, job.WebhookSucceeded, j)
	return nil
}

// endWriteFor bounds how long the worker keeps trying to record a job's end while Redis
// does not answer. Past it the task's lease runs out and asynq hands the task out again;
// the next attempt finds the finished prompt on the node and records its end then.
const endWriteFor = 15 * time.Minute

// recordEnd writes a job's end, retrying while Redis does not answer, so that a job
// that finishes during a Redis outage is recorded as soon as Redis is back rather than
// after asynq's lease expires. A terminal or missing record is final.
func (r *run) recordEnd(ctx context.Context, fn jobstore.UpdateFunc) (*job.Job, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endWriteFor)
	defer cancel()
	policy := retry.Policy{
		Backoff: retry.Backoff{Initial: 50 * time.Millisecond, Max: 2 * time.Second, Jitter: retry.EqualJitter},
		Retryable: func(err error) bool {
			return !errors.Is(err, job.ErrTerminal) && !errors.Is(err, job.ErrNotFound)
		},
		OnRetry: func(n int, err error, d time.Duration) {
			if n == 1 || n%20 == 0 {
				r.log.Warn("could not record the job's end: retrying until Redis answers", "err", err, "tries", n)
			}
		},
	}
	var j *job.Job
	err := retry.Do(ctx, policy, func(ctx context.Context) error {
		var err error
		j, err = r.w.store.Update(ctx, r.id, fn)
		return err
	})
	return j, err
}

// settleTimes writes the job's final times into j, ending at now. started_at is the
// earliest the worker can tell that execution began, on its own clock: when it saw
// the start, or, when the node's span is known, when it saw the end less that span
// (it resumed the prompt mid-run, its socket was silent a while); it is set here if
// the running write was lost (Redis was down). queued_ms runs from created_at to
// started_at, execution_ms is the node's own span (else started_at to the end seen),
// upload_ms is what the worker measured, total_ms created_at to now.
func (r *run) settleTimes(j *job.Job, now time.Time, uploadMS int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := r.started
	span := r.nodeEnd.Sub(r.nodeStart)
	seen := r.execSeen
	if seen.IsZero() {
		seen = r.execEnded
	}
	if !r.nodeStart.IsZero() && !r.nodeEnd.IsZero() && !seen.IsZero() {
		if est := seen.Add(-span); start.IsZero() || est.Before(start) {
			start = est
		}
	}
	if !start.IsZero() && (j.StartedAt == nil || start.Before(*j.StartedAt)) {
		t := start.UTC()
		if t.Before(j.CreatedAt) {
			t = j.CreatedAt
		}
		j.StartedAt = &t
	}
	t := &job.Timings{TotalMS: now.Sub(j.CreatedAt).Milliseconds(), UploadMS: uploadMS}
	if j.StartedAt != nil {
		t.QueuedMS = j.StartedAt.Sub(j.CreatedAt).Milliseconds()
		end := r.execEnded
		if end.IsZero() {
			end = now
		}
		t.ExecutionMS = max(end.Sub(*j.StartedAt).Milliseconds(), 0)
	}
	if !r.nodeStart.IsZero() && !r.nodeEnd.IsZero() {
		// The node's own clock: true after a restart, when the worker saw only the end.
		t.ExecutionMS = max(span.Milliseconds(), 0)
	}
	j.Timings = t
}

// Marks of failures of the device rather than of the workflow, where another run
// (after /free, or on another node) may succeed: parts of the exception type and of
// the message, lower case. "cuda" alone is not a message mark: "tensors on cuda:0 and
// cpu" is a deterministic error of the workflow.
var (
	deviceTypeMarks    = []string{"cuda", "acceleratorerror", "outofmemory"}
	deviceMessageMarks = []string{"cuda error", "cudnn_status", "cublas_status", "nccl error", "hip error",
		"illegal memory access", "ecc error", "device lost", "out of memory"}
)

// retryableExecution tells whether another run of a prompt that raised may succeed:
// out of memory, a CUDA or device error, or an exception type the worker (--retry-on)
// or the job (retry_on) lists. Anything else (a shape or type mismatch, an invalid
// value, a missing file, a custom node's ValueError) fails the same way again.
func (r *run) retryableExecution(ee *comfy.ExecutionError) bool {
	if ee.IsOOM() {
		return true
	}
	typ, msg := strings.ToLower(ee.ExceptionType), strings.ToLower(ee.ExceptionMessage)
	for _, m := range deviceTypeMarks {
		if strings.Contains(typ, m) {
			return true
		}
	}
	for _, m := range deviceMessageMarks {
		if strings.Contains(msg, m) {
			return true
		}
	}
	short := ee.ExceptionType[strings.LastIndex(ee.ExceptionType, ".")+1:]
	for _, list := range [][]string{r.w.cfg.RetryOn, r.p.RetryOn} {
		for _, t := range list {
			if t == ee.ExceptionType || t == short {
				return true
			}
		}
	}
	return false
}

// toJobError maps an attempt's error to the job's error code.
func toJobError(err error) *job.Error {
	var je *job.Error
	if errors.As(err, &je) {
		return je
	}
	var ve *comfy.ValidationError
	if errors.As(err, &ve) {
		e := &job.Error{Code: job.CodeValidationFailed, Message: ve.Error()}
		if len(ve.NodeErrors) > 0 {
			e.NodeErrors, _ = json.Marshal(ve.NodeErrors)
		}
		return e
	}
	var ee *comfy.ExecutionError
	if errors.As(err, &ee) {
		tb := ee.Traceback
		if len(tb) > 20 {
			tb = tb[len(tb)-20:]
		}
		return &job.Error{Code: job.CodeExecutionError, Message: ee.ExceptionMessage, NodeID: ee.NodeID,
			NodeClass: ee.NodeType, ExceptionType: ee.ExceptionType, Traceback: tb}
	}
	if errors.Is(err, comfy.ErrInterrupted) {
		return &job.Error{Code: job.CodeExecutionError, Message: "the prompt was interrupted on the node by someone else"}
	}
	if errors.Is(err, comfy.ErrPromptLost) {
		return &job.Error{Code: job.CodeNodeUnavailable, Message: "the node lost the prompt repeatedly (restarting?)"}
	}
	return &job.Error{Code: job.CodeInternal, Message: err.Error()}
}

func (r *run) nodeErr(err error) error {
	if errors.Is(err, comfy.ErrUnavailable) {
		return fmt.Errorf("%w: %w", errNodeDown, err)
	}
	return err
}

func (r *run) storeErr(err error) error {
	if errors.Is(err, job.ErrTerminal) {
		return nil
	}
	return fmt.Errorf("worker: update job: %w", err)
}
