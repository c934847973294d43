package comfy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// Workflow is an API-format ComfyUI prompt: a map from node id to node, exactly what
// POST /prompt takes in its "prompt" field (comfyui-protocol.md §7).
//
// Input values are decoded with json.Decoder.UseNumber, so numbers keep their literal text
// (seeds up to 2^64-1 survive a round trip) and appear as json.Number. Links are
// two-element arrays [source node id (string), output index]. Unknown fields of a node are
// kept and written back unchanged.
type Workflow map[string]*Node

// Node is one node of an API-format workflow.
type Node struct {
	ClassType string         `json:"class_type"`
	Inputs    map[string]any `json:"inputs"`
	// Meta is the optional "_meta" object ({"title": …}); ComfyUI ignores it.
	Meta map[string]any `json:"_meta,omitempty"`
	// Extra holds any other fields of the node object, preserved verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// Link is a reference from a node input to output Output of node NodeID.
type Link struct {
	NodeID string
	Output int
}

// MarshalJSON encodes the link in ComfyUI's form ["id", index].
func (l Link) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{l.NodeID, l.Output})
}

// ErrNotWorkflow is returned when data is not a JSON object of nodes.
var ErrNotWorkflow = errors.New("comfy: not an API-format workflow")

// WorkflowError lists the structural problems found in a workflow by Validate or
// ParseWorkflow. It is returned before any GPU sees the prompt.
type WorkflowError struct {
	Problems []Problem
}

// Problem is one structural problem of a workflow.
type Problem struct {
	NodeID  string `json:"node_id,omitempty"`
	Input   string `json:"input,omitempty"`
	Message string `json:"message"`
}

func (e *WorkflowError) Error() string {
	var b strings.Builder
	b.WriteString("comfy: invalid workflow: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		if i == 5 {
			fmt.Fprintf(&b, "and %d more", len(e.Problems)-5)
			break
		}
		if p.NodeID != "" {
			fmt.Fprintf(&b, "node %q", p.NodeID)
			if p.Input != "" {
				fmt.Fprintf(&b, " input %q", p.Input)
			}
			b.WriteString(": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// Unwrap lets callers test errors.Is(err, ErrNotWorkflow).
func (e *WorkflowError) Unwrap() error { return ErrNotWorkflow }

// ParseWorkflow decodes an API-format workflow, keeping number precision and unknown
// fields. It checks only that the JSON has the right shape; call Validate for links.
// A UI-format file ("nodes" and "links" arrays) is refused with a hint to convert it.
func ParseWorkflow(data []byte) (Workflow, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, fmt.Errorf("%w: expected a JSON object of nodes", ErrNotWorkflow)
	}
	if IsUIFormat(data) {
		return nil, fmt.Errorf("%w: this is a UI-format workflow (nodes/links); convert it with object_info first", ErrNotWorkflow)
	}
	var raw map[string]json.RawMessage
	if err := decodeNumbers(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotWorkflow, err)
	}
	wf := make(Workflow, len(raw))
	var problems []Problem
	for id, msg := range raw {
		var n Node
		if err := json.Unmarshal(msg, &n); err != nil {
			problems = append(problems, Problem{NodeID: id, Message: err.Error()})
			continue
		}
		wf[id] = &n
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, &WorkflowError{Problems: problems}
	}
	return wf, nil
}

// IsUIFormat reports whether data looks like a UI-format workflow (the one ComfyUI's
// "Save" writes, with "nodes" and "links" arrays) rather than an API-format prompt.
func IsUIFormat(data []byte) bool {
	var probe struct {
		Nodes json.RawMessage `json:"nodes"`
		Links json.RawMessage `json:"links"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return false
	}
	return bytes.HasPrefix(bytes.TrimSpace(probe.Nodes), []byte("[")) && len(probe.Links) > 0
}

func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

// UnmarshalJSON decodes a node, keeping numbers as json.Number and unknown fields in Extra.
func (n *Node) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := decodeNumbers(data, &raw); err != nil {
		return errors.New("node is not a JSON object")
	}
	*n = Node{}
	for k, v := range raw {
		switch k {
		case "class_type":
			if err := json.Unmarshal(v, &n.ClassType); err != nil {
				return errors.New("class_type must be a string")
			}
		case "inputs":
			if string(v) == "null" {
				continue
			}
			if err := decodeNumbers(v, &n.Inputs); err != nil || n.Inputs == nil && string(v) != "{}" {
				return errors.New("inputs must be a JSON object")
			}
		case "_meta":
			if string(v) == "null" {
				continue
			}
			if err := decodeNumbers(v, &n.Meta); err != nil {
				return errors.New("_meta must be a JSON object")
			}
		default:
			if n.Extra == nil {
				n.Extra = map[string]json.RawMessage{}
			}
			n.Extra[k] = v
		}
	}
	if n.Inputs == nil {
		n.Inputs = map[string]any{}
	}
	return nil
}

// MarshalJSON writes class_type, inputs, _meta and any preserved extra fields.
func (n *Node) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, 3+len(n.Extra))
	for k, v := range n.Extra {
		out[k] = v
	}
	out["class_type"] = n.ClassType
	inputs := n.Inputs
	if inputs == nil {
		inputs = map[string]any{}
	}
	out["inputs"] = inputs
	if n.Meta != nil {
		out["_meta"] = n.Meta
	}
	return json.Marshal(out)
}

// Title returns the node's _meta.title, or "".
func (n *Node) Title() string {
	t, _ := n.Meta["title"].(string)
	return t
}

// AsLink reports whether an input value is a link ["id", index]. A numeric node id
// (["3", 0] written as [3, 0]) is not a link, as in ComfyUI.
func AsLink(v any) (Link, bool) {
	arr, ok := v.([]any)
	if !ok || len(arr) != 2 {
		return Link{}, false
	}
	id, ok := arr[0].(string)
	if !ok {
		return Link{}, false
	}
	idx, ok := asInt(arr[1])
	if !ok {
		return Link{}, false
	}
	return Link{NodeID: id, Output: idx}, true
}

func asInt(v any) (int, bool) {
	switch x := v.(type) {
	case json.Number:
		i, err := strconv.Atoi(x.String())
		return i, err == nil
	case float64:
		if x != float64(int(x)) {
			return 0, false
		}
		return int(x), true
	case int:
		return x, true
	case int64:
		return int(x), true
	}
	return 0, false
}

// NodeIDs returns the node ids in a stable order: numeric ids numerically, then the rest.
func (w Workflow) NodeIDs() []string {
	ids := make([]string, 0, len(w))
	for id := range w {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return lessID(ids[i], ids[j]) })
	return ids
}

// LessNodeID orders node ids as NodeIDs does: numeric ids numerically (the same
// number written two ways by its text), before the rest.
func LessNodeID(a, b string) bool { return lessID(a, b) }

func lessID(a, b string) bool {
	ai, aerr := strconv.Atoi(a)
	bi, berr := strconv.Atoi(b)
	switch {
	case aerr == nil && berr == nil && ai != bi:
		return ai < bi
	case aerr == nil && berr == nil:
		// "0" and "00", "7" and "+7": one number, two ids. Their text orders them, so
		// that the order never depends on a map's.
		return a < b
	case aerr == nil:
		return true
	case berr == nil:
		return false
	}
	return a < b
}

// FindByClass returns the ids of nodes of the given class, in NodeIDs order.
func (w Workflow) FindByClass(class string) []string {
	var ids []string
	for _, id := range w.NodeIDs() {
		if w[id].ClassType == class {
			ids = append(ids, id)
		}
	}
	return ids
}

// FindByTitle returns the ids of nodes whose _meta.title equals title, in NodeIDs order.
func (w Workflow) FindByTitle(title string) []string {
	var ids []string
	for _, id := range w.NodeIDs() {
		if w[id].Title() == title {
			ids = append(ids, id)
		}
	}
	return ids
}

// ErrNoSuchNode is returned when a selector matches no node, and ErrAmbiguousNode when a
// title or class selector matches several.
var (
	ErrNoSuchNode    = errors.New("comfy: no such node")
	ErrAmbiguousNode = errors.New("comfy: selector matches several nodes")
	ErrBadPath       = errors.New("comfy: bad input path")
)

// ResolveNode finds a node by id, else by unique _meta.title, else by unique class_type.
func (w Workflow) ResolveNode(selector string) (string, error) {
	if _, ok := w[selector]; ok {
		return selector, nil
	}
	for _, find := range []func(string) []string{w.FindByTitle, w.FindByClass} {
		switch ids := find(selector); len(ids) {
		case 0:
		case 1:
			return ids[0], nil
		default:
			return "", fmt.Errorf("%w: %q matches nodes %s", ErrAmbiguousNode, selector, strings.Join(ids, ", "))
		}
	}
	return "", fmt.Errorf("%w: %q (not a node id, title or class)", ErrNoSuchNode, selector)
}

// SplitPath splits an input path "NODE.inputs.NAME" into its node selector and input
// name. The node part may itself contain dots or colons ("12:5", "4.0.0.1").
func SplitPath(path string) (node, input string, err error) {
	i := strings.LastIndex(path, ".inputs.")
	if i <= 0 || i+len(".inputs.") >= len(path) {
		return "", "", fmt.Errorf("%w: %q (want NODE.inputs.NAME, e.g. 3.inputs.seed)", ErrBadPath, path)
	}
	return path[:i], path[i+len(".inputs."):], nil
}

// Set sets an input by path ("3.inputs.seed", "KSampler.inputs.steps" or
// "Input: prompt.inputs.text"). The node must exist; the input need not.
// Go numbers are stored as json.Number so they marshal exactly.
func (w Workflow) Set(path string, value any) error {
	sel, name, err := SplitPath(path)
	if err != nil {
		return err
	}
	id, err := w.ResolveNode(sel)
	if err != nil {
		return err
	}
	n := w[id]
	if n.Inputs == nil {
		n.Inputs = map[string]any{}
	}
	n.Inputs[name] = normalizeValue(value)
	return nil
}

// Get returns the value of an input by path, and whether it is set.
func (w Workflow) Get(path string) (any, bool) {
	sel, name, err := SplitPath(path)
	if err != nil {
		return nil, false
	}
	id, err := w.ResolveNode(sel)
	if err != nil {
		return nil, false
	}
	v, ok := w[id].Inputs[name]
	return v, ok
}

func normalizeValue(v any) any {
	switch x := v.(type) {
	case int:
		return json.Number(strconv.FormatInt(int64(x), 10))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case uint64:
		return json.Number(strconv.FormatUint(x, 10))
	case uint:
		return json.Number(strconv.FormatUint(uint64(x), 10))
	case int32:
		return json.Number(strconv.FormatInt(int64(x), 10))
	case float32:
		return json.Number(strconv.FormatFloat(float64(x), 'g', -1, 32))
	case float64:
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
	case Link:
		return []any{x.NodeID, json.Number(strconv.Itoa(x.Output))}
	}
	return v
}

// Validate checks the workflow's structure locally, before a GPU sees it: at least one
// node, every node has a class_type, every link names an existing node with a
// non-negative output index and a string node id, and no node depends on itself.
// It does not know node classes; ComfyUI's own validation does that.
func (w Workflow) Validate() error {
	var problems []Problem
	if len(w) == 0 {
		problems = append(problems, Problem{Message: "workflow has no nodes"})
	}
	for id, n := range w {
		if n == nil {
			problems = append(problems, Problem{NodeID: id, Message: "node is null"})
			continue
		}
		if strings.TrimSpace(n.ClassType) == "" {
			problems = append(problems, Problem{NodeID: id, Message: "missing class_type"})
		}
		for name, v := range n.Inputs {
			arr, isArr := v.([]any)
			if !isArr || len(arr) != 2 {
				continue
			}
			if _, numID := asInt(arr[0]); numID {
				if _, idx := asInt(arr[1]); idx {
					problems = append(problems, Problem{NodeID: id, Input: name,
						Message: fmt.Sprintf("link uses a numeric node id; write [\"%v\", %v]", arr[0], arr[1])})
				}
				continue
			}
			l, ok := AsLink(v)
			if !ok {
				continue
			}
			switch src, exists := w[l.NodeID]; {
			case !exists || src == nil:
				problems = append(problems, Problem{NodeID: id, Input: name,
					Message: fmt.Sprintf("links to node %q, which does not exist", l.NodeID)})
			case l.Output < 0:
				problems = append(problems, Problem{NodeID: id, Input: name, Message: "link output index is negative"})
			}
		}
	}
	if len(problems) == 0 {
		if cyc := w.findCycle(); cyc != nil {
			problems = append(problems, Problem{NodeID: cyc[0],
				Message: "dependency cycle through nodes " + strings.Join(cyc, " → ")})
		}
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return &WorkflowError{Problems: problems}
	}
	return nil
}

// Inputs of a node that are links, by input name.
func (n *Node) Links() map[string]Link {
	links := map[string]Link{}
	for name, v := range n.Inputs {
		if l, ok := AsLink(v); ok {
			links[name] = l
		}
	}
	return links
}

func (w Workflow) findCycle() []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var cycle []string
	var visit func(id string) bool
	visit = func(id string) bool {
		color[id] = grey
		stack = append(stack, id)
		n := w[id]
		names := make([]string, 0, len(n.Inputs))
		for name := range n.Inputs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			l, ok := AsLink(n.Inputs[name])
			if !ok || w[l.NodeID] == nil {
				continue
			}
			switch color[l.NodeID] {
			case grey:
				for i, s := range stack {
					if s == l.NodeID {
						cycle = append(append([]string{}, stack[i:]...), l.NodeID)
					}
				}
				return true
			case white:
				if visit(l.NodeID) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[id] = black
		return false
	}
	for _, id := range w.NodeIDs() {
		if color[id] == white && visit(id) {
			return cycle
		}
	}
	return nil
}

func sortProblems(p []Problem) {
	sort.SliceStable(p, func(i, j int) bool {
		if p[i].NodeID != p[j].NodeID {
			return lessID(p[i].NodeID, p[j].NodeID)
		}
		return p[i].Input < p[j].Input
	})
}

// Clone returns a deep copy of the workflow.
func (w Workflow) Clone() Workflow {
	c := make(Workflow, len(w))
	for id, n := range w {
		if n == nil {
			c[id] = nil
			continue
		}
		cn := &Node{ClassType: n.ClassType}
		cn.Inputs, _ = deepCopy(n.Inputs).(map[string]any)
		if n.Meta != nil {
			cn.Meta, _ = deepCopy(n.Meta).(map[string]any)
		}
		if n.Extra != nil {
			cn.Extra = make(map[string]json.RawMessage, len(n.Extra))
			for k, v := range n.Extra {
				cn.Extra[k] = append(json.RawMessage(nil), v...)
			}
		}
		c[id] = cn
	}
	return c
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return map[string]any(nil)
		}
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}

// SeedInputs are the input names treated as seeds by RandomizeSeeds.
var SeedInputs = []string{"seed", "noise_seed"}

// MaxRandomSeed bounds the seeds RandomizeSeeds picks: 2^53-1, exact in every JSON
// implementation and within every core node's seed range.
const MaxRandomSeed = 1<<53 - 1

// RandomizeSeeds gives every constant seed input (see SeedInputs) a new random value and
// returns the paths it changed. ComfyUI's cache makes an identical prompt a no-op (§8), so
// clients that want a new image must vary the seed themselves. r may be nil.
func (w Workflow) RandomizeSeeds(r *rand.Rand) []string {
	var changed []string
	for _, id := range w.NodeIDs() {
		n := w[id]
		for _, name := range SeedInputs {
			v, ok := n.Inputs[name]
			if !ok {
				continue
			}
			if _, isLink := AsLink(v); isLink {
				continue
			}
			var s uint64
			if r != nil {
				s = r.Uint64N(MaxRandomSeed + 1)
			} else {
				s = rand.Uint64N(MaxRandomSeed + 1)
			}
			n.Inputs[name] = json.Number(strconv.FormatUint(s, 10))
			changed = append(changed, id+".inputs."+name)
		}
	}
	return changed
}
