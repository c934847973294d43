package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/job"
)

// run is one attempt of one job on one node.
type run struct {
	n *node
	// c is the ComfyUI node this attempt runs on: n's, or the node an earlier attempt
	// of the job left its prompt on (a task taken over by another node's server).
	c                 *comfy.Client
	nodeURL, nodeName string
	w                 *Worker
	p                 *job.Payload
	id                string
	attempt           int
	last              bool // the job's last attempt
	log               *slog.Logger

	mu          sync.Mutex
	started     time.Time // execution_start seen
	startedCh   chan struct{}
	execEnded   time.Time
	stopReason  error // why the follow context was canceled by us
	progress    *progressTracker
	lastWrite   time.Time
	notifiedRun bool
}

// Reasons the worker stops following a prompt.
var (
	errCanceled = errors.New("worker: job canceled")
	errTimeout  = errors.New("worker: job timed out")
)

// maxLostResubmits bounds how often one attempt submits again a prompt that the node
// lost (node restarted).
const maxLostResubmits = 3

func (n *node) handle(ctx context.Context, t *asynq.Task) error {
	p, err := job.DecodePayload(t.Payload())
	if err != nil {
		var v struct {
			V int `json:"v"`
		}
		if json.Unmarshal(t.Payload(), &v) == nil && v.V > job.PayloadVersion {
			// Written by a newer producer (a rolling upgrade): leave it to a newer worker.
			n.log.Warn("task payload is newer than this worker understands: handing it back; upgrade the worker", "err", err)
			return fmt.Errorf("%w: %w", errHandBack, err)
		}
		n.log.Error("dropping a task whose payload cannot be read", "err", err)
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	inFlight := metrics.NodeJobsInFlight.WithLabelValues(n.cfg.Name)
	inFlight.Inc()
	defer inFlight.Dec()
	defer n.held.hold(p.JobID)()
	retried, _ := asynq.GetRetryCount(ctx)
	r := &run{
		n: n, c: n.comfy, nodeURL: n.cfg.URL, nodeName: n.cfg.Name,
		w: n.w, p: p, id: p.JobID, attempt: retried + 1,
		log:       n.log.With("job_id", p.JobID),
		startedCh: make(chan struct{}),
	}
	return r.execute(ctx)
}

func (r *run) execute(ctx context.Context) error {
	store := r.w.store
	j, err := store.Get(ctx, r.id)
	switch {
	case errors.Is(err, job.ErrNotFound):
		r.log.Warn("job record not found (expired or deleted): dropping the task")
		return fmt.Errorf("job %s has no record: %w", r.id, asynq.SkipRetry)
	case err != nil:
		return fmt.Errorf("worker: read job: %w", err)
	case j.Status.Terminal():
		return nil
	case j.CancelRequested:
		r.finishCanceled(ctx, "canceled before it ran")
		return nil
	}
	r.last = r.attempt >= j.MaxAttempts
	if j.Node != "" && j.Node != r.n.cfg.URL {
		if done := r.followElsewhere(ctx, j.Node, j.NodeName); done != nil {
			defer done()
		}
	}
	if _, err := store.Update(ctx, r.id, func(j *job.Job) error {
		j.Attempt = r.attempt
		j.Node = r.nodeURL
		j.NodeName = r.nodeName
		j.Status = job.StatusQueued
		j.Progress = nil
		return nil
	}); err != nil {
		return r.storeErr(err)
	}

	entry, err := r.runPrompt(ctx)
	if err != nil {
		return r.fail(ctx, err)
	}
	r.mu.Lock()
	if r.execEnded.IsZero() {
		r.execEnded = time.Now()
	}
	r.mu.Unlock()
	outputs, uploadMS, err := r.collect(ctx, entry)
	if err != nil {
		return r.fail(ctx, err)
	}
	return r.succeed(ctx, outputs, uploadMS)
}

// followElsewhere handles a task taken over from another node (its worker died): when
// the prompt is still queued, running or finished on the node an earlier attempt used,
// this attempt follows and collects it there instead of running it again here. It
// returns a function releasing a client it had to open, or nil.
func (r *run) followElsewhere(ctx context.Context, url, name string) func() {
	var c *comfy.Client
	var release func()
	for _, other := range r.w.nodes {
		if other.cfg.URL == url {
			c = other.comfy
		}
	}
	if c == nil {
		nc, err := comfy.New(comfy.Config{BaseURL: url, Logger: r.log})
		if err != nil {
			return nil
		}
		c, release = nc, func() { nc.Close() }
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	loc, entry, err := c.Locate(lctx, r.id)
	cancel()
	switch {
	case err != nil, loc == comfy.PromptAbsent, loc == comfy.PromptDone && (entry == nil || !entry.Succeeded()):
		if release != nil {
			release()
		}
		return nil
	}
	r.log.Info("the prompt is on the node of an earlier attempt: following it there", "prompt_node", url, "where", loc)
	r.c, r.nodeURL, r.nodeName = c, url, name
	return release
}

// runPrompt gets the prompt to a finished, successful history entry: it re-attaches to
// a prompt the node already has, collects one that finished, or submits it.
func (r *run) runPrompt(ctx context.Context) (*comfy.HistoryEntry, error) {
	c := r.c
	for lost := 0; ; lost++ {
		loc, entry, err := c.Locate(ctx, r.id)
		if err != nil {
			return nil, r.nodeErr(err)
		}
		switch loc {
		case comfy.PromptDone:
			if _, failed := entry.Failed(); !failed && !entry.Interrupted() {
				r.log.Info("prompt already finished on the node: collecting its outputs")
				r.markRunning(ctx, time.Now())
				return entry, nil
			}
			// An earlier attempt failed: clear its history entry and run again.
			if err := c.DeleteHistory(ctx, r.id); err != nil {
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
	defer cancel(nil)
	done := make(chan struct{})
	defer close(done)
	onNode := make(chan struct{}) // closed once the prompt is known to be on the node
	go r.watch(ctx, fctx, cancel, done, onNode)

	c := r.c
	opts := comfy.FollowOptions{StallTimeout: r.w.cfg.StallTimeout, OnEvent: r.onEvent}
	var entry *comfy.HistoryEntry
	var err error
	if submit {
		var req comfy.PromptRequest
		if req, err = r.prepare(fctx); err != nil {
			if fctx.Err() != nil && ctx.Err() == nil {
				return nil, context.Cause(fctx)
			}
			return nil, err
		}
		// Subscribe before queueing so no early message is lost.
		opts.Subscription = c.Subscribe(r.id)
		cctx, ccancel := context.WithTimeout(fctx, 10*time.Second)
		if err := c.Connect(cctx); err != nil && fctx.Err() == nil {
			r.log.Warn("WebSocket not connected; following the prompt by polling", "err", err)
		}
		ccancel()
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

// prepare builds the prompt request: the workflow with input files uploaded to the node.
func (r *run) prepare(ctx context.Context) (comfy.PromptRequest, error) {
	wf, err := comfy.ParseWorkflow(r.p.Prompt)
	if err != nil {
		return comfy.PromptRequest{}, &job.Error{Code: job.CodeInvalidWorkflow, Message: err.Error()}
	}
	if err := r.uploadInputs(ctx, wf); err != nil {
		return comfy.PromptRequest{}, err
	}
	req := comfy.PromptRequest{Prompt: wf, PromptID: r.id}
	if len(r.p.ExtraPNGInfo) > 0 {
		req.ExtraData = map[string]any{"extra_pnginfo": r.p.ExtraPNGInfo}
	}
	r.mu.Lock()
	r.progress = newProgressTracker(wf)
	r.mu.Unlock()
	return req, nil
}

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
				return job.ErrSkip
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
	j, err := r.w.store.Update(ctx, r.id, func(j *job.Job) error {
		t := at.UTC()
		j.Status = job.StatusRunning
		if j.StartedAt == nil {
			j.StartedAt = &t
		}
		j.Progress = &job.Progress{}
		return nil
	})
	if err == nil {
		r.notify(ctx, job.WebhookStarted, j)
	}
}

func (r *run) notify(ctx context.Context, event string, j *job.Job) {
	if r.w.cfg.Notifier != nil && j != nil {
		r.w.cfg.Notifier.Notify(context.WithoutCancel(ctx), event, j)
	}
}

// fail records an attempt's error and tells asynq whether to retry.
func (r *run) fail(ctx context.Context, err error) error {
	wctx := context.WithoutCancel(ctx)
	c := r.c
	switch {
	case errors.Is(err, errCanceled):
		r.stopPrompt(wctx)
		r.finishCanceled(wctx, "canceled")
		return nil
	case errors.Is(err, errHandBack):
		r.requeue(wctx, nil)
		return err
	case errors.Is(err, errNodeDown), errors.Is(err, comfy.ErrUnavailable):
		r.log.Warn("node unavailable: handing the job back", "err", err)
		r.requeue(wctx, &job.Error{Code: job.CodeNodeUnavailable, Message: err.Error(), Retryable: true})
		return fmt.Errorf("%w: %w", errNodeDown, err)
	case errors.Is(err, errTimeout):
		r.stopPrompt(wctx)
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
	retry := !r.last && jerr.Code != job.CodeValidationFailed && jerr.Code != job.CodeInvalidWorkflow
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
// interrupt aimed at this prompt only if running.
func (r *run) stopPrompt(ctx context.Context) {
	c := r.c
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.DeleteFromQueue(ctx, r.id); err != nil {
		r.log.Warn("could not remove the prompt from the node's queue", "err", err)
	}
	if err := c.Interrupt(ctx, r.id); err != nil {
		r.log.Warn("could not interrupt the prompt", "err", err)
	}
}

// requeue puts the record back to queued for the next attempt.
func (r *run) requeue(ctx context.Context, e *job.Error) {
	_, _ = r.w.store.Update(ctx, r.id, func(j *job.Job) error {
		j.Status = job.StatusQueued
		j.Progress = nil
		if e != nil {
			j.Error = e
		}
		return nil
	})
}

func (r *run) finishCanceled(ctx context.Context, msg string) {
	r.finish(ctx, job.StatusCanceled, &job.Error{Code: job.CodeCanceled, Message: msg})
}

// finish moves the record to a terminal state and notifies.
func (r *run) finish(ctx context.Context, status job.Status, e *job.Error) {
	j, err := r.w.store.Update(ctx, r.id, func(j *job.Job) error {
		now := time.Now().UTC()
		j.Status = status
		j.Error = e
		j.FinishedAt = &now
		j.Timings = r.timings(j, now, 0)
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
	j, err := r.w.store.Update(ctx, r.id, func(j *job.Job) error {
		now := time.Now().UTC()
		j.Status = job.StatusSucceeded
		j.Outputs = outputs
		j.Error = nil
		j.FinishedAt = &now
		j.Timings = r.timings(j, now, uploadMS)
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
	r.log.Info("job succeeded", "outputs", len(outputs), "execution_ms", j.Timings.ExecutionMS, "upload_ms", uploadMS)
	r.notify(ctx, job.WebhookSucceeded, j)
	return nil
}

func (r *run) timings(j *job.Job, now time.Time, uploadMS int64) *job.Timings {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := &job.Timings{TotalMS: now.Sub(j.CreatedAt).Milliseconds(), UploadMS: uploadMS}
	if j.StartedAt != nil {
		t.QueuedMS = j.StartedAt.Sub(j.CreatedAt).Milliseconds()
		end := r.execEnded
		if end.IsZero() {
			end = now
		}
		t.ExecutionMS = max(end.Sub(*j.StartedAt).Milliseconds(), 0)
	}
	return t
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
