package template

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/job"
)

// Compile checks a definition and builds the template it registers, without storing
// it (Version and times are zero): the workflow parsed or converted from the UI format,
// and its parameters resolved or discovered. A store calls it before writing.
//
// objectInfo returns a ComfyUI node's /object_info; it converts UI-format workflows and
// types parameters (bounds, choices, tooltips). It may be nil: UI-format workflows are
// then refused with a clear error and parameter types are inferred from the workflow's
// values. When it fails, Compile returns an error matching ErrObjectInfo.
//
// A refused definition is a *job.SpecError with code invalid_template (name,
// parameters) or invalid_workflow (the workflow cannot be read, converted or has broken
// links; ComfyUI's problems are in Details).
func Compile(ctx context.Context, def Definition, objectInfo func(context.Context) (comfy.ObjectInfo, error)) (*Template, error) {
	if !ValidName(def.Name) {
		return nil, &job.SpecError{Code: CodeInvalidTemplate, Field: "name",
			Message: fmt.Sprintf("template name %q must match ^[a-z0-9][a-z0-9_-]{0,63}$", def.Name)}
	}
	raw := bytes.TrimSpace(def.Workflow)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, &job.SpecError{Code: CodeInvalidWorkflow, Field: "workflow", Message: "a workflow is required"}
	}
	var info comfy.ObjectInfo
	if objectInfo != nil {
		var err error
		if info, err = objectInfo(ctx); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrObjectInfo, err)
		}
	}
	var wf comfy.Workflow
	if comfy.IsUIFormat(raw) {
		if info == nil {
			return nil, &job.SpecError{Code: CodeInvalidWorkflow, Field: "workflow",
				Message: "this is a UI-format workflow and no object_info is available to convert it: save it with \"Export (API)\" in ComfyUI, or configure an object_info source"}
		}
		var err error
		if wf, err = comfy.ConvertUI(raw, info, nil); err != nil {
			return nil, &job.SpecError{Code: CodeInvalidWorkflow, Field: "workflow", Message: err.Error()}
		}
	} else {
		var err error
		if wf, err = comfy.ParseWorkflow(raw); err != nil {
			return nil, workflowError(err)
		}
	}
	if err := wf.Validate(); err != nil {
		return nil, workflowError(err)
	}
	return compile(def, wf, info)
}

func workflowError(err error) error {
	se := &job.SpecError{Code: CodeInvalidWorkflow, Field: "workflow", Message: err.Error()}
	var we *comfy.WorkflowError
	if errors.As(err, &we) {
		se.Details = we.Problems
	}
	return se
}
