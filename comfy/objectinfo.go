package comfy

import (
	"encoding/json"
	"fmt"
	"sort"
)

// ObjectInfo is GET /object_info: node class name → its definition (comfyui-protocol.md §5).
type ObjectInfo map[string]*NodeInfo

// NodeInfo is one node class's definition from /object_info.
type NodeInfo struct {
	Input        NodeInputs     `json:"input"`
	InputOrder   InputOrder     `json:"input_order"`
	Output       []any          `json:"output"`
	OutputIsList []bool         `json:"output_is_list"`
	OutputName   []string       `json:"output_name"`
	Name         string         `json:"name"`
	DisplayName  string         `json:"display_name"`
	Description  string         `json:"description"`
	PythonModule string         `json:"python_module"`
	Category     string         `json:"category"`
	OutputNode   bool           `json:"output_node"`
	Deprecated   bool           `json:"deprecated,omitempty"`
	Experimental bool           `json:"experimental,omitempty"`
	APINode      bool           `json:"api_node,omitempty"`
	Extra        map[string]any `json:"-"`
}

// NodeInputs holds the raw [type, options] specs of a class's inputs by section.
type NodeInputs struct {
	Required map[string]json.RawMessage `json:"required,omitempty"`
	Optional map[string]json.RawMessage `json:"optional,omitempty"`
	Hidden   map[string]json.RawMessage `json:"hidden,omitempty"`
}

// InputOrder is the declared order of a class's inputs; widget values follow it.
type InputOrder struct {
	Required []string `json:"required,omitempty"`
	Optional []string `json:"optional,omitempty"`
	Hidden   []string `json:"hidden,omitempty"`
}

// InputSpec is one parsed input definition.
type InputSpec struct {
	Name string
	// Section is "required", "optional" or "hidden".
	Section string
	// Type is "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO" (for both the V1 list form and
	// the V3 "COMBO" form) or a connection type such as "MODEL", "IMAGE" or "*".
	Type string
	// Choices are the allowed values of a combo.
	Choices []any
	// Options is the options object (default, min, max, step, tooltip, …).
	Options map[string]any
}

// IsWidget reports whether the input is a widget in the UI (a value stored in
// widgets_values) rather than a connection only.
func (s InputSpec) IsWidget() bool {
	if b, _ := s.Options["forceInput"].(bool); b {
		return false
	}
	switch s.Type {
	case "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO":
		return true
	}
	return false
}

// Default returns the options' default value, if any.
func (s InputSpec) Default() (any, bool) {
	v, ok := s.Options["default"]
	return v, ok
}

// Number returns a numeric option (min, max, step) as float64.
func (s InputSpec) Number(name string) (float64, bool) {
	switch x := s.Options[name].(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	}
	return 0, false
}

// ParseObjectInfo decodes a /object_info document, keeping numbers exact.
func ParseObjectInfo(data []byte) (ObjectInfo, error) {
	var info ObjectInfo
	if err := decodeNumbers(data, &info); err != nil {
		return nil, fmt.Errorf("comfy: parse object_info: %w", err)
	}
	for name, n := range info {
		if n == nil {
			delete(info, name)
		}
	}
	return info, nil
}

// Spec returns the parsed definition of input name of the class, searching the
// required, optional and hidden sections in that order.
func (n *NodeInfo) Spec(name string) (InputSpec, bool) {
	for _, sec := range []struct {
		name string
		m    map[string]json.RawMessage
	}{{"required", n.Input.Required}, {"optional", n.Input.Optional}, {"hidden", n.Input.Hidden}} {
		raw, ok := sec.m[name]
		if !ok {
			continue
		}
		spec, err := parseInputSpec(name, sec.name, raw)
		if err != nil {
			return InputSpec{}, false
		}
		return spec, true
	}
	return InputSpec{}, false
}

// OrderedSpecs returns the class's inputs in input_order (required, then optional),
// including inputs missing from input_order at the end of their section in name order.
func (n *NodeInfo) OrderedSpecs() []InputSpec {
	var out []InputSpec
	add := func(order []string, m map[string]json.RawMessage, section string) {
		seen := map[string]bool{}
		for _, name := range order {
			if raw, ok := m[name]; ok && !seen[name] {
				seen[name] = true
				if s, err := parseInputSpec(name, section, raw); err == nil {
					out = append(out, s)
				}
			}
		}
		var rest []string
		for name := range m {
			if !seen[name] {
				rest = append(rest, name)
			}
		}
		sort.Strings(rest)
		if len(order) > 0 {
			return // input_order is authoritative when present
		}
		for _, name := range rest {
			if s, err := parseInputSpec(name, section, m[name]); err == nil {
				out = append(out, s)
			}
		}
	}
	add(n.InputOrder.Required, n.Input.Required, "required")
	add(n.InputOrder.Optional, n.Input.Optional, "optional")
	return out
}

func parseInputSpec(name, section string, raw json.RawMessage) (InputSpec, error) {
	spec := InputSpec{Name: name, Section: section}
	var parts []json.RawMessage
	if err := decodeNumbers(raw, &parts); err != nil {
		// Hidden inputs are plain strings such as "PROMPT".
		var s string
		if err2 := json.Unmarshal(raw, &s); err2 == nil {
			spec.Type = s
			return spec, nil
		}
		return spec, err
	}
	if len(parts) == 0 {
		return spec, fmt.Errorf("comfy: input %s: empty spec", name)
	}
	var typ string
	if err := json.Unmarshal(parts[0], &typ); err != nil {
		var choices []any
		if err := decodeNumbers(parts[0], &choices); err != nil {
			return spec, fmt.Errorf("comfy: input %s: type is neither a name nor a list", name)
		}
		spec.Type = "COMBO"
		spec.Choices = choices
	} else {
		spec.Type = typ
	}
	if len(parts) > 1 {
		_ = decodeNumbers(parts[1], &spec.Options)
	}
	if spec.Type == "COMBO" && spec.Choices == nil {
		if opts, ok := spec.Options["options"].([]any); ok {
			spec.Choices = opts
		}
	}
	return spec, nil
}
