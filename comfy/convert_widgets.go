package comfy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// uiWidgetTypes are input types that the frontend shows as widgets and that therefore
// take a place in widgets_values: the core ones plus the custom widgets of the
// frontend's own extensions (webcam, audio recording, 3D loaders).
var uiWidgetTypes = map[string]bool{
	"INT": true, "FLOAT": true, "STRING": true, "BOOLEAN": true, "COMBO": true,
	"MARKDOWN": true, "IMAGEUPLOAD": true, "WEBCAM": true, "AUDIO_RECORD": true,
	"LOAD_3D": true, "LOAD_3D_ANIMATION": true, "PREVIEW_3D": true, "PREVIEW_3D_ANIMATION": true,
}

func uiIsWidget(s InputSpec) bool {
	if b, _ := s.Options["forceInput"].(bool); b {
		return false
	}
	return uiWidgetTypes[s.Type]
}

// uiTruthy reads an option as JavaScript would: present reports whether it was set at
// all (null counts as unset, like the frontend's ?? operator).
func uiTruthy(v any) (truthy, present bool) {
	switch x := v.(type) {
	case nil:
		return false, false
	case bool:
		return x, true
	case string:
		return x != "", true
	case json.Number:
		f, err := x.Float64()
		return err == nil && f != 0, true
	}
	return true, true
}

// uiWidgetExtras is how many widgets_values entries after a widget's own value belong
// to helper widgets the frontend adds: the control_after_generate combo
// (useIntWidget.ts, widgets.ts addValueControlWidgets) and the upload button
// (useImageUploadWidget.ts and friends).
func uiWidgetExtras(s InputSpec) int {
	extra := 0
	control, set := uiTruthy(s.Options["control_after_generate"])
	switch s.Type {
	case "INT":
		if !set {
			control = s.Name == "seed" || s.Name == "noise_seed"
		}
		if control {
			extra++
		}
	case "COMBO":
		if control {
			extra++
		}
		for _, up := range []string{"image_upload", "video_upload", "audio_upload", "animated_image_upload"} {
			if t, _ := uiTruthy(s.Options[up]); t {
				extra++
				break
			}
		}
	}
	return extra
}

// uiWidgetDefault is the value a widget has when widgets_values does not cover it.
func uiWidgetDefault(s InputSpec) (any, bool) {
	if d, ok := s.Options["default"]; ok {
		return d, true
	}
	switch s.Type {
	case "COMBO":
		if len(s.Choices) > 0 {
			return s.Choices[0], true
		}
	case "INT", "FLOAT":
		if m, ok := s.Options["min"].(json.Number); ok {
			if f, err := m.Float64(); err == nil && f > 0 {
				return m, true
			}
		}
		return json.Number("0"), true
	case "STRING":
		return "", true
	case "BOOLEAN":
		return false, true
	}
	return nil, false
}

// widgetValues maps a node's widgets_values onto its widget inputs.
func (c *uiConverter) widgetValues(id string, n *uiNode, ni *NodeInfo, overrides map[string]any) (map[string]any, error) {
	specs := c.classSpecs(ni).ordered
	vals := map[string]any{}
	nWidgets := 0
	if n.wvObj != nil {
		matched := 0
		for _, s := range specs {
			if !uiIsWidget(s) {
				continue
			}
			nWidgets++
			if v, ok := n.wvObj[s.Name]; ok {
				vals[s.Name] = v
				matched++
			} else if d, ok := uiWidgetDefault(s); ok {
				vals[s.Name] = d
			}
		}
		if matched == 0 && nWidgets > 0 && len(n.wvObj) > 0 {
			keys := make([]string, 0, len(n.wvObj))
			for k := range n.wvObj {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			return nil, &ConvertError{NodeID: id, NodeType: n.typ, Err: ErrUnsupportedNode,
				Reason: fmt.Sprintf("widgets_values is an object whose keys (%s) match none of the widget inputs; it was written by a frontend extension this converter does not know", strings.Join(keys, ", "))}
		}
	} else {
		pos := 0
		for _, s := range specs {
			if !uiIsWidget(s) {
				continue
			}
			if pos < len(n.wv) {
				vals[s.Name] = n.wv[pos]
				pos += 1 + uiWidgetExtras(s)
			} else if d, ok := uiWidgetDefault(s); ok {
				vals[s.Name] = d
			}
		}
	}
	for name, v := range overrides {
		vals[name] = v
	}
	for name, v := range vals {
		vals[name] = c.finishValue(ni, name, v)
	}
	return vals, nil
}

// finishValue applies dynamic prompts (when asked) and wraps list values as
// {"__value__": [...]} so the server does not take them for links.
func (c *uiConverter) finishValue(ni *NodeInfo, name string, v any) any {
	if c.opts.DynamicPrompts {
		if s, ok := v.(string); ok {
			if spec, found := c.classSpecs(ni).byName[name]; found && spec.Type == "STRING" {
				if dp, _ := spec.Options["dynamicPrompts"].(bool); dp {
					v = uiDynamicPrompt(s, c.opts.Rand)
				}
			}
		}
	}
	if arr, ok := v.([]any); ok {
		return map[string]any{"__value__": arr}
	}
	return v
}
