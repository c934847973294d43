package job

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code: of a job's error (Job.Error.Code) and
// of a refused submission (SpecError.Code). Scripts branch on them; a code is never
// renamed, only added.
type Code string

// Error codes carried by Job.Error.Code.
const (
	// CodeInvalidWorkflow: the workflow is malformed (never retried; also a refused
	// submission).
	CodeInvalidWorkflow Code = "invalid_workflow"
	// CodeValidationFailed: ComfyUI rejected the prompt; NodeErrors holds its node_errors
	// (never retried).
	CodeValidationFailed Code = "validation_failed"
	// CodeExecutionError: a node raised during execution (retried up to max_attempts).
	CodeExecutionError Code = "execution_error"
	// CodeTimeout: the job ran longer than its timeout.
	CodeTimeout Code = "timeout"
	// CodeCanceled: the job was canceled.
	CodeCanceled Code = "canceled"
	// CodeNodeUnavailable: the ComfyUI node was unreachable (retried, not counted).
	CodeNodeUnavailable Code = "node_unavailable"
	// CodeInvalidInput: an input file of the job cannot be had: its URL answers 4xx, is
	// forbidden (private address, scheme) or redirects too often, the file is too large,
	// the storage key does not exist (never retried; a transient fetch failure is retried
	// and is not this code).
	CodeInvalidInput Code = "invalid_input"
	// CodeUploadFailed: copying outputs to storage failed (retried without re-running the
	// prompt while the outputs are still on the node).
	CodeUploadFailed Code = "upload_failed"
	// CodeInternal: anything else.
	CodeInternal Code = "internal"
)

// Error codes carried by SpecError.Code: a submission refused before anything is
// enqueued (CodeInvalidWorkflow too).
const (
	// CodeInvalidRequest: a field of the submission is malformed or out of range.
	CodeInvalidRequest Code = "invalid_request"
	// CodeInvalidParams: template parameters do not fit the template; Details lists
	// every violation.
	CodeInvalidParams Code = "invalid_params"
	// CodeUnknownTemplate: the submission names a template that does not exist.
	CodeUnknownTemplate Code = "unknown_template"
	// CodeUnknownParameter: the submission names an image parameter the template does
	// not have.
	CodeUnknownParameter Code = "unknown_parameter"
	// CodeInvalidTemplate: a template definition is refused (name, parameters).
	CodeInvalidTemplate Code = "invalid_template"
	// CodeTooLarge: the submission is over one of its limits (nodes of a workflow, a
	// string value, input files; the API answers 413).
	CodeTooLarge Code = "too_large"
	// CodeIdempotencyKeyReuse: the idempotency key names a job submitted with another
	// body (the API answers 422).
	CodeIdempotencyKeyReuse Code = "idempotency_key_reuse"
)

// Codes returns every code a job's error (Job.Error.Code) can carry.
func Codes() []Code {
	return []Code{CodeInvalidWorkflow, CodeValidationFailed, CodeExecutionError, CodeTimeout,
		CodeCanceled, CodeNodeUnavailable, CodeInvalidInput, CodeUploadFailed, CodeInternal}
}

// SpecCodes returns every code a refused submission (SpecError.Code) can carry.
func SpecCodes() []Code {
	return []Code{CodeInvalidRequest, CodeInvalidWorkflow, CodeInvalidParams, CodeUnknownTemplate,
		CodeUnknownParameter, CodeInvalidTemplate, CodeTooLarge, CodeIdempotencyKeyReuse}
}

// Error is a job's error: a stable code, a message, and ComfyUI's details when there are.
type Error struct {
	Code          Code            `json:"code"`
	Message       string          `json:"message"`
	NodeID        string          `json:"node_id,omitempty"`
	NodeClass     string          `json:"node_class,omitempty"`
	ExceptionType string          `json:"exception_type,omitempty"`
	NodeErrors    json.RawMessage `json:"node_errors,omitempty"`
	Traceback     []string        `json:"traceback,omitempty"`
	// Retryable tells whether another attempt may follow (informative; the last attempt's
	// error is the job's final error).
	Retryable bool `json:"retryable,omitempty"`
}

func (e *Error) Error() string {
	if e.NodeID != "" {
		return fmt.Sprintf("%s: %s (node %s %s)", e.Code, e.Message, e.NodeID, e.NodeClass)
	}
	return string(e.Code) + ": " + e.Message
}

// Sentinel errors of the job package.
var (
	ErrNotFound     = errors.New("job: not found")
	ErrTerminal     = errors.New("job: already in a terminal state")
	ErrInvalidSpec  = errors.New("job: invalid submission")
	ErrConflict     = errors.New("job: concurrent update, try again")
	ErrUnknownQueue = errors.New("job: unknown queue")
)

// SpecError is a submission that is refused before anything is enqueued. Field names the
// offending field ("workflow", "params.seed", "images.10.inputs.image"), Code is a stable
// machine-readable code, Details optional structured information.
type SpecError struct {
	Code    Code   `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

func (e *SpecError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("job: %s: %s", e.Field, e.Message)
	}
	return "job: " + e.Message
}

// Unwrap makes errors.Is(err, ErrInvalidSpec) true.
func (e *SpecError) Unwrap() error { return ErrInvalidSpec }
