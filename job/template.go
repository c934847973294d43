package job

import (
	"context"
	"encoding/json"
)

// TemplateResolver turns a template name and parameters into a workflow: what the
// producer needs of a template store (templatestore.Store implements it).
type TemplateResolver interface {
	// Resolve returns the template's workflow with params applied, the template version,
	// and the input paths of the template's image parameters by name. An unknown name
	// is a *SpecError with CodeUnknownTemplate, bad parameters one with
	// CodeInvalidParams.
	Resolve(ctx context.Context, name string, params map[string]any) (*Resolved, error)
}

// Resolved is a template applied to parameters.
type Resolved struct {
	// Workflow is the API-format workflow, as JSON (package job stands alone, so it
	// carries no comfy.Workflow; the producer parses it).
	Workflow json.RawMessage
	Version  int
	// ImageTargets maps an image parameter name to its input paths.
	ImageTargets map[string][]string
}
