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
	"github.com/redis/go-redis/v9"

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
	// unplaced says the record named no node when this attempt began: no attempt
	// has queued the job's prompt anywhere (each records its node first), so there
	// is no prompt of it on a node to look for before submitting.
	unplaced bool
	log      *slog.Logger

	mu        sync.Mutex
	started   time.Time // execution_start seen
	startedCh chan struct{}
	execEnded time.Time
	// nodeStart and nodeEnd are the node's own execution_start and execution_success
	// timestamps (its clock), from the events or the history entry: execution_ms.
	nodeStart, nodeEnd time.Time
	progress           *progressTracker
	lastWrite          time.Time
	// taken, submitted and execSeen (worker clock) time the automatic depth: the
	// attempt began, its prompt was about to be queued, its execution_success arrived;
	// turnaround is its slot's time from the previous job's end to this one's task.
	taken, submitted, execSeen time.Time
	turnaround                 time.Duration
	lastPreview                time.Time
	// onNode says this attempt's prompt counts in n.promptsOnNode; starved that the
	// node held no other prompt of this worker when it was queued (depth.go).
	onNode, starved bool
	// early copies output files while the prompt ends (early.go).
	early *earlyCopies
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
	if p.Tenant != "" {
		// The task left the queue: the tenant's next parked job takes its place.
		queue, _ := asynq.GetQueueName(ctx)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if relErr := n.w.fair.Release(rctx, queue, p.Tenant, p.JobID); relErr != nil {
			n.log.Warn("fair share: release", "job_id", p.JobID, "tenant", p.Tenant, "err", relErr)
		}
		cancel()
	}
	// The job's record is read in the round trip that makes the job this process's.
	var record func() (*job.Job, error)
	release, err := n.w.own(ctx, p.JobID, func(pipe redis.Pipeliner) {
		record = n.w.store.Fetch(ctx, pipe, p.JobID)
	})
	if err != nil {
		n.log.Debug("not running the task", "job_id", p.JobID, "err", err)
		return err
	}
	defer release()
	inFlight := metrics.NodeJobsInFlight.WithLabelValues(n.cfg.Name)
	inFlight.Inc()
	defer inFlight.Dec()
	defer n.held.hold(p.JobID)()
	retried, _ := asynq.GetRetryCount(ctx)
	return n.newRun(p, retried+1).execute(ctx, record)
}

// newRun returns attempt number attempt of the job of p, on this node.
func (n *node) newRun(p *job.Payload, attempt int) *run {
	return &run{
		n: n, c: n.comfy, nodeURL: n.cfg.URL, nodeName: n.cfg.Name,
		w: n.w, p: p, id: p.JobID, attempt: attempt,
		log:       n.log.With("job_id", p.JobID),
		startedCh: make(chan struct{}),
	}
}

// execute runs the attempt; record gives the job's record as read when the attempt
// began (with its ownership, in one round trip).
func (r *run) execute(ctx context.Context, record func() (*job.Job, error)) error {
	r.taken, r.turnaround = time.Now(), slotTurnaround(ctx)
	store := r.w.store
	j, err := record()
	switch {
	case errors.Is(err, job.ErrNotFound):
		r.log.Warn("job record not found (expired or deleted): dropping the task")
		return fmt.Errorf("job %s has no record: %w", r.id, asynq.SkipRetry)
	case err != nil:
		return fmt.Errorf("worker: read job: %w", err)
	case j.Status.Terminal():
		return nil
	case j.CancelRequested:
		r.cancelEarlier(ctx, j)
		return nil
	}
	r.last = r.attempt >= j.MaxAttempts
	r.unplaced = j.Node == ""
	if j.Node != "" && j.Node != r.n.cfg.URL {
		if done := r.followElsewhere(ctx, j.Node, j.NodeName); done != nil {
			defer done()
		}
	}
	if _, err = store.Update(ctx, r.id, func(j *job.Job) error {
		j.Attempt = r.attempt
		j.Node = r.nodeURL
		j.NodeName = r.nodeName
		j.Status = job.StatusQueued
		j.Progress = nil
		j.Outputs = nil // those an earlier attempt committed before it failed
		return nil
	}); err != nil {
		return r.storeErr(err)
	}

	r.early = newEarlyCopies(ctx, r)
	defer r.early.finish()
	entry, err := r.runPrompt(ctx)
	if err != nil {
		r.early.finish()
		return r.fail(ctx, err)
	}
	r.mu.Lock()
	if r.execEnded.IsZero() {
		r.execEnded = time.Now()
	}
	r.mu.Unlock()
	// Found finished without a start seen: running and uploading are one write.
	uploading := r.ranOnNode(ctx, entry, toUploading)
	outputs, uploadMS, err := r.collect(ctx, entry, uploading)
	r.early.finish() // before the end is recorded: no copy outlives the job
	if err != nil {
		return r.fail(ctx, err)
	}
	err = r.succeed(ctx, outputs, uploadMS)
	if s, ok := r.depthSample(time.Now()); ok && err == nil {
		r.n.observeDepth(s)
	}
	return err
}

// countOnNode counts the prompt this attempt is about to queue in n.promptsOnNode and
// notes whether it was the node's only one (the node had run out of work from this
// worker). It is undone by leaveNode.
func (r *run) countOnNode() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.onNode {
		r.onNode = true
		r.starved = r.n.promptsOnNode.Add(1) == 1
	}
}

// leaveNode takes the attempt's prompt out of n.promptsOnNode: its execution ended, it
// could not be queued, or following it ended. Calls after the first do nothing.
func (r *run) leaveNode() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leaveNodeLocked()
}

func (r *run) leaveNodeLocked() {
	if r.onNode {
		r.onNode = false
		r.n.promptsOnNode.Add(-1)
	}
}

// depthSample returns the times of a succeeded attempt for the automatic depth
// (depth.go); ok is false for an attempt that did not submit its prompt itself (it
// re-attached or collected) or whose node did not give its execution times.
func (r *run) depthSample(done time.Time) (depthSample, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.submitted.IsZero() || r.nodeStart.IsZero() || r.nodeEnd.IsZero() || r.c != r.n.comfy {
		return depthSample{}, false
	}
	seen := r.execSeen
	if seen.IsZero() {
		seen = r.execEnded
	}
	return depthSample{Before: r.turnaround + r.submitted.Sub(r.taken), Exec: r.nodeEnd.Sub(r.nodeStart), After: done.Sub(seen), Starved: r.starved}, true
}

// followElsewhere handles a task taken over from another node (its worker died): when
// the prompt is still queued, running or finished on the node an earlier attempt used,
// this attempt follows and collects it there instead of running it again here. It
// returns a function releasing a client it had to open, or nil.
func (r *run) followElsewhere(ctx context.Context, url, name string) func() {
	c, release := r.clientFor(url)
	if c == nil {
		return nil
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

// clientFor returns a client of the node at url: this worker's own when it is attached
// to it, else a new one and a function releasing it (nil on a bad URL).
func (r *run) clientFor(url string) (*comfy.Client, func()) {
	for _, other := range r.w.nodes {
		if other.cfg.URL == url {
			return other.comfy, nil
		}
	}
	nc, err := comfy.New(comfy.Config{BaseURL: url, Logger: r.log})
	if err != nil {
		return nil, nil
	}
	return nc, func() { nc.Close() }
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
	if r.p.SealedExtraData != "" {
		extra, err := r.openExtraData()
		if err != nil {
			return comfy.PromptRequest{}, err
		}
		if req.ExtraData == nil {
			req.ExtraData = map[string]any{}
		}
		for k, v := range extra {
			if k != "extra_pnginfo" {
				req.ExtraData[k] = v
			}
		}
	}
	r.mu.Lock()
	r.progress = newProgressTracker(wf)
	r.submitted = time.Now()
	r.mu.Unlock()
	return req, nil
}

// openExtraData opens the job's sealed extra_data fields (a partner-node API key). The
// values are never logged: an error names the failure, not the data.
func (r *run) openExtraData() (map[string]any, error) {
	if r.w.sealer == nil {
		return nil, &job.Error{Code: job.CodeInvalidRequest,
			Message: "the job carries sealed extra_data (a partner-node API key) and this worker has no seal key: set COMFYQ_SEAL_KEY to the API's"}
	}
	plain, err := r.w.sealer.Open(r.p.SealedExtraData, job.SealContext)
	if err != nil {
		return nil, &job.Error{Code: job.CodeInvalidRequest,
			Message: "the job's sealed extra_data does not open with this worker's seal key: give the API and the workers the same COMFYQ_SEAL_KEY"}
	}
	var extra map[string]any
	if err := json.Unmarshal(plain, &extra); err != nil {
		return nil, &job.Error{Code: job.CodeInvalidRequest, Message: "the job's sealed extra_data is not a JSON object"}
	}
	return extra, nil
}
