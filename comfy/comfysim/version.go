package comfysim

import (
	"regexp"
	"slices"
)

// The ComfyUI releases the simulator can speak. Options.ComfyUIVersion picks
// one; docs/comfyui-protocol-versions.md lists what differs, with sources.
const (
	// Version0364 is ComfyUI 0.3.64 (October 2025), the release the
	// simulator was first built against and the zero value's choice.
	Version0364 = "0.3.64"
	// Version0381 is ComfyUI 0.38.1: the jobs API, canonical-UUID prompt
	// ids, the sensitive sixth queue element, RAM-pressure caching.
	Version0381 = "0.38.1"
	// NewestVersion is the newest release the simulator knows.
	NewestVersion = Version0381
)

// Versions are the ComfyUI releases the simulator knows, oldest first.
func Versions() []string { return []string{Version0364, Version0381} }

// Version reports the ComfyUI release this server speaks.
func (s *Server) Version() string { return s.opts.ComfyUIVersion }

// jobsAPI reports whether the simulated release has /api/jobs and the
// behaviour that came with it (server.py@0.38 imports comfy_execution.jobs).
func (s *Server) jobsAPI() bool { return s.opts.ComfyUIVersion != Version0364 }

func validVersion(v string) bool { return slices.Contains(Versions(), v) }

// canonicalUUID is what comfy_execution/jobs.py validate_job_id accepts:
// str(uuid.UUID(value)) == value holds exactly for lowercase hyphenated hex.
var canonicalUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// validJobID is jobs.validate_job_id.
func validJobID(v any) bool {
	s, ok := v.(string)
	return ok && canonicalUUID.MatchString(s)
}

// invalidPromptIDError is server.py@0.38 post_prompt's answer to a client
// prompt_id that validate_job_id refuses.
func invalidPromptIDError() *object {
	return obj("error", obj(
		"type", "invalid_prompt_id",
		"message", "prompt_id must be a valid UUID",
		"details", "prompt_id must be a UUID string in canonical lowercase hyphenated form; omit it to let the server generate one",
		"extra_info", newObject()),
		"node_errors", newObject())
}

// objectInfo038 turns a 0.3.64 object_info entry into the shape 0.38's
// node_info (server.py) or NodeInfoV1 (comfy_api/latest/_io.py, V3 nodes)
// serves: the same values with the keys 0.38 added, in its key order.
func objectInfo038(info *object, v3 bool) *object {
	get := func(k string) any { v, _ := info.Get(k); return v }
	out := newObject()
	if v3 {
		// NodeInfoV1 is a dataclass: every field, in declaration order.
		for _, k := range []string{"input", "input_order", "is_input_list", "output", "output_is_list",
			"output_name", "output_tooltips", "output_matchtypes", "name", "display_name", "description",
			"python_module", "category", "output_node", "deprecated", "experimental", "dev_only", "api_node",
			"price_badge", "search_aliases", "essentials_category", "has_intermediate_output"} {
			switch {
			case info.Has(k):
				out.Set(k, get(k))
			case k == "is_input_list" || k == "dev_only" || k == "has_intermediate_output":
				out.Set(k, false)
			case k == "search_aliases":
				out.Set(k, []any{})
			default:
				out.Set(k, nil)
			}
		}
		return out
	}
	for _, k := range info.Keys() {
		out.Set(k, get(k))
		switch k {
		case "input_order":
			out.Set("is_input_list", false)
		case "output_node":
			out.Set("has_intermediate_output", false)
		}
	}
	// search_aliases follows the optional output_tooltips/deprecated/
	// experimental/api_node keys, which 0.3.64 already placed last.
	out.Set("search_aliases", []any{})
	return out
}
