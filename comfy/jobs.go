package comfy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// JobStatus is a job's status in ComfyUI 0.38's jobs API (comfy_execution/jobs.py).
type JobStatus string

// Job statuses. An interrupted prompt is JobCancelled.
const (
	JobPending    JobStatus = "pending"
	JobInProgress JobStatus = "in_progress"
	JobCompleted  JobStatus = "completed"
	JobFailed     JobStatus = "failed"
	JobCancelled  JobStatus = "cancelled"
)

// Job is one prompt as GET /api/jobs/{id} describes it (ComfyUI 0.38 and later).
type Job struct {
	ID     string    `json:"id"`
	Status JobStatus `json:"status"`
	// Priority is the queue number.
	Priority json.Number `json:"priority"`
	// CreateTime, ExecutionStartTime and ExecutionEndTime are milliseconds since the
	// epoch; nil when unknown.
	CreateTime         *int64 `json:"create_time,omitempty"`
	ExecutionStartTime *int64 `json:"execution_start_time,omitempty"`
	ExecutionEndTime   *int64 `json:"execution_end_time,omitempty"`
	// ExecutionError is the execution_error message data of a failed job.
	ExecutionError          json.RawMessage `json:"execution_error,omitempty"`
	OutputsCount            int             `json:"outputs_count"`
	PreviewableOutputsCount int             `json:"previewable_outputs_count"`
	WorkflowID              string          `json:"workflow_id,omitempty"`
	// Outputs are the history outputs, normalised by the server (3D files given as
	// strings become file entries). Only for finished jobs.
	Outputs map[string]NodeOutput `json:"outputs,omitempty"`
	// ExecutionStatus is the history status. Only for finished jobs.
	ExecutionStatus *HistoryStatus `json:"execution_status,omitempty"`
	Workflow        *struct {
		Prompt    Workflow       `json:"prompt"`
		ExtraData map[string]any `json:"extra_data"`
	} `json:"workflow,omitempty"`
}

// Finished reports whether the job reached a terminal status.
func (j *Job) Finished() bool {
	return j.Status == JobCompleted || j.Status == JobFailed || j.Status == JobCancelled
}

// HistoryEntry returns a finished job as the history entry it stands for, so callers
// handle both API generations alike. OutputsToExecute and Meta are not part of a job.
func (j *Job) HistoryEntry() *HistoryEntry {
	h := &HistoryEntry{PromptID: j.ID, Outputs: j.Outputs}
	h.Prompt = QueueItem{Number: j.Priority, PromptID: j.ID}
	if j.Workflow != nil {
		h.Prompt.Prompt, h.Prompt.ExtraData = j.Workflow.Prompt, j.Workflow.ExtraData
	}
	if j.ExecutionStatus != nil {
		h.Status = *j.ExecutionStatus
	}
	return h
}

// Job returns one job of the jobs API (GET /api/jobs/{id}), or ErrNotFound. On a node
// without the jobs API it fails with ErrNotFound too: use Locate, which picks the path.
func (c *Client) Job(ctx context.Context, promptID string) (*Job, error) {
	if promptID == "" {
		return nil, fmt.Errorf("comfy: Job: empty prompt id")
	}
	var j Job
	if err := c.doJSON(ctx, http.MethodGet, "/api/jobs/"+url.PathEscape(promptID), nil, nil, &j, nil); err != nil {
		return nil, err
	}
	return &j, nil
}

// CancelJob cancels a job through the jobs API (POST /api/jobs/{id}/cancel): a running
// job is interrupted only if it is still the one running, a pending one is dequeued,
// and a finished or unknown one is left alone. It reports whether a cancel happened.
func (c *Client) CancelJob(ctx context.Context, promptID string) (bool, error) {
	if promptID == "" {
		return false, fmt.Errorf("comfy: CancelJob: empty prompt id")
	}
	var resp struct {
		Cancelled bool `json:"cancelled"`
	}
	err := c.doJSON(ctx, http.MethodPost, "/api/jobs/"+url.PathEscape(promptID)+"/cancel", nil, nil, &resp, nil)
	return resp.Cancelled, err
}

// Cancel stops a prompt by the best path the node offers. With the jobs API it is
// CancelJob, atomic on the server: cancelling a prompt that has just finished is a
// no-op, never an interrupt of the prompt that started after it. Without it, the
// prompt is deleted from the queue and then interrupted by id (POST /interrupt
// {"prompt_id"}), which checks and interrupts in two steps; the result is then true
// when both requests were sent, as the node does not say what it did.
func (c *Client) Cancel(ctx context.Context, promptID string) (bool, error) {
	if c.Capabilities().JobsAPI {
		return c.CancelJob(ctx, promptID)
	}
	// Both are tried even if the first fails: a running prompt needs the interrupt.
	derr := c.DeleteFromQueue(ctx, promptID)
	ierr := c.Interrupt(ctx, promptID)
	if err := errors.Join(derr, ierr); err != nil {
		return false, err
	}
	return true, nil
}

// locateJob is Locate over the jobs API: one request. The server reads history before
// the queue snapshot it took, so a prompt finishing meanwhile is never absent.
func (c *Client) locateJob(ctx context.Context, promptID string) (PromptLocation, *HistoryEntry, error) {
	j, err := c.Job(ctx, promptID)
	switch {
	case err == nil:
	case isJobNotFound(err):
		return PromptAbsent, nil, nil
	case errors.Is(err, ErrNotFound):
		// The route itself is gone: the node restarted as an older version. Fall back
		// to the paths every version serves until capabilities are detected again.
		c.log.Warn("comfy: the node no longer serves the jobs API; using /queue and /history")
		c.caps.Store(&Capabilities{Version: c.Capabilities().Version})
		return c.Locate(ctx, promptID)
	default:
		return PromptAbsent, nil, err
	}
	switch j.Status {
	case JobPending:
		return PromptQueued, nil, nil
	case JobInProgress:
		return PromptRunning, nil, nil
	}
	return PromptDone, j.HistoryEntry(), nil
}

// isJobNotFound tells the jobs API's own 404 ({"error": "Job not found"}, server.py
// get_job_by_id) from the 404 of a route that does not exist.
func isJobNotFound(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.StatusCode == http.StatusNotFound && strings.Contains(he.Body, "Job not found")
}
