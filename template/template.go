package template

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/job"
)

// Error codes of the *job.SpecError values this package returns.
const (
	// CodeInvalidTemplate: a definition is refused (name, parameters).
	CodeInvalidTemplate = job.CodeInvalidTemplate
	// CodeInvalidWorkflow: a definition's workflow cannot be read or converted.
	CodeInvalidWorkflow = job.CodeInvalidWorkflow
	// CodeInvalidParams: a submission's parameters do not fit the template.
	CodeInvalidParams = job.CodeInvalidParams
	// CodeUnknownTemplate: a submission names a template that does not exist.
	CodeUnknownTemplate = job.CodeUnknownTemplate
)

// Sentinel errors of the template package.
var (
	ErrNotFound = errors.New("template: not found")
	ErrExists   = errors.New("template: already exists")
	// ErrObjectInfo wraps a failure to read object_info while registering a template.
	ErrObjectInfo = errors.New("template: object_info unavailable")
)

// Definition is what a user registers (POST/PUT /v1/templates).
type Definition struct {
	// Name matches ^[a-z0-9][a-z0-9_-]{0,63}$.
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Workflow is an API-format or a UI-format workflow; a UI-format one is converted
	// with object_info on registration.
	Workflow json.RawMessage `json:"workflow"`
	// Params declares the parameters explicitly; when empty they are discovered by
	// convention (see Discover).
	Params []ParamSpec `json:"params,omitempty"`
	// TitlePrefix marks the input nodes for discovery (default "Input: ").
	TitlePrefix string `json:"title_prefix,omitempty"`
}

// Template is a registered workflow and its parameters.
type Template struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Version starts at 1 and grows by one with every registration under the name.
	Version   int            `json:"version"`
	Workflow  comfy.Workflow `json:"workflow"`
	Params    []Param        `json:"params"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`

	// ParamsMade lists the discovered parameters whose names no title gives by itself
	// (see MadeName); it is empty when the parameters were declared or every titled
	// node named its parameter.
	ParamsMade []MadeName `json:"params_made,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ValidName reports whether name is a valid template name.
func ValidName(name string) bool { return nameRE.MatchString(name) }

var paramNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$`)

// MaxParams bounds the parameters of one template.
const MaxParams = 256

// Param returns the parameter called name.
func (t *Template) Param(name string) (*Param, bool) {
	for i := range t.Params {
		if t.Params[i].Name == name {
			return &t.Params[i], true
		}
	}
	return nil, false
}

// ImageTargets maps each image parameter's name to its input paths.
func (t *Template) ImageTargets() map[string][]string {
	out := map[string][]string{}
	for _, p := range t.Params {
		if p.Type == TypeImage {
			out[p.Name] = append([]string(nil), p.Targets...)
		}
	}
	return out
}

// Apply returns a copy of the template's workflow with params set on their targets and
// the defaults of the missing optional parameters. The template is never changed.
//
// All parameters are checked at once: unknown names, wrong types, values out of range or
// not among the choices, missing required parameters and image parameters given in
// params are all reported in one *job.SpecError with code invalid_params, field "params"
// and Details a []Violation sorted by parameter name. Integers are written exactly as
// json.Number (seeds up to 2^64-1 survive).
func (t *Template) Apply(params map[string]any) (comfy.Workflow, error) {
	byName := make(map[string]*Param, len(t.Params))
	for i := range t.Params {
		byName[t.Params[i].Name] = &t.Params[i]
	}
	var violations []Violation
	values := map[string]any{}
	for name, v := range params {
		p, ok := byName[name]
		if !ok {
			violations = append(violations, Violation{Param: name, Message: "unknown parameter" + t.known()})
			continue
		}
		out, msg := p.check(v)
		if msg != "" {
			violations = append(violations, Violation{Param: name, Message: msg})
			continue
		}
		values[name] = out
	}
	for i := range t.Params {
		p := &t.Params[i]
		if _, given := params[p.Name]; given || p.Type == TypeImage {
			continue
		}
		switch {
		case p.Required:
			violations = append(violations, Violation{Param: p.Name, Message: "is required"})
		case p.Default != nil:
			values[p.Name] = normalizeValue(p.Default)
		}
	}
	if len(violations) > 0 {
		return nil, paramsError(violations)
	}
	wf := t.Workflow.Clone()
	for i := range t.Params {
		p := &t.Params[i]
		v, ok := values[p.Name]
		if !ok {
			continue
		}
		for _, target := range p.Targets {
			if err := wf.Set(target, v); err != nil {
				// Targets were resolved at registration; a stored template edited by
				// hand could still point nowhere.
				violations = append(violations, Violation{Param: p.Name, Message: fmt.Sprintf("target %s: %v", target, err)})
			}
		}
	}
	if len(violations) > 0 {
		return nil, paramsError(violations)
	}
	return wf, nil
}

func (t *Template) known() string {
	var names []string
	for _, p := range t.Params {
		if p.Type != TypeImage {
			names = append(names, p.Name)
		}
	}
	if len(names) == 0 {
		return fmt.Sprintf(": template %q has no parameters", t.Name)
	}
	sort.Strings(names)
	if len(names) > 20 {
		names = append(names[:20], "…")
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}

func paramsError(v []Violation) error {
	sort.SliceStable(v, func(i, j int) bool { return v[i].Param < v[j].Param })
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = x.Param + ": " + x.Message
	}
	msg := strings.Join(parts, "; ")
	if len(v) > 1 {
		msg = fmt.Sprintf("%d problems: %s", len(v), msg)
	}
	return &job.SpecError{Code: CodeInvalidParams, Field: "params", Message: msg, Details: v}
}

// JSONSchema returns the JSON Schema (draft 2020-12, usable as an OpenAPI 3.1 schema
// object) of the template's params object: one property per non-image parameter with
// its type, default, bounds, choices and description, the required ones listed, and no
// other properties allowed. Image parameters are in ImagesSchema. There is no "$schema"
// keyword, so the schema can be embedded in a larger document as is.
func (t *Template) JSONSchema() map[string]any {
	props := map[string]any{}
	required := []string{}
	for _, p := range t.Params {
		if p.Type == TypeImage {
			continue
		}
		s := map[string]any{"type": p.Type}
		if p.Description != "" {
			s["description"] = p.Description
		}
		if p.Default != nil {
			s["default"] = normalizeValue(p.Default)
		}
		if b := p.ExactMinimum(); b != "" {
			s["minimum"] = b
		}
		if b := p.ExactMaximum(); b != "" {
			s["maximum"] = b
		}
		if len(p.Enum) > 0 {
			enum := make([]any, len(p.Enum))
			for i, e := range p.Enum {
				enum[i] = normalizeValue(e)
			}
			s["enum"] = enum
		}
		if p.Multiline {
			s["x-multiline"] = true
		}
		props[p.Name] = s
		if p.Required {
			required = append(required, p.Name)
		}
	}
	schema := map[string]any{
		"type":                 "object",
		"title":                t.Name + " parameters",
		"properties":           props,
		"additionalProperties": false,
	}
	if t.Description != "" {
		schema["description"] = t.Description
	}
	if len(required) > 0 {
		sort.Strings(required)
		schema["required"] = required
	}
	return schema
}

// ImagesSchema returns the JSON Schema of the template's images object: one property per
// image parameter, each a file given as exactly one of url, base64 or key (with an
// optional filename), as in job.ImageSource.
func (t *Template) ImagesSchema() map[string]any {
	props := map[string]any{}
	required := []string{}
	for _, p := range t.Params {
		if p.Type != TypeImage {
			continue
		}
		s := ImageSourceSchema()
		desc := p.Description
		if p.Default != nil {
			desc = strings.TrimSpace(fmt.Sprintf("%s (default: the node's file %v)", desc, p.Default))
		}
		if desc != "" {
			s["description"] = desc
		}
		props[p.Name] = s
		if p.Required {
			required = append(required, p.Name)
		}
	}
	schema := map[string]any{
		"type":                 "object",
		"title":                t.Name + " images",
		"properties":           props,
		"additionalProperties": false,
	}
	if len(required) > 0 {
		sort.Strings(required)
		schema["required"] = required
	}
	return schema
}

// ImageSourceSchema returns the JSON Schema of one file in a submission's images
// (job.ImageSource): exactly one of url, base64 or key, and an optional filename.
func ImageSourceSchema() map[string]any {
	return map[string]any{
		"type": "object",
		"properties": map[string]any{
			"url":      map[string]any{"type": "string", "format": "uri", "description": "an http(s) URL the worker downloads"},
			"base64":   map[string]any{"type": "string", "contentEncoding": "base64", "description": "the file's bytes, base64-encoded"},
			"key":      map[string]any{"type": "string", "description": "the key of an object already in storage"},
			"filename": map[string]any{"type": "string", "description": "the name to upload the file under"},
		},
		"oneOf": []any{
			map[string]any{"required": []any{"url"}},
			map[string]any{"required": []any{"base64"}},
			map[string]any{"required": []any{"key"}},
		},
		"additionalProperties": false,
	}
}

// UnmarshalJSON reads a template keeping every number exact.
func (t *Template) UnmarshalJSON(data []byte) error {
	type plain Template
	var p plain
	if err := decodeNumbers(data, &p); err != nil {
		return err
	}
	*t = Template(p)
	return nil
}

// compile builds a template (without version or times) from a definition.
func compile(def Definition, wf comfy.Workflow, info comfy.ObjectInfo) (*Template, error) {
	t := &Template{Name: def.Name, Description: def.Description, Workflow: wf}
	if len(def.Params) == 0 {
		t.Params, t.ParamsMade = discover(wf, info, def.TitlePrefix)
	} else {
		if len(def.Params) > MaxParams {
			return nil, &job.SpecError{Code: CodeInvalidTemplate, Field: "params", Message: fmt.Sprintf("at most %d parameters", MaxParams)}
		}
		d := &discoverer{wf: wf, info: info}
		for i, spec := range def.Params {
			p, err := d.fromParamSpec(spec)
			if err != nil {
				field := fmt.Sprintf("params[%d]", i)
				if paramNameRE.MatchString(spec.Name) {
					field = "params." + spec.Name
				}
				return nil, &job.SpecError{Code: CodeInvalidTemplate, Field: field, Message: err.Error()}
			}
			t.Params = append(t.Params, p)
		}
	}
	if t.Params == nil {
		t.Params = []Param{}
	}
	seen := map[string]bool{}
	for _, p := range t.Params {
		if seen[p.Name] {
			return nil, &job.SpecError{Code: CodeInvalidTemplate, Field: "params." + p.Name, Message: fmt.Sprintf("parameter %q is declared twice", p.Name)}
		}
		seen[p.Name] = true
	}
	return t, nil
}

// fromParamSpec resolves an explicit parameter: node selectors to ids, and type,
// bounds, choices, default and description from object_info and the workflow where the
// spec leaves them out.
func (d *discoverer) fromParamSpec(s ParamSpec) (Param, error) {
	if !paramNameRE.MatchString(s.Name) {
		return Param{}, fmt.Errorf("parameter name %q must be 1-64 letters, digits, '_' or '-'", s.Name)
	}
	if len(s.Targets) == 0 {
		return Param{}, errors.New("targets: at least one input path is required (e.g. \"KSampler.inputs.seed\")")
	}
	if s.Type != "" && !validType(s.Type) {
		return Param{}, fmt.Errorf("type %q is not one of string, integer, number, boolean, image", s.Type)
	}
	var p Param
	seen := map[string]bool{}
	for i, target := range s.Targets {
		sel, input, err := comfy.SplitPath(target)
		if err != nil {
			return Param{}, fmt.Errorf("targets: %v", err)
		}
		id, err := d.wf.ResolveNode(sel)
		if err != nil {
			return Param{}, fmt.Errorf("targets: %v", err)
		}
		path := targetPath(id, input)
		if path == "" {
			return Param{}, fmt.Errorf("targets: %s resolves to node %q, whose id cannot be written in an input path", target, id)
		}
		if seen[path] {
			return Param{}, fmt.Errorf("targets: %s is listed twice", path)
		}
		seen[path] = true
		n := d.wf[id]
		if l, isLink := comfy.AsLink(n.Inputs[input]); isLink {
			return Param{}, fmt.Errorf("targets: %s is connected to node %s; a parameter sets a value, not a link", target, l.NodeID)
		}
		got, ok := d.param(id, input)
		if !ok {
			if v, has := n.Inputs[input]; has && !isScalar(v) {
				return Param{}, fmt.Errorf("targets: %s holds a list or object, which a parameter cannot set", target)
			}
			if ni := d.info[n.ClassType]; ni != nil {
				if _, known := ni.Spec(input); !known {
					return Param{}, fmt.Errorf("targets: %s has no input %q", n.ClassType, input)
				}
			}
			if s.Type == "" {
				return Param{}, fmt.Errorf("targets: %s is not set in the workflow and its type is unknown; give the parameter a type", target)
			}
			got = Param{Targets: []string{path}, Type: s.Type, Description: inputDescription(n, id, input), Required: true}
		}
		if i == 0 {
			p = got
			continue
		}
		p.Targets = append(p.Targets, path)
	}
	p.Name = s.Name
	if s.Type != "" && s.Type != p.Type {
		p.Type = s.Type
		if s.Type == TypeImage || s.Type == TypeString || s.Type == TypeBoolean {
			p.Minimum, p.Maximum, p.minExact, p.maxExact = nil, nil, "", ""
		}
		if s.Enum == nil && p.Enum != nil {
			p.Enum = nil
		}
		p.Multiline = p.Multiline && s.Type == TypeString
	}
	if s.Description != "" {
		p.Description = s.Description
	}
	if s.Minimum != nil {
		p.Minimum, p.minExact = s.Minimum, s.minExact
	}
	if s.Maximum != nil {
		p.Maximum, p.maxExact = s.Maximum, s.maxExact
	}
	if p.Minimum != nil && p.Maximum != nil && *p.Minimum > *p.Maximum {
		return Param{}, fmt.Errorf("minimum %s is above maximum %s", p.ExactMinimum(), p.ExactMaximum())
	}
	if s.Enum != nil {
		if p.Type == TypeImage {
			return Param{}, errors.New("enum: an image parameter has no choices")
		}
		p.Enum = nil
		for _, e := range s.Enum {
			probe := p
			probe.Enum = nil
			v, msg := probe.check(e)
			if msg != "" {
				return Param{}, fmt.Errorf("enum: %s", msg)
			}
			p.Enum = append(p.Enum, v)
		}
	}
	if s.Default != nil {
		if p.Type == TypeImage {
			str, ok := s.Default.(string)
			if !ok {
				return Param{}, errors.New("default: an image parameter's default is a file name on the node")
			}
			p.Default = str
		} else {
			v, msg := p.check(s.Default)
			if msg != "" {
				return Param{}, fmt.Errorf("default: %s", msg)
			}
			p.Default = v
		}
	} else if p.Default != nil && p.Type != TypeImage {
		// The workflow's value must fit the declared type, or Apply would write a value
		// the submission itself could not have given.
		if _, msg := p.check(p.Default); msg != "" {
			if s.Required == nil || !*s.Required {
				return Param{}, fmt.Errorf("the workflow's value %s does not fit: %s; give a default", describe(p.Default), msg)
			}
			p.Default = nil
		}
	}
	p.Required = p.Default == nil
	if s.Required != nil {
		p.Required = *s.Required
		if p.Required {
			p.Default = nil
		}
	}
	return p, nil
}
