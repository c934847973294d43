package comfy

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
)

// UI-format → API-format conversion (comfyui-protocol.md §7), mirroring graphToPrompt of
// ComfyUI's frontend: virtual, muted and bypassed nodes are left out, widget values are
// matched to inputs through object_info's input_order, links are resolved through
// Reroutes, bypassed nodes, subgraphs and legacy group nodes.

// ConvertOptions tunes ConvertUI. The zero value (or a nil pointer) converts like the
// frontend's "Queue" button, except that dynamic prompts are left as saved.
type ConvertOptions struct {
	// DynamicPrompts applies the UI's queue-time rewrite of STRING widgets whose input
	// spec has dynamicPrompts:true (CLIPTextEncode.text among others): // and /* */
	// comments are removed and every {a|b|c} group is replaced by one of its choices.
	// Default false: the text is kept exactly as saved.
	DynamicPrompts bool
	// Rand picks the {a|b} choices when DynamicPrompts is set. Default nil: the
	// math/rand/v2 global source. A *rand.Rand is not safe for concurrent use, so do
	// not share one between conversions running at the same time.
	Rand *rand.Rand
	// Strict makes a node whose type is neither in object_info, nor a subgraph or group
	// node definition, nor a frontend-only node (Reroute, PrimitiveNode, Note,
	// MarkdownNote) an error. Default false: such nodes are skipped and links from them
	// dropped, as ComfyUI's frontend does.
	Strict bool
}

// Errors wrapped by ConvertError; test them with errors.Is.
var (
	// ErrNotUIWorkflow means the data is not a UI-format workflow (no "nodes" array),
	// or its structure is broken beyond repair.
	ErrNotUIWorkflow = errors.New("comfy: not a UI-format workflow")
	// ErrUnknownNodeType is reported in Strict mode for a node type that object_info
	// does not know.
	ErrUnknownNodeType = errors.New("comfy: unknown node type")
	// ErrUnsupportedNode means a node is known but its saved state cannot be mapped to
	// API inputs (for example widgets_values written by a frontend extension, a
	// recursive subgraph or a link cycle).
	ErrUnsupportedNode = errors.New("comfy: node cannot be converted")
)

// ConvertError reports why a UI-format workflow could not be converted. NodeID is the
// node's id in API form ("12", or "57:3" inside subgraph instance 57) and is empty for
// problems of the whole file.
type ConvertError struct {
	NodeID   string
	NodeType string
	Reason   string
	// Err is ErrNotUIWorkflow, ErrUnknownNodeType or ErrUnsupportedNode.
	Err error
}

func (e *ConvertError) Error() string {
	var b strings.Builder
	b.WriteString("comfy: convert UI workflow: ")
	if e.NodeID != "" {
		fmt.Fprintf(&b, "node %s", e.NodeID)
		if e.NodeType != "" {
			fmt.Fprintf(&b, " (%s)", e.NodeType)
		}
		b.WriteString(": ")
	} else if e.NodeType != "" {
		fmt.Fprintf(&b, "%s: ", e.NodeType)
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap returns the sentinel error (ErrNotUIWorkflow, ErrUnknownNodeType,
// ErrUnsupportedNode).
func (e *ConvertError) Unwrap() error { return e.Err }

// ConvertUI converts a UI-format workflow (what ComfyUI's "Save" writes, also embedded
// in output images as extra_pnginfo.workflow) to the API format POST /prompt takes.
// info is the server's /object_info: widget values are matched to inputs through it.
// opts may be nil. Problems are reported as *ConvertError.
//
// The result is what the frontend would queue: it may still lack required inputs (a
// muted source drops the link) and contain nodes no output depends on; ComfyUI's own
// validation reports those.
func ConvertUI(data []byte, info ObjectInfo, opts *ConvertOptions) (Workflow, error) {
	c, err := newUIConverter(data, info, opts)
	if err != nil {
		return nil, err
	}
	if err := c.emitScope(c.root); err != nil {
		return nil, err
	}
	c.dropDanglingLinks()
	return c.out, nil
}

// ConvertUIWithTargets converts like ConvertUI and then keeps only the given targets and
// the nodes they depend on (comfyui-protocol.md §7 step 7, the frontend's "queue selected
// output nodes"). A target is an API node id; the id of a subgraph or group node
// instance selects every node inside it. It also returns the selected output nodes
// (classes with output_node true), sorted, to send as partial_execution_targets.
func ConvertUIWithTargets(data []byte, info ObjectInfo, opts *ConvertOptions, targets []string) (Workflow, []string, error) {
	wf, err := ConvertUI(data, info, opts)
	if err != nil {
		return nil, nil, err
	}
	if len(targets) == 0 {
		return nil, nil, &ConvertError{Err: ErrUnsupportedNode, Reason: "no targets given for partial execution"}
	}
	keep := map[string]bool{}
	var outputs []string
	for _, t := range targets {
		matched := false
		for id, n := range wf {
			if id != t && !strings.HasPrefix(id, t+":") {
				continue
			}
			matched = true
			keep[id] = true
			if ni := info[n.ClassType]; ni != nil && ni.OutputNode {
				outputs = append(outputs, id)
			}
		}
		if !matched {
			return nil, nil, &ConvertError{NodeID: t, Err: ErrUnsupportedNode,
				Reason: "target is not a node of the converted workflow (muted, bypassed, virtual or absent)"}
		}
	}
	if len(outputs) == 0 {
		return nil, nil, &ConvertError{Err: ErrUnsupportedNode, Reason: "no output node among the targets"}
	}
	stack := make([]string, 0, len(keep))
	for id := range keep {
		stack = append(stack, id)
	}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, l := range wf[id].Links() {
			if _, ok := wf[l.NodeID]; ok && !keep[l.NodeID] {
				keep[l.NodeID] = true
				stack = append(stack, l.NodeID)
			}
		}
	}
	for id := range wf {
		if !keep[id] {
			delete(wf, id)
		}
	}
	outputs = uniqueSortedIDs(outputs)
	return wf, outputs, nil
}

func uniqueSortedIDs(ids []string) []string {
	sort.Slice(ids, func(i, j int) bool { return lessID(ids[i], ids[j]) })
	out := ids[:0]
	for i, id := range ids {
		if i == 0 || id != ids[i-1] {
			out = append(out, id)
		}
	}
	return out
}

// Frontend-only node types: never sent to the server.
var uiVirtualTypes = map[string]bool{
	"Reroute":       true,
	"PrimitiveNode": true,
	"Note":          true,
	"MarkdownNote":  true,
}

// Node modes (LGraphEventMode).
const (
	uiModeNever  = 2 // muted
	uiModeBypass = 4
)

// Subgraph input and output pseudo-node ids.
const (
	uiSubgraphInputID  = "-10"
	uiSubgraphOutputID = "-20"
)

const (
	uiMaxDepth = 32      // nested subgraph / group instances
	uiMaxNodes = 50_000  // emitted nodes, against exponential nesting
	uiMaxSteps = 500_000 // nodes visited and links followed, likewise
)

type uiConverter struct {
	info      ObjectInfo
	opts      ConvertOptions
	root      *uiScope
	subgraphs map[string]*uiGraph
	groupRaw  map[string]any
	groups    map[string]*uiGraph
	out       Workflow
	steps     int
	specs     map[*NodeInfo]*uiClassSpecs
}

// uiClassSpecs caches a class's parsed inputs: object_info keeps them as raw JSON.
type uiClassSpecs struct {
	ordered []InputSpec
	byName  map[string]InputSpec
}

func (c *uiConverter) classSpecs(ni *NodeInfo) *uiClassSpecs {
	if cs, ok := c.specs[ni]; ok {
		return cs
	}
	cs := &uiClassSpecs{ordered: ni.OrderedSpecs(), byName: map[string]InputSpec{}}
	for _, s := range cs.ordered {
		cs.byName[s.Name] = s
	}
	c.specs[ni] = cs
	return cs
}

// step counts work against uiMaxSteps: nested definitions can multiply it.
func (c *uiConverter) step() error {
	c.steps++
	if c.steps > uiMaxSteps {
		return &ConvertError{Err: ErrUnsupportedNode, Reason: "workflow too large after flattening subgraphs and group nodes"}
	}
	return nil
}

func newUIConverter(data []byte, info ObjectInfo, opts *ConvertOptions) (*uiConverter, error) {
	c := &uiConverter{info: info, subgraphs: map[string]*uiGraph{}, groups: map[string]*uiGraph{}, out: Workflow{},
		specs: map[*NodeInfo]*uiClassSpecs{}}
	if opts != nil {
		c.opts = *opts
	}
	var doc map[string]any
	if err := decodeNumbers(bytes.TrimSpace(data), &doc); err != nil || doc == nil {
		reason := "expected a JSON object"
		if err != nil {
			reason = "invalid JSON: " + err.Error()
		}
		return nil, &ConvertError{Err: ErrNotUIWorkflow, Reason: reason}
	}
	if _, ok := doc["nodes"].([]any); !ok {
		reason := `no "nodes" array`
		if _, isAPI := doc["class_type"]; isAPI || looksLikeAPI(doc) {
			reason += "; this looks like an API-format workflow already"
		}
		return nil, &ConvertError{Err: ErrNotUIWorkflow, Reason: reason}
	}
	if err := c.collectSubgraphs(doc, 0); err != nil {
		return nil, err
	}
	if extra, ok := doc["extra"].(map[string]any); ok {
		c.groupRaw, _ = extra["groupNodes"].(map[string]any)
	}
	g, err := parseUIGraph(doc, "")
	if err != nil {
		return nil, err
	}
	c.root = &uiScope{g: g}
	return c, nil
}
