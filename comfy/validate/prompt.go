package validate

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/comfyq/comfyq/comfy"
)

// Options adjust Prompt.
type Options struct {
	// Limits bound the prompt's size (defaults: see Limits).
	Limits Limits
	// Provided are inputs ("ID.inputs.NAME", ID a node id) whose value is set after
	// validation: an image the worker uploads to the node and wires in. They count as
	// present; their values are not checked.
	Provided []string
	// Models checks the choices that list model files (checkpoints, LoRAs, VAEs:
	// empty lists, file names, name inputs of loaders) too. Set it only when info
	// holds the models of every node that may run the prompt; by default they are not
	// checked, as a saved object_info or one node's does not know the others' models.
	Models bool
}

// Error types of the problems Prompt reports, beside ComfyUI's own
// (required_input_missing, return_type_mismatch, invalid_input_type,
// value_smaller_than_min, value_bigger_than_max, value_not_in_list, bad_linked_input,
// dependency_cycle, missing_node_type, prompt_no_outputs,
// prompt_outputs_failed_validation).
const (
	// TypeLinkToMissingNode: a link names a node the prompt does not have (ComfyUI
	// raises a KeyError, reported as exception_during_validation).
	TypeLinkToMissingNode = "link_to_missing_node"
	// TypeBadOutputSlot: a link names an output slot its source class does not have
	// (ComfyUI raises an IndexError).
	TypeBadOutputSlot = "bad_output_slot"
	// TypeEmptyPrompt: the prompt has no nodes.
	TypeEmptyPrompt = "empty_prompt"
)

// Prompt validates wf, a prompt as it is about to be queued (template parameters, set
// overrides and seeds applied). info is the object_info of the nodes that will run it;
// nil checks the prompt's structure only. It returns nil, a *LimitError, or a
// *comfy.ValidationError holding every problem in ComfyUI's node_errors shape.
func Prompt(wf comfy.Workflow, info comfy.ObjectInfo, opts Options) error {
	if err := CheckLimits(wf, opts.Limits); err != nil {
		return err
	}
	v := &validator{wf: wf, info: info, models: opts.Models, provided: map[string]bool{}, errs: map[string][]comfy.APIError{}, specs: map[string][]inputSpec{}}
	for _, p := range opts.Provided {
		v.provided[p] = true
	}
	if len(wf) == 0 {
		return &comfy.ValidationError{Err: comfy.APIError{Type: TypeEmptyPrompt, Message: "Prompt has no nodes", ExtraInfo: map[string]any{}}, NodeErrors: map[string]comfy.NodeError{}}
	}
	v.structure()
	if info != nil {
		v.outputs = v.outputNodes()
		for _, o := range v.outputs {
			v.node(o)
		}
	}
	return v.result()
}

type validator struct {
	wf       comfy.Workflow
	info     comfy.ObjectInfo
	provided map[string]bool
	models   bool
	errs     map[string][]comfy.APIError
	// top is the first prompt-level error (missing_node_type, prompt_no_outputs).
	top     *comfy.APIError
	outputs []string
	done    map[string]bool
	// cyclic are the nodes on a dependency cycle: their links are not followed.
	cyclic map[string]bool
	// specs are the parsed inputs of the classes seen, by class.
	specs map[string][]inputSpec
}

func (v *validator) add(id string, e comfy.APIError) {
	if e.ExtraInfo == nil {
		e.ExtraInfo = map[string]any{}
	}
	v.errs[id] = append(v.errs[id], e)
}

// structure checks what needs no node classes: class_type present (and known, with
// info), links to existing nodes with sane slots, no cycles.
func (v *validator) structure() {
	for _, id := range v.wf.NodeIDs() {
		n := v.wf[id]
		if n == nil || strings.TrimSpace(n.ClassType) == "" {
			title := ""
			if n != nil {
				title = n.Title()
			}
			name := title
			if name == "" {
				name = "ID #" + id
			}
			e := comfy.APIError{Type: "missing_node_type",
				Message:   fmt.Sprintf("Node '%s' has no class_type. The workflow may be corrupted or a custom node is missing.", name),
				Details:   fmt.Sprintf("Node ID '#%s'", id),
				ExtraInfo: map[string]any{"node_id": id, "class_type": nil, "node_title": nilIfEmpty(title)}}
			v.prompt(e)
			v.add(id, e)
			continue
		}
		if v.info != nil && v.info[n.ClassType] == nil {
			title := n.Title()
			if title == "" {
				title = n.ClassType
			}
			extra := map[string]any{"node_id": id, "class_type": n.ClassType, "node_title": title}
			details := fmt.Sprintf("Node ID '#%s'", id)
			if hint := v.lookAlike(n.ClassType); hint != "" {
				details += "; " + hint
				extra["hint"] = hint
			}
			e := comfy.APIError{Type: "missing_node_type",
				Message: fmt.Sprintf("Node '%s' not found. The custom node may not be installed.", title),
				Details: details, ExtraInfo: extra}
			v.prompt(e)
			v.add(id, e)
		}
		for _, name := range sortedKeys(n.Inputs) {
			v.link(id, name, n.Inputs[name])
		}
	}
	v.cycles()
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (v *validator) prompt(e comfy.APIError) {
	if v.top == nil {
		v.top = &e
	}
}

// link checks one input value that looks like a link.
func (v *validator) link(id, name string, val any) {
	arr, ok := val.([]any)
	if !ok || len(arr) != 2 {
		return
	}
	if _, numID := asInt(arr[0]); numID {
		if _, idx := asInt(arr[1]); idx {
			v.add(id, comfy.APIError{Type: "bad_linked_input",
				Message:   "Bad linked input, must be a length-2 list of [node_id, slot_index]",
				Details:   fmt.Sprintf("%s: the node id is a number; write [\"%v\", %v]", name, arr[0], arr[1]),
				ExtraInfo: map[string]any{"input_name": name, "received_value": val}})
		}
		return
	}
	l, ok := comfy.AsLink(val)
	if !ok {
		return
	}
	src, exists := v.wf[l.NodeID]
	switch {
	case !exists || src == nil:
		v.add(id, comfy.APIError{Type: TypeLinkToMissingNode,
			Message:   "Linked node does not exist",
			Details:   fmt.Sprintf("%s: node %q is not in the prompt", name, l.NodeID),
			ExtraInfo: map[string]any{"input_name": name, "linked_node": val}})
	case l.Output < 0:
		v.add(id, comfy.APIError{Type: TypeBadOutputSlot,
			Message:   "Linked output slot does not exist",
			Details:   fmt.Sprintf("%s: output slot %d is negative", name, l.Output),
			ExtraInfo: map[string]any{"input_name": name, "linked_node": val}})
	case v.info != nil && v.info[src.ClassType] != nil && l.Output >= len(v.info[src.ClassType].Output):
		outs := len(v.info[src.ClassType].Output)
		has := "no outputs"
		if outs > 0 {
			has = fmt.Sprintf("%d output%s, slots 0 to %d", outs, plural(outs), outs-1)
		}
		v.add(id, comfy.APIError{Type: TypeBadOutputSlot,
			Message:   "Linked output slot does not exist",
			Details:   fmt.Sprintf("%s: node %s (%s) has %s; the link names slot %d", name, l.NodeID, src.ClassType, has, l.Output),
			ExtraInfo: map[string]any{"input_name": name, "linked_node": val}})
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// cycles reports every dependency cycle (a self-loop is one of one node) as
// ComfyUI does: dependency_cycle on each node of it.
func (v *validator) cycles() {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	v.cyclic = map[string]bool{}
	var stack []string
	var visit func(id string)
	visit = func(id string) {
		color[id] = grey
		stack = append(stack, id)
		n := v.wf[id]
		if n != nil {
			for _, name := range sortedKeys(n.Inputs) {
				l, ok := comfy.AsLink(n.Inputs[name])
				if !ok || v.wf[l.NodeID] == nil {
					continue
				}
				switch color[l.NodeID] {
				case grey:
					i := len(stack) - 1
					for stack[i] != l.NodeID {
						i--
					}
					v.cycle(append(append([]string{}, stack[i:]...), l.NodeID))
				case white:
					visit(l.NodeID)
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[id] = black
	}
	for _, id := range v.wf.NodeIDs() {
		if color[id] == white {
			visit(id)
		}
	}
}

// maxCycleShown bounds the nodes a cycle's error names: every node of a cycle gets an
// error, and a cycle through thousands of nodes must not make each one megabytes.
const maxCycleShown = 20

func (v *validator) cycle(path []string) {
	// The path runs from a node to what it depends on; ComfyUI prints it the same way.
	nodes := path[:len(path)-1]
	shown := path
	if len(path) > maxCycleShown {
		shown = append(append([]string{}, path[:maxCycleShown-1]...), path[len(path)-1])
	}
	parts := make([]string, len(shown))
	for i, id := range shown {
		parts[i] = fmt.Sprintf("%s (%s)", id, truncate(v.class(id), 80))
	}
	details := strings.Join(parts, " -> ")
	cycleNodes := nodes
	if len(path) > maxCycleShown {
		details = strings.Join(parts[:len(parts)-1], " -> ") + fmt.Sprintf(" -> … (%d nodes in all) -> ", len(nodes)) + parts[len(parts)-1]
		cycleNodes = nodes[:maxCycleShown-1]
	}
	for _, id := range nodes {
		if v.cyclic[id] {
			continue
		}
		v.cyclic[id] = true
		v.add(id, comfy.APIError{Type: "dependency_cycle", Message: "Dependency cycle detected",
			Details:   details,
			ExtraInfo: map[string]any{"node_id": id, "cycle_nodes": append([]string{}, cycleNodes...)}})
	}
}

func (v *validator) class(id string) string {
	if n := v.wf[id]; n != nil {
		return n.ClassType
	}
	return ""
}

// outputNodes returns the output nodes of known classes, or records
// prompt_no_outputs.
func (v *validator) outputNodes() []string {
	var outs []string
	for _, id := range v.wf.NodeIDs() {
		if ni := v.info[v.class(id)]; ni != nil && ni.OutputNode {
			outs = append(outs, id)
		}
	}
	if len(outs) == 0 && v.top == nil {
		v.prompt(comfy.APIError{Type: "prompt_no_outputs", Message: "Prompt has no outputs", ExtraInfo: map[string]any{}})
	}
	return outs
}

// node validates the inputs of node id and, through its links, of every node it
// depends on (ComfyUI validates only what an output needs).
func (v *validator) node(id string) {
	if v.done == nil {
		v.done = map[string]bool{}
	}
	if v.done[id] {
		return
	}
	v.done[id] = true
	n := v.wf[id]
	if n == nil {
		return
	}
	ni := v.info[n.ClassType]
	if ni == nil {
		return
	}
	specs, ok := v.specs[n.ClassType]
	if !ok {
		specs = classInputs(ni)
		v.specs[n.ClassType] = specs
	}
	for _, in := range specs {
		val, present := n.Inputs[in.name]
		if v.provided[id+".inputs."+in.name] {
			continue
		}
		if !present {
			if in.section == "required" {
				v.add(id, comfy.APIError{Type: "required_input_missing", Message: "Required input is missing",
					Details: in.name, ExtraInfo: map[string]any{"input_name": in.name}})
			}
			continue
		}
		if arr, isList := val.([]any); isList {
			v.linkedInput(id, in, arr)
			continue
		}
		v.value(id, in, val)
	}
}

// linkedInput checks a list value of a declared input: a link whose type fits.
func (v *validator) linkedInput(id string, in inputSpec, arr []any) {
	l, ok := comfy.AsLink(arr)
	if !ok {
		// Integer node ids ([3, 0]) were reported by structure already.
		if len(arr) == 2 {
			_, numID := asInt(arr[0])
			_, idx := asInt(arr[1])
			if numID && idx {
				return
			}
		}
		v.add(id, comfy.APIError{Type: "bad_linked_input",
			Message:   "Bad linked input, must be a length-2 list of [node_id, slot_index]",
			Details:   in.name,
			ExtraInfo: map[string]any{"input_name": in.name, "input_config": in.config(), "received_value": shorten(arr)}})
		return
	}
	src := v.wf[l.NodeID]
	if src == nil || l.Output < 0 {
		return // reported by structure
	}
	si := v.info[src.ClassType]
	if si == nil || l.Output >= len(si.Output) {
		return // unknown class or bad slot: reported by structure
	}
	received := si.Output[l.Output]
	if !fits(received, in) {
		v.add(id, comfy.APIError{Type: "return_type_mismatch", Message: "Return type mismatch between linked nodes",
			Details: fmt.Sprintf("%s, received_type(%s) mismatch input_type(%s)", in.name, typeText(received), in.typeText()),
			ExtraInfo: map[string]any{"input_name": in.name, "input_config": in.config(), "received_type": received,
				"linked_node": []any{l.NodeID, l.Output}}})
		return
	}
	if !v.cyclic[l.NodeID] {
		v.node(l.NodeID)
	}
}

// fits is ComfyUI's validate_node_input (not strict).
func fits(received any, in inputSpec) bool {
	const anyType, matchType, comboType = "*", "COMFY_MATCHTYPE_V3", "COMBO"
	if in.choices != nil && in.listForm {
		// A V1 combo's type is its list: only the same list (or "*") fits.
		if r, ok := received.(string); ok {
			return r == anyType || r == matchType
		}
		rl, ok := received.([]any)
		return ok && sameList(rl, in.choices)
	}
	r, ok := received.(string)
	if !ok {
		// Custom nodes that output a list of options as their type feed a COMBO.
		_, isList := received.([]any)
		return isList && in.typ == comboType
	}
	if r == in.typ || r == anyType || in.typ == anyType || r == matchType || in.typ == matchType {
		return true
	}
	rs := splitTypes(r)
	is := splitTypes(in.typ)
	if rs[anyType] || is[anyType] {
		return true
	}
	for t := range rs {
		if is[t] {
			return true
		}
	}
	return false
}

func splitTypes(s string) map[string]bool {
	m := map[string]bool{}
	for _, t := range strings.Split(s, ",") {
		m[strings.TrimSpace(t)] = true
	}
	return m
}

func sameList(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func typeText(t any) string {
	if s, ok := t.(string); ok {
		return s
	}
	data, _ := json.Marshal(t)
	return truncate(string(data), 200)
}

// result builds the error, or nil.
func (v *validator) result() error {
	if len(v.errs) == 0 && v.top == nil {
		return nil
	}
	deps := v.dependents()
	ne := make(map[string]comfy.NodeError, len(v.errs))
	var lines []string
	for _, id := range v.wf.NodeIDs() {
		errs, ok := v.errs[id]
		if !ok {
			continue
		}
		d := deps[id]
		if d == nil {
			d = []string{}
		}
		ne[id] = comfy.NodeError{ClassType: v.class(id), DependentOutputs: d, Errors: errs}
		for _, e := range errs {
			lines = append(lines, e.Message+": "+e.Details)
		}
	}
	if len(lines) > maxDetailLines {
		lines = append(lines[:maxDetailLines], fmt.Sprintf("… and %d more", len(lines)-maxDetailLines))
	}
	top := comfy.APIError{Type: "prompt_outputs_failed_validation", Message: "Prompt outputs failed validation",
		Details: strings.Join(lines, "\n"), ExtraInfo: map[string]any{}}
	if v.top != nil {
		top = *v.top
	}
	return &comfy.ValidationError{Err: top, NodeErrors: ne}
}

// maxDetailLines bounds the problems the top-level error's details list (node_errors
// has them all).
const maxDetailLines = 20

// Trim returns ve with node_errors cut, in node order, to what fits in about maxBytes
// of JSON; the top-level error's extra_info counts the nodes left out
// ("node_errors_left_out"). ve itself is not changed.
func Trim(ve *comfy.ValidationError, maxBytes int) *comfy.ValidationError {
	if data, err := json.Marshal(ve); err == nil && len(data) <= maxBytes {
		return ve
	}
	out := &comfy.ValidationError{Err: ve.Err, NodeErrors: map[string]comfy.NodeError{}}
	out.Err.ExtraInfo = map[string]any{}
	for k, x := range ve.Err.ExtraInfo {
		out.Err.ExtraInfo[k] = x
	}
	ids := sortedKeys(ve.NodeErrors)
	sort.SliceStable(ids, func(i, j int) bool { return comfy.LessNodeID(ids[i], ids[j]) })
	size := 512 + len(out.Err.Details) + len(out.Err.Message)
	for _, id := range ids {
		data, err := json.Marshal(ve.NodeErrors[id])
		if err != nil || size+len(data)+len(id)+8 > maxBytes {
			break
		}
		size += len(data) + len(id) + 8
		out.NodeErrors[id] = ve.NodeErrors[id]
	}
	out.Err.ExtraInfo["node_errors_left_out"] = len(ids) - len(out.NodeErrors)
	return out
}

// maxDependents bounds the dependent_outputs of one node (a shared loader of thousands
// of outputs).
const maxDependents = 100

// dependents maps each node with errors to the output nodes that depend on it (itself
// included), at most maxDependents of them.
func (v *validator) dependents() map[string][]string {
	deps := map[string][]string{}
	for _, o := range v.outputs {
		seen := map[string]bool{}
		stack := []string{o}
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[id] {
				continue
			}
			seen[id] = true
			if _, bad := v.errs[id]; bad && len(deps[id]) < maxDependents {
				deps[id] = append(deps[id], o)
			}
			if n := v.wf[id]; n != nil {
				for _, l := range n.Links() {
					if v.wf[l.NodeID] != nil {
						stack = append(stack, l.NodeID)
					}
				}
			}
		}
	}
	return deps
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Summary describes a refused prompt in one line for a person: the first few node
// errors, with their node, class and input. The full list is in ve.NodeErrors.
func Summary(ve *comfy.ValidationError) string {
	var b strings.Builder
	b.WriteString("ComfyUI would refuse this prompt: ")
	ids := sortedKeys(ve.NodeErrors)
	sort.SliceStable(ids, func(i, j int) bool { return comfy.LessNodeID(ids[i], ids[j]) })
	n := 0
	for _, id := range ids {
		ne := ve.NodeErrors[id]
		for _, e := range ne.Errors {
			if n == 3 {
				fmt.Fprintf(&b, "; and %d more (details.node_errors lists every one)", countErrors(ve)-3)
				return b.String()
			}
			if n > 0 {
				b.WriteString("; ")
			}
			n++
			fmt.Fprintf(&b, "node %s (%s)", id, truncate(ne.ClassType, 80))
			if in, ok := e.ExtraInfo["input_name"].(string); ok && in != "" {
				fmt.Fprintf(&b, " input %q", in)
			}
			b.WriteString(": " + e.Message)
			if e.Details != "" && e.Details != e.ExtraInfo["input_name"] {
				b.WriteString(" (" + truncate(e.Details, 200) + ")")
			}
		}
	}
	if n == 0 {
		b.WriteString(ve.Err.Message)
	}
	return b.String()
}

func countErrors(ve *comfy.ValidationError) int {
	n := 0
	for _, ne := range ve.NodeErrors {
		n += len(ne.Errors)
	}
	return n
}
