// Package producer is the Go library a program imports to submit ComfyUI jobs to comfyq
// and follow them: Enqueue, Get, Wait, Watch, List and Cancel.
//
//	p, err := producer.New(producer.Config{RedisURL: "redis://127.0.0.1:6379/0"})
//	j, err := p.Enqueue(ctx, job.Spec{Workflow: workflowJSON})
//	j, err = p.Wait(ctx, j.ID)
//
// A job is written to Redis as a record (jobstore.Store) and an asynq task of type comfyq:job
// whose TaskID is the job id; workers attached to ComfyUI nodes pull it.
package producer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/validate"
	"github.com/comfyq/comfyq/fairshare"
	"github.com/comfyq/comfyq/internal/nodeinfo"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
)

// Config configures a Client.
type Config struct {
	// RedisURL is a redis://, rediss:// or redis-sentinel:// URL (asynq's forms).
	// Ignored when Redis is set.
	RedisURL string
	// Redis is an existing client to use instead of RedisURL; the Client does not close it.
	Redis redis.UniversalClient
	// Retention is how long job records are kept (default 7 days).
	Retention time.Duration
	// Hub delivers the live events of Watch and Wait. Default: a hub of the client's own
	// (one Redis pattern subscription, opened on the first Watch). Share one hub among
	// the clients and stores of a process; the Client does not close it.
	Hub *jobstore.Hub
	// ObjectInfo converts UI-format workflows to API format. Without it, UI-format
	// workflows are refused with a clear error.
	ObjectInfo func(ctx context.Context) (comfy.ObjectInfo, error)
	// NodeObjectInfo returns the object_info of every node the workers drive, merged,
	// or an error while a node has published none. When it answers, submissions are
	// validated against it, model names included, and it converts UI-format
	// workflows; otherwise ObjectInfo does. Default: what the workers published in
	// this Redis (package nodeinfo), unless IgnoreNodeObjectInfo.
	NodeObjectInfo func(ctx context.Context) (comfy.ObjectInfo, error)
	// IgnoreNodeObjectInfo leaves NodeObjectInfo unset: only ObjectInfo is used.
	IgnoreNodeObjectInfo bool
	// ObjectInfoModels tells that ObjectInfo lists the models of every node that may
	// run a job, so that model names (checkpoints, LoRAs, VAEs) are checked too. Leave
	// it false for a saved object_info or one node's among several.
	ObjectInfoModels bool
	// Limits bound a submission (nodes of its workflow, nesting and string length of
	// input values, input files; see validate.Limits for the defaults).
	Limits validate.Limits
	// Templates resolves template submissions. Without it, template submissions are
	// refused.
	Templates job.TemplateResolver
	// Notifier is told when Cancel ends a job that no worker held (webhooks).
	Notifier Notifier
	// NoFairShare enqueues every job straight into its queue, in arrival order. By
	// default the jobs of tenants (job.Spec.Tenant) share each queue in turn (package
	// fairshare): a tenant's burst waits behind a few of its own tasks, not in front
	// of everyone else's. Jobs without a tenant are never held back.
	NoFairShare bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Notifier receives job lifecycle events (delivery.Dispatcher implements it).
type Notifier interface {
	Notify(ctx context.Context, event string, j *job.Job)
}

// Client submits and follows jobs.
type Client struct {
	rdb       redis.UniversalClient
	ownsRedis bool
	store     *jobstore.Store
	asynq     *asynq.Client
	inspector *asynq.Inspector
	gate      *fairshare.Gate // nil with NoFairShare
	cfg       Config
	log       *slog.Logger
}

// New returns a Client. It checks that Redis answers.
func New(cfg Config) (*Client, error) {
	rdb := cfg.Redis
	owns := false
	if rdb == nil {
		var err error
		if rdb, err = OpenRedis(cfg.RedisURL); err != nil {
			return nil, err
		}
		owns = true
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.NodeObjectInfo == nil && !cfg.IgnoreNodeObjectInfo {
		cfg.NodeObjectInfo = nodeinfo.NewReader(rdb).ObjectInfo
	}
	c := &Client{
		rdb:       rdb,
		ownsRedis: owns,
		store:     jobstore.New(rdb, jobstore.Config{Retention: cfg.Retention, Hub: cfg.Hub, Logger: cfg.Logger}),
		asynq:     asynq.NewClientFromRedisClient(rdb),
		inspector: asynq.NewInspectorFromRedisClient(rdb),
		cfg:       cfg,
		log:       cfg.Logger,
	}
	if !cfg.NoFairShare {
		c.gate = fairshare.New(rdb, fairshare.Config{Logger: cfg.Logger})
	}
	return c, nil
}

// OpenRedis opens a Redis client from a redis://, rediss:// or redis-sentinel:// URL.
func OpenRedis(rawURL string) (redis.UniversalClient, error) {
	return OpenRedisPool(rawURL, 0)
}

// OpenRedisPool is OpenRedis with at most poolSize connections (0:
// go-redis's default, 10 per CPU). A process with many concurrent jobs (a worker with
// many nodes and slots) needs more than the default: when every connection is busy a
// command waits for one, and each step of every job takes that wait.
func OpenRedisPool(rawURL string, poolSize int) (redis.UniversalClient, error) {
	if rawURL == "" {
		return nil, errors.New("producer: no Redis URL: set --redis or COMFYQ_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
	}
	opt, err := asynq.ParseRedisURI(rawURL)
	if err != nil {
		return nil, fmt.Errorf("producer: bad Redis URL: %w", err)
	}
	if poolSize > 0 {
		switch o := opt.(type) {
		case asynq.RedisClientOpt:
			o.PoolSize = poolSize
			opt = o
		case asynq.RedisFailoverClientOpt:
			o.PoolSize = poolSize
			opt = o
		}
	}
	rdb, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, errors.New("producer: unsupported Redis URL")
	}
	return rdb, nil
}

var _ job.Client = (*Client)(nil)

// FairShare returns the gate that shares queues among tenants, nil with NoFairShare.
// A process that submits jobs runs its Sweep (the API server does).
func (c *Client) FairShare() *fairshare.Gate { return c.gate }

// Store returns the job store the client uses.
func (c *Client) Store() *jobstore.Store { return c.store }

// Close releases the client's connections.
func (c *Client) Close() error {
	c.store.Close()
	if c.ownsRedis {
		return c.rdb.Close()
	}
	return nil
}

// Enqueue validates a submission, creates the job record and enqueues its task. Bad
// input returns a *job.SpecError and enqueues nothing. With an idempotency key that
// already names a job, it returns that job.
func (c *Client) Enqueue(ctx context.Context, spec job.Spec) (*job.Job, error) {
	if err := spec.Normalize(); err != nil {
		return nil, err
	}
	hash, err := submissionHash(spec)
	if err != nil {
		return nil, err
	}
	payload, version, err := c.resolve(ctx, &spec)
	if err != nil {
		return nil, err
	}
	id, err := job.NewID()
	if err != nil {
		return nil, fmt.Errorf("producer: new id: %w", err)
	}
	payload.JobID = id
	payload.Tenant = spec.Tenant
	data, err := job.EncodePayload(payload)
	if err != nil {
		return nil, fmt.Errorf("producer: encode payload: %w", err)
	}
	j := &job.Job{
		ID:              id,
		Status:          job.StatusQueued,
		Queue:           spec.Queue,
		Tenant:          spec.Tenant,
		Template:        spec.Template,
		TemplateVersion: version,
		Attempt:         1,
		MaxAttempts:     spec.MaxAttempts,
		Metadata:        spec.Metadata,
		Webhook:         spec.Webhook,
		CreatedAt:       time.Now().UTC(),
		SubmissionHash:  hash,
	}
	idem := spec.IdempotencyKey
	if idem != "" && spec.Tenant != "" {
		// Each tenant has its own idempotency keys: another tenant's same key names
		// another job, never this one.
		idem = "tenant:" + spec.Tenant + ":" + idem
	}
	got, created, err := c.store.Create(ctx, j, idem)
	if err != nil {
		return nil, err
	}
	if !created {
		if got.SubmissionHash != "" && got.SubmissionHash != hash {
			return nil, &job.SpecError{Code: job.CodeIdempotencyKeyReuse, Field: "idempotency_key",
				Message: fmt.Sprintf("this idempotency key names job %s, submitted with another body; a new submission needs a new key", got.ID),
				Details: map[string]string{"job_id": got.ID}}
		}
		if got.Status == job.StatusQueued {
			// The earlier submission may have died between record and task: enqueue
			// again; an existing task makes this a no-op. The task must carry the
			// existing job's id: the worker finds the record by it.
			payload.JobID = got.ID
			if data, err = job.EncodePayload(payload); err != nil {
				return nil, fmt.Errorf("producer: encode payload: %w", err)
			}
			if err := c.enqueueTask(ctx, got, data); err != nil {
				return nil, fmt.Errorf("producer: enqueue: %w", err)
			}
		}
		return got, nil
	}
	fair := c.gate != nil && j.Tenant != ""
	var opts []asynq.Option
	if fair {
		opts = append(opts, asynq.ProcessAt(c.gate.ParkUntil()))
	}
	if err := c.enqueueTask(ctx, j, data, opts...); err != nil {
		// Leave nothing behind that claims to be queued.
		c.rdb.Del(context.WithoutCancel(ctx), jobstore.KeyPrefix+"job:"+id)
		if idem != "" {
			c.rdb.Del(context.WithoutCancel(ctx), jobstore.KeyPrefix+"idem:"+idem)
		}
		return nil, fmt.Errorf("producer: enqueue: %w", err)
	}
	if fair {
		if err := c.gate.Admit(ctx, j.Queue, j.Tenant, id); err != nil {
			// Not parked: into the queue now, in arrival order, rather than never.
			c.log.Warn("fair share: admitting the job straight into its queue", "job_id", id, "tenant", j.Tenant, "err", err)
			if rerr := c.inspector.RunTask(j.Queue, id); rerr != nil {
				c.log.Error("fair share: the job's task waits until its park time", "job_id", id, "err", rerr)
			}
		}
	}
	c.log.Debug("job enqueued", "job_id", id, "queue", spec.Queue, "tenant", spec.Tenant, "template", spec.Template)
	return j, nil
}

// submissionHash is the SHA-256 of a normalised submission without its idempotency
// key; the workflow is re-encoded with sorted keys, so that spacing and key order do
// not make a retry look like another submission.
func submissionHash(spec job.Spec) (string, error) {
	spec.IdempotencyKey = ""
	if len(spec.Workflow) > 0 {
		dec := json.NewDecoder(bytes.NewReader(spec.Workflow))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return "", &job.SpecError{Code: job.CodeInvalidWorkflow, Field: "workflow", Message: "the workflow is not JSON: " + err.Error()}
		}
		canon, err := json.Marshal(v)
		if err != nil {
			return "", fmt.Errorf("producer: hash the submission: %w", err)
		}
		spec.Workflow = canon
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return "", fmt.Errorf("producer: hash the submission: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// TaskTimeout is how long asynq lets a handler run beyond the job's own timeout, for
// input uploads, queueing on the node and output uploads.
const TaskTimeout = 2 * time.Hour

func (c *Client) enqueueTask(ctx context.Context, j *job.Job, payload []byte, opts ...asynq.Option) error {
	var p job.Payload
	_ = json.Unmarshal(payload, &p)
	task := asynq.NewTask(job.TypeJob, payload,
		asynq.TaskID(j.ID),
		asynq.Queue(j.Queue),
		// Only failures count against MaxRetry, and the worker stops with SkipRetry at the
		// job's last attempt; the extra retry keeps hand-backs (node down, shutdown) on
		// the last attempt from being archived by asynq.
		asynq.MaxRetry(j.MaxAttempts),
		asynq.Timeout(time.Duration(p.TimeoutS)*time.Second+TaskTimeout),
	)
	_, err := c.asynq.EnqueueContext(ctx, task, opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	return err
}

// resolve turns the submission into the task payload: template or workflow to an
// API-format prompt, set overrides, image targets, seeds; then validates the prompt as
// it will be queued (validate.Prompt), so that nothing a node would refuse is stored.
func (c *Client) resolve(ctx context.Context, spec *job.Spec) (*job.Payload, int, error) {
	limits := c.cfg.Limits.WithDefaults()
	if limits.MaxImages > 0 && len(spec.Images) > limits.MaxImages {
		return nil, 0, &job.SpecError{Code: job.CodeTooLarge, Field: "images",
			Message: fmt.Sprintf("%d input files; a submission takes at most %d", len(spec.Images), limits.MaxImages)}
	}
	info, models := c.objectInfo(ctx)
	var wf comfy.Workflow
	var version int
	var imageTargets map[string][]string
	extra := map[string]json.RawMessage{}
	switch {
	case spec.Template != "":
		if c.cfg.Templates == nil {
			return nil, 0, &job.SpecError{Code: job.CodeUnknownTemplate, Field: "template", Message: fmt.Sprintf("template %q not found: no templates are configured", spec.Template)}
		}
		res, err := c.cfg.Templates.Resolve(ctx, spec.Template, spec.Params)
		if err != nil {
			return nil, 0, err
		}
		if wf, err = comfy.ParseWorkflow(res.Workflow); err != nil {
			return nil, 0, workflowError(err)
		}
		version, imageTargets = res.Version, res.ImageTargets
	default:
		var err error
		wf, err = c.parseWorkflow(ctx, spec.Workflow, info, extra)
		if err != nil {
			return nil, 0, err
		}
	}
	paths := make([]string, 0, len(spec.Set))
	for p := range spec.Set {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := wf.Set(p, spec.Set[p]); err != nil {
			return nil, 0, &job.SpecError{Code: job.CodeInvalidRequest, Field: "set." + p, Message: err.Error()}
		}
	}
	images := map[string]job.ImageSource{}
	provided := make([]string, 0, len(spec.Images))
	for target, src := range spec.Images {
		var targets []string
		if imageTargets != nil {
			t, ok := imageTargets[target]
			if !ok {
				return nil, 0, &job.SpecError{Code: job.CodeUnknownParameter, Field: "images." + target, Message: fmt.Sprintf("template %q has no image parameter %q", spec.Template, target)}
			}
			targets = t
		} else {
			targets = []string{target}
		}
		for _, t := range targets {
			node, input, err := comfy.SplitPath(t)
			if err != nil {
				return nil, 0, &job.SpecError{Code: job.CodeInvalidRequest, Field: "images." + target, Message: err.Error()}
			}
			id, err := wf.ResolveNode(node)
			if err != nil {
				return nil, 0, &job.SpecError{Code: job.CodeInvalidRequest, Field: "images." + target, Message: err.Error()}
			}
			images[id+".inputs."+input] = src
			provided = append(provided, id+".inputs."+input)
		}
	}
	if spec.RandomizeSeeds {
		wf.RandomizeSeeds(nil)
	}
	if err := validate.Prompt(wf, info, validate.Options{Limits: limits, Provided: provided, Models: models}); err != nil {
		return nil, 0, workflowError(err)
	}
	prompt, err := json.Marshal(wf)
	if err != nil {
		return nil, 0, fmt.Errorf("producer: encode workflow: %w", err)
	}
	p := &job.Payload{Prompt: prompt, TimeoutS: spec.TimeoutS, Webhook: spec.Webhook, RetryOn: spec.RetryOn,
		SealedExtraData: spec.SealedExtraData}
	if len(images) > 0 {
		p.Images = images
	}
	if len(extra) > 0 {
		p.ExtraPNGInfo = extra
	}
	return p, version, nil
}

// objectInfo returns the node classes to validate against and whether they list
// every node's models: the nodes' own (NodeObjectInfo) when every node published
// them, else ObjectInfo, else nil when there is no source or it cannot be read now
// (the prompt's structure is still checked, and the node checks the rest).
func (c *Client) objectInfo(ctx context.Context) (comfy.ObjectInfo, bool) {
	if c.cfg.NodeObjectInfo != nil {
		if info, err := c.cfg.NodeObjectInfo(ctx); err == nil && len(info) > 0 {
			return info, true
		}
	}
	if c.cfg.ObjectInfo == nil {
		return nil, false
	}
	info, err := c.cfg.ObjectInfo(ctx)
	if err != nil {
		c.log.Warn("object_info unavailable: submissions are checked for structure only", "err", err)
		return nil, false
	}
	return info, c.cfg.ObjectInfoModels
}

func (c *Client) parseWorkflow(ctx context.Context, data json.RawMessage, info comfy.ObjectInfo, extra map[string]json.RawMessage) (comfy.Workflow, error) {
	if !comfy.IsUIFormat(data) {
		wf, err := comfy.ParseWorkflow(data)
		if err != nil {
			return nil, workflowError(err)
		}
		return wf, nil
	}
	if info == nil && c.cfg.ObjectInfo == nil {
		return nil, &job.SpecError{Code: job.CodeInvalidWorkflow, Field: "workflow",
			Message: "this is a UI-format workflow and no object_info is available to convert it: save it with \"Export (API)\" in ComfyUI, or give the producer an object_info source"}
	}
	if info == nil {
		if _, err := c.cfg.ObjectInfo(ctx); err != nil {
			return nil, fmt.Errorf("producer: object_info for UI conversion: %w", err)
		}
		return nil, errors.New("producer: object_info for UI conversion: empty")
	}
	wf, err := comfy.ConvertUI(data, info, nil)
	if err != nil {
		return nil, &job.SpecError{Code: job.CodeInvalidWorkflow, Field: "workflow", Message: err.Error()}
	}
	// Keep the UI graph in the PNG metadata, as ComfyUI's frontend does.
	extra["workflow"] = append(json.RawMessage(nil), data...)
	return wf, nil
}

// workflowError turns a refused workflow into the submission's error: a
// *validate.LimitError into too_large (or invalid_request for nesting), a
// *comfy.ValidationError into invalid_workflow with ComfyUI's {error, node_errors} as
// details.
func workflowError(err error) error {
	var le *validate.LimitError
	if errors.As(err, &le) {
		code := job.CodeTooLarge
		if le.Limit == validate.LimitDepth {
			code = job.CodeInvalidRequest
		}
		return &job.SpecError{Code: code, Field: "workflow", Message: strings.TrimPrefix(le.Error(), "validate: ")}
	}
	var ve *comfy.ValidationError
	if errors.As(err, &ve) {
		return &job.SpecError{Code: job.CodeInvalidWorkflow, Field: "workflow", Message: validate.Summary(ve), Details: ve}
	}
	se := &job.SpecError{Code: job.CodeInvalidWorkflow, Field: "workflow", Message: err.Error()}
	var we *comfy.WorkflowError
	if errors.As(err, &we) {
		se.Details = we.Problems
	}
	return se
}

// Get returns the job's record, or job.ErrNotFound.
func (c *Client) Get(ctx context.Context, id string) (*job.Job, error) {
	return c.store.Get(ctx, id)
}

// Watch streams the job's events: its current state first, then every status and
// progress change, closing after a terminal state or when ctx ends. It returns
// jobstore.ErrUnavailable when Redis does not answer the subscription in time.
func (c *Client) Watch(ctx context.Context, id string) (<-chan job.Event, error) {
	return c.store.Watch(ctx, id)
}

// Wait blocks until the job reaches a terminal state and returns it (job.Wait: it polls
// Get when the live stream is lost, and returns early only when ctx ends or Get fails).
func (c *Client) Wait(ctx context.Context, id string) (*job.Job, error) {
	return job.Wait(ctx, c, id)
}

// List returns jobs newest first, filtered, with the cursor of the next page.
func (c *Client) List(ctx context.Context, opts job.ListOptions) ([]*job.Job, string, error) {
	return c.store.List(ctx, opts)
}

// Cancel cancels a job. A queued job that never reached a node is removed from its queue
// and ends canceled at once. Any other moves to canceling at once: the worker stops its
// prompt (of this attempt or an earlier one) on the node and records canceled when the
// node confirms. Canceling a job in a terminal state returns it with job.ErrTerminal.
func (c *Client) Cancel(ctx context.Context, id string) (*job.Job, error) {
	j, err := c.store.Update(ctx, id, func(j *job.Job) error {
		j.CancelRequested = true
		j.Status = job.StatusCanceling
		return nil
	})
	if err != nil {
		return j, err
	}
	// Still waiting in asynq and never on a node: delete the task so it never runs.
	// A job an earlier attempt put on a node keeps its task: the worker that takes it
	// stops that prompt first, and records canceled once the node confirms.
	if j.Node == "" && c.inspector.DeleteTask(j.Queue, id) == nil {
		if c.gate != nil && j.Tenant != "" {
			if gerr := c.gate.Release(context.WithoutCancel(ctx), j.Queue, j.Tenant, id); gerr != nil {
				c.log.Warn("fair share: release after cancel", "job_id", id, "err", gerr)
			}
		}
		canceled, err := c.markCanceled(ctx, id, "canceled while queued")
		if err == nil && c.cfg.Notifier != nil {
			c.cfg.Notifier.Notify(context.WithoutCancel(ctx), job.WebhookCanceled, canceled)
		}
		return canceled, err
	}
	// Held by a worker (pipelined on the node or running): cancel the handler's context;
	// the worker interrupts the prompt and records the cancel. A worker that picks the
	// task up later sees CancelRequested and stops before submitting.
	if err := c.inspector.CancelProcessing(id); err != nil {
		c.log.Warn("cancel: could not signal the worker", "job_id", id, "err", err)
	}
	// A task waiting for its retry runs now, so the cancel does not wait for a backoff.
	_ = c.inspector.RunTask(j.Queue, id)
	return j, nil
}

func (c *Client) markCanceled(ctx context.Context, id, msg string) (*job.Job, error) {
	return c.store.Update(ctx, id, func(j *job.Job) error {
		now := time.Now().UTC()
		j.Status = job.StatusCanceled
		j.Error = &job.Error{Code: job.CodeCanceled, Message: msg}
		j.FinishedAt = &now
		j.Progress = nil
		return nil
	})
}
