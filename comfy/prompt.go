package comfy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// PromptRequest is the body of POST /prompt (§1). The client_id is always the Client's.
type PromptRequest struct {
	// Prompt is the API-format workflow. Required.
	Prompt Workflow
	// PromptID is the id to queue the prompt under; "" lets ComfyUI choose a uuid4.
	// Choosing it yourself (a canonical lowercase UUID, which newer servers require) lets
	// you subscribe before queueing and find the prompt again after a restart.
	PromptID string
	// Number, when set, is the queue priority (lower runs first).
	Number *float64
	// Front queues the prompt ahead of the others (ignored when Number is set).
	Front bool
	// ExtraData is passed as extra_data, for example {"extra_pnginfo": {"workflow": …}}
	// to embed a UI workflow in saved PNGs.
	ExtraData map[string]any
	// PartialExecutionTargets, when non-nil, restricts execution to these output nodes
	// and their dependencies. An empty non-nil list is sent and rejected by ComfyUI
	// (prompt_no_outputs).
	PartialExecutionTargets []string
}

// PromptResponse is the answer of an accepted POST /prompt.
type PromptResponse struct {
	PromptID string `json:"prompt_id"`
	// Number is the queue position ComfyUI assigned: an integer, or a float when the
	// request carried a number.
	Number json.Number `json:"number"`
	// NodeErrors is non-empty when some output nodes failed validation: the prompt was
	// queued with the valid outputs only.
	NodeErrors map[string]NodeError `json:"node_errors"`
}

type promptBody struct {
	Prompt                  Workflow       `json:"prompt"`
	ClientID                string         `json:"client_id"`
	PromptID                string         `json:"prompt_id,omitempty"`
	Number                  *float64       `json:"number,omitempty"`
	Front                   bool           `json:"front,omitempty"`
	ExtraData               map[string]any `json:"extra_data,omitempty"`
	PartialExecutionTargets []string       `json:"partial_execution_targets,omitempty"`
}

// maxValidationBody bounds the 400 body decoded into a ValidationError.
const maxValidationBody = 1 << 20

// errNoPrompt is returned by QueuePrompt for a request without a workflow.
var errNoPrompt = errors.New("comfy: PromptRequest.Prompt is empty")

// QueuePrompt submits a prompt (POST /prompt). A prompt ComfyUI rejects (HTTP 400) gives
// a *ValidationError carrying the node_errors; nothing was queued then.
//
// Subscribe to the prompt id before calling QueuePrompt (or use Run): WebSocket messages
// can arrive before the POST answer.
func (c *Client) QueuePrompt(ctx context.Context, req PromptRequest) (*PromptResponse, error) {
	if len(req.Prompt) == 0 {
		return nil, errNoPrompt
	}
	body := promptBody{
		Prompt:    req.Prompt,
		ClientID:  c.cfg.ClientID,
		PromptID:  req.PromptID,
		Number:    req.Number,
		Front:     req.Front,
		ExtraData: req.ExtraData,
	}
	var in any = body
	if req.PartialExecutionTargets != nil {
		// omitempty would drop an empty list; send it as given.
		in = struct {
			promptBody
			PartialExecutionTargets []string `json:"partial_execution_targets"`
		}{body, req.PartialExecutionTargets}
	}
	var resp PromptResponse
	err := c.doJSON(ctx, http.MethodPost, "/prompt", nil, in, &resp, func(r *http.Response) error {
		if r.StatusCode != http.StatusBadRequest {
			return nil
		}
		raw := readBounded(r.Body, maxValidationBody)
		ve := &ValidationError{StatusCode: r.StatusCode, Raw: json.RawMessage(raw)}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(ve); err != nil || ve.Err.Type == "" && ve.Err.Message == "" {
			return &HTTPError{StatusCode: r.StatusCode, Body: string(raw), Path: r.Request.URL.Path, Method: r.Request.Method}
		}
		return ve
	})
	if err != nil {
		return nil, err
	}
	if resp.NodeErrors == nil {
		resp.NodeErrors = map[string]NodeError{}
	}
	return &resp, nil
}
