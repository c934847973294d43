package job

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Spec is a job submission: POST /v1/jobs, producer.Enqueue, comfyq submit.
// Exactly one of Workflow or Template is set.
type Spec struct {
	// Workflow is an API-format or UI-format workflow.
	Workflow json.RawMessage `json:"workflow,omitempty"`
	// Template names a registered template; Params are its parameters.
	Template string         `json:"template,omitempty"`
	Params   map[string]any `json:"params,omitempty"`
	// Set overrides inputs by path ("3.inputs.steps": 30), after template parameters.
	Set map[string]any `json:"set,omitempty"`
	// Images maps a target (an input path for a raw workflow, an image parameter's name for
	// a template) to a file the worker uploads to the node and wires into the target.
	Images map[string]ImageSource `json:"images,omitempty"`
	// Queue is the asynq queue (default "default").
	Queue string `json:"queue,omitempty"`
	// TimeoutS bounds the job's execution on the node, in seconds (default 600).
	TimeoutS int `json:"timeout_s,omitempty"`
	// MaxAttempts bounds the attempts (default 4, at most 25).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// RetryOn lists exception types (ComfyUI's exception_type: "RuntimeError",
	// "mymodule.FlakyError") after which a failed execution is retried, beside the
	// worker's list; other execution errors fail the job after one run.
	RetryOn []string `json:"retry_on,omitempty"`
	// Webhook is the job's own webhook subscription.
	Webhook *WebhookSpec `json:"webhook,omitempty"`
	// Metadata is stored with the job and returned as is.
	Metadata map[string]any `json:"metadata,omitempty"`
	// IdempotencyKey makes a retried submission return the same job.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// RandomizeSeeds gives every constant seed a new random value, so that an otherwise
	// identical prompt is not a full cache hit on the node.
	RandomizeSeeds bool `json:"randomize_seeds,omitempty"`
	// Tenant is the tenant the job belongs to (Job.Tenant). It is never read from JSON:
	// the HTTP API sets it from the API key, a Go program that submits with the
	// producer library sets it itself. Empty: no tenant (visible to admin keys only
	// when the API has authentication on).
	Tenant string `json:"-"`
	// SealedExtraData is copied to Payload.SealedExtraData: extra_data fields sealed by
	// the API (never read from a /v1 body).
	SealedExtraData string `json:"-"`
}

// ImageSource is a file given in a submission: exactly one of URL, Base64 or Key.
type ImageSource struct {
	URL    string `json:"url,omitempty"`
	Base64 string `json:"base64,omitempty"`
	Key    string `json:"key,omitempty"`
	// Filename optionally names the uploaded file (sanitised); default from the URL/key.
	Filename string `json:"filename,omitempty"`
}

// WebhookSpec is a per-job webhook.
type WebhookSpec struct {
	URL    string   `json:"url"`
	Events []string `json:"events,omitempty"`
}

// Defaults and limits of a submission.
const (
	DefaultQueue       = "default"
	DefaultTimeout     = 600 * time.Second
	DefaultMaxAttempts = 4
	MaxMaxAttempts     = 25
	MaxTimeout         = 24 * time.Hour
	MaxMetadataBytes   = 16 << 10
	MaxRetryOn         = 32
)

var queueName = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// ReservedQueuePrefix starts the names of comfyq's internal queues (the webhook
// deliveries' "comfyq_webhooks"): no job is submitted into one, as no worker runs jobs
// from it.
const ReservedQueuePrefix = "comfyq_"

// ReservedQueue reports whether q is an internal queue's name, refused for jobs. The
// test ignores case: asynq's names are case-sensitive, but "Comfyq_webhooks" next to
// "comfyq_webhooks" only confuses an operator.
func ReservedQueue(q string) bool {
	return len(q) >= len(ReservedQueuePrefix) && strings.EqualFold(q[:len(ReservedQueuePrefix)], ReservedQueuePrefix)
}

var tenantName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidTenant reports whether t is a valid tenant name: 1-64 letters, digits, '_', '-'
// or '.', starting with a letter or digit.
func ValidTenant(t string) bool { return tenantName.MatchString(t) }

// Normalize fills defaults and checks the fields that need no outside knowledge (not the
// workflow itself, nor template parameters). It returns a *SpecError.
func (s *Spec) Normalize() error {
	hasWF := len(strings.TrimSpace(string(s.Workflow))) > 0 && string(s.Workflow) != "null"
	switch {
	case hasWF && s.Template != "":
		return &SpecError{Code: CodeInvalidRequest, Field: "workflow", Message: "give either workflow or template, not both"}
	case !hasWF && s.Template == "":
		return &SpecError{Code: CodeInvalidRequest, Field: "workflow", Message: "a workflow or a template is required"}
	case !hasWF && s.Params != nil && s.Template == "":
		return &SpecError{Code: CodeInvalidRequest, Field: "params", Message: "params need a template"}
	}
	if hasWF && len(s.Params) > 0 {
		return &SpecError{Code: CodeInvalidRequest, Field: "params", Message: "params apply to templates; use set for a raw workflow"}
	}
	if s.Queue == "" {
		s.Queue = DefaultQueue
	}
	if !queueName.MatchString(s.Queue) {
		return &SpecError{Code: CodeInvalidRequest, Field: "queue", Message: "queue names are 1-64 letters, digits, '_', '-', '.' or ':'"}
	}
	if ReservedQueue(s.Queue) {
		return &SpecError{Code: CodeInvalidRequest, Field: "queue", Message: fmt.Sprintf("queue names starting with %q are reserved for comfyq's internal queues", ReservedQueuePrefix)}
	}
	if s.Tenant != "" && !ValidTenant(s.Tenant) {
		return &SpecError{Code: CodeInvalidRequest, Field: "tenant", Message: "tenant names are 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"}
	}
	if s.TimeoutS < 0 || s.TimeoutS > int(MaxTimeout/time.Second) {
		return &SpecError{Code: CodeInvalidRequest, Field: "timeout_s", Message: fmt.Sprintf("timeout_s must be between 1 and %d", int(MaxTimeout/time.Second))}
	}
	if s.TimeoutS == 0 {
		s.TimeoutS = int(DefaultTimeout / time.Second)
	}
	if s.MaxAttempts < 0 || s.MaxAttempts > MaxMaxAttempts {
		return &SpecError{Code: CodeInvalidRequest, Field: "max_attempts", Message: fmt.Sprintf("max_attempts must be between 1 and %d", MaxMaxAttempts)}
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = DefaultMaxAttempts
	}
	if len(s.RetryOn) > MaxRetryOn {
		return &SpecError{Code: CodeInvalidRequest, Field: "retry_on", Message: fmt.Sprintf("retry_on lists at most %d exception types", MaxRetryOn)}
	}
	for _, e := range s.RetryOn {
		if e == "" || len(e) > 200 {
			return &SpecError{Code: CodeInvalidRequest, Field: "retry_on", Message: "an exception type in retry_on is 1-200 characters"}
		}
	}
	for target, img := range s.Images {
		n := 0
		for _, v := range []string{img.URL, img.Base64, img.Key} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			return &SpecError{Code: CodeInvalidRequest, Field: "images." + target, Message: "give exactly one of url, base64 or key"}
		}
	}
	if s.Webhook != nil {
		if s.Webhook.URL == "" {
			return &SpecError{Code: CodeInvalidRequest, Field: "webhook.url", Message: "webhook url is required"}
		}
		for _, e := range s.Webhook.Events {
			if !ValidEvent(e) {
				return &SpecError{Code: CodeInvalidRequest, Field: "webhook.events", Message: fmt.Sprintf("unknown event %q (want job.started, job.progress, job.succeeded, job.failed, job.canceled)", e)}
			}
		}
	}
	if s.Metadata != nil {
		if data, err := json.Marshal(s.Metadata); err != nil || len(data) > MaxMetadataBytes {
			return &SpecError{Code: CodeInvalidRequest, Field: "metadata", Message: fmt.Sprintf("metadata must be a JSON object of at most %d bytes", MaxMetadataBytes)}
		}
	}
	if len(s.IdempotencyKey) > 256 {
		return &SpecError{Code: CodeInvalidRequest, Field: "idempotency_key", Message: "idempotency keys are at most 256 bytes"}
	}
	return nil
}

// Webhook event types.
const (
	WebhookStarted   = "job.started"
	WebhookProgress  = "job.progress"
	WebhookSucceeded = "job.succeeded"
	WebhookFailed    = "job.failed"
	WebhookCanceled  = "job.canceled"
)

// ValidEvent reports whether e is a webhook event type.
func ValidEvent(e string) bool {
	switch e {
	case WebhookStarted, WebhookProgress, WebhookSucceeded, WebhookFailed, WebhookCanceled:
		return true
	}
	return false
}

// WebhookEvents returns every webhook event type, in lifecycle order.
func WebhookEvents() []string {
	return []string{WebhookStarted, WebhookProgress, WebhookSucceeded, WebhookFailed, WebhookCanceled}
}
