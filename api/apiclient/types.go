package apiclient

import (
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/template"
)

// Accepted is the answer to a submission (202): where to follow the job.
type Accepted struct {
	ID     string     `json:"id"`
	Status job.Status `json:"status"`
	Queue  string     `json:"queue,omitempty"`
	// StatusURL is GET /v1/jobs/{id}; EventsURL is its Server-Sent Events stream. A
	// server without a public URL answers with links relative to its root
	// ("/v1/jobs/ID"); Client makes them absolute.
	StatusURL string `json:"status_url"`
	EventsURL string `json:"events_url"`
}

// JobList is a page of GET /v1/jobs.
type JobList struct {
	Jobs []*job.Job `json:"jobs"`
	// NextCursor fetches the next page (?cursor=); empty on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// IdempotencyHeader is the request header that makes a retried submission return the
// same job.
const IdempotencyHeader = "Idempotency-Key"

// TemplateInfo is a template as the API shows it: the template, its parameter schemas
// and where to submit it. GET /v1/templates lists them without their workflows.
type TemplateInfo struct {
	*template.Template
	// ParamsSchema is the JSON Schema of the params object of a submission.
	ParamsSchema map[string]any `json:"params_schema"`
	// ImagesSchema is the JSON Schema of the images object (image parameters).
	ImagesSchema map[string]any `json:"images_schema"`
	// JobsURL is POST /v1/templates/{name}/jobs.
	JobsURL string `json:"jobs_url"`
}

// TemplateList is the body of GET /v1/templates.
type TemplateList struct {
	Templates []TemplateInfo `json:"templates"`
}

// TemplateJobRequest is the body of POST /v1/templates/{name}/jobs: the template's
// parameters and images, and the submission options of job.Spec.
type TemplateJobRequest struct {
	Params         map[string]any             `json:"params,omitempty"`
	Images         map[string]job.ImageSource `json:"images,omitempty"`
	Set            map[string]any             `json:"set,omitempty"`
	Queue          string                     `json:"queue,omitempty"`
	TimeoutS       int                        `json:"timeout_s,omitempty"`
	MaxAttempts    int                        `json:"max_attempts,omitempty"`
	Webhook        *job.WebhookSpec           `json:"webhook,omitempty"`
	Metadata       map[string]any             `json:"metadata,omitempty"`
	IdempotencyKey string                     `json:"idempotency_key,omitempty"`
	RandomizeSeeds bool                       `json:"randomize_seeds,omitempty"`
}

// Spec returns the submission of the request for template name.
func (t TemplateJobRequest) Spec(name string) job.Spec {
	return job.Spec{
		Template: name, Params: t.Params, Images: t.Images, Set: t.Set, Queue: t.Queue,
		TimeoutS: t.TimeoutS, MaxAttempts: t.MaxAttempts, Webhook: t.Webhook,
		Metadata: t.Metadata, IdempotencyKey: t.IdempotencyKey, RandomizeSeeds: t.RandomizeSeeds,
	}
}
