package comfy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
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

// uiGraph is the root graph, a subgraph definition or a legacy group node definition
// turned into the same shape.
type uiGraph struct {
	id    string // subgraph UUID or "workflow>Name" for group nodes; "" for the root
	nodes []*uiNode
	byID  map[string]*uiNode
	links map[string]*uiLink
	// Definition slots (subgraphs and group nodes): inputs fed through links from
	// uiSubgraphInputID, outputs reached through links to uiSubgraphOutputID.
	inputs  []uiSlot
	outputs []uiSlot
	// Group nodes only: the instance's widgets in widgets_values order, and inputs are
	// matched to the instance's inputs by position rather than name.
	groupWidgets []uiGroupWidget
	isGroup      bool
}

type uiSlot struct {
	name, typ string
	linkIDs   []string
}

type uiNode struct {
	id       string
	typ      string
	mode     int
	title    string
	hasTitle bool
	inputs   []uiInput
	outputs  []uiOutput
	wv       []any          // widgets_values as an array
	wvObj    map[string]any // widgets_values as an object
	props    map[string]any
	index    int // position in a group node definition
}

type uiInput struct {
	name, label, typ string
	link             string // "" when unconnected
	widget           string // widget name for inputs that stand for a widget
}

type uiOutput struct {
	name, typ string
}

type uiLink struct {
	id         string
	origin     string
	originSlot int
	target     string
	targetSlot int
	typ        string
	broken     bool // fields could not be read
}

// uiGroupWidget is one widget of a legacy group node instance: either the widget name
// of an inner node, or a PrimitiveNode whose value goes to several inner widgets.
type uiGroupWidget struct {
	targets []uiWidgetRef
	extras  int // values after this one in widgets_values that belong to it
}

type uiWidgetRef struct{ node, widget string }

// uiScope is one instantiation of a graph: the root, or a subgraph / group node
// definition seen through one instance node.
type uiScope struct {
	g        *uiGraph
	prefix   string // "" for the root, "57:" inside instance 57, "57:12:" nested
	parent   *uiScope
	instance *uiNode // instance node in parent
	depth    int
	// Subgraphs: value of each definition input from the instance's widgets.
	instanceWidgets map[int]any
	// Group nodes: widget values set on inner nodes by the instance.
	overrides map[string]map[string]any
}

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

func looksLikeAPI(doc map[string]any) bool {
	for _, v := range doc {
		if m, ok := v.(map[string]any); ok {
			if _, ok := m["class_type"]; ok {
				return true
			}
		}
	}
	return false
}

// collectSubgraphs gathers definitions.subgraphs of the document and, recursively, of
// the definitions themselves (some frontends nest them).
func (c *uiConverter) collectSubgraphs(doc map[string]any, depth int) error {
	if depth > uiMaxDepth {
		return &ConvertError{Err: ErrNotUIWorkflow, Reason: "subgraph definitions nested too deeply"}
	}
	defs, _ := doc["definitions"].(map[string]any)
	list, _ := defs["subgraphs"].([]any)
	for i, raw := range list {
		sg, ok := raw.(map[string]any)
		if !ok {
			return &ConvertError{Err: ErrNotUIWorkflow, Reason: fmt.Sprintf("definitions.subgraphs[%d] is not an object", i)}
		}
		id, ok := sg["id"].(string)
		if !ok || id == "" {
			return &ConvertError{Err: ErrNotUIWorkflow, Reason: fmt.Sprintf("definitions.subgraphs[%d] has no id", i)}
		}
		if _, dup := c.subgraphs[id]; dup {
			continue // the same definition listed twice (nested copies): first wins
		}
		g, err := parseUIGraph(sg, id)
		if err != nil {
			return err
		}
		g.inputs, err = parseUISlots(sg["inputs"], id, "inputs")
		if err != nil {
			return err
		}
		g.outputs, err = parseUISlots(sg["outputs"], id, "outputs")
		if err != nil {
			return err
		}
		c.subgraphs[id] = g
		if err := c.collectSubgraphs(sg, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func parseUISlots(raw any, graphID, field string) ([]uiSlot, error) {
	if raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, &ConvertError{NodeType: graphID, Err: ErrNotUIWorkflow, Reason: "subgraph " + field + " is not an array"}
	}
	slots := make([]uiSlot, len(list))
	for i, r := range list {
		m, _ := r.(map[string]any)
		s := uiSlot{name: uiString(m["name"]), typ: uiTypeString(m["type"])}
		ids, _ := m["linkIds"].([]any)
		for _, l := range ids {
			if id, ok := uiID(l); ok {
				s.linkIDs = append(s.linkIDs, id)
			}
		}
		slots[i] = s
	}
	return slots, nil
}

// parseUIGraph reads nodes and links of the root or of a subgraph definition. Links may
// be 0.4 arrays or version-1 objects, even mixed.
func parseUIGraph(doc map[string]any, graphID string) (*uiGraph, error) {
	g := &uiGraph{id: graphID, byID: map[string]*uiNode{}, links: map[string]*uiLink{}}
	nodes, ok := doc["nodes"].([]any)
	if !ok && doc["nodes"] != nil {
		return nil, &ConvertError{NodeType: graphID, Err: ErrNotUIWorkflow, Reason: `"nodes" is not an array`}
	}
	for i, raw := range nodes {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, &ConvertError{NodeType: graphID, Err: ErrNotUIWorkflow, Reason: fmt.Sprintf("nodes[%d] is not an object", i)}
		}
		n, err := parseUINode(m, i)
		if err != nil {
			err.NodeType = strings.TrimSpace(graphID + " " + err.NodeType)
			return nil, err
		}
		if _, dup := g.byID[n.id]; dup {
			return nil, &ConvertError{NodeID: n.id, NodeType: n.typ, Err: ErrNotUIWorkflow, Reason: "duplicate node id"}
		}
		g.nodes = append(g.nodes, n)
		g.byID[n.id] = n
	}
	links, ok := doc["links"].([]any)
	if !ok && doc["links"] != nil {
		return nil, &ConvertError{NodeType: graphID, Err: ErrNotUIWorkflow, Reason: `"links" is not an array`}
	}
	for i, raw := range links {
		if raw == nil {
			continue
		}
		l, err := parseUILink(raw)
		if err != nil {
			return nil, &ConvertError{NodeType: graphID, Err: ErrNotUIWorkflow, Reason: fmt.Sprintf("links[%d]: %v", i, err)}
		}
		g.links[l.id] = l
	}
	return g, nil
}

func parseUINode(m map[string]any, pos int) (*uiNode, *ConvertError) {
	id, ok := uiID(m["id"])
	if !ok {
		return nil, &ConvertError{Err: ErrNotUIWorkflow, Reason: fmt.Sprintf("nodes[%d] has no valid id", pos)}
	}
	typ, ok := m["type"].(string)
	if !ok || typ == "" {
		return nil, &ConvertError{NodeID: id, Err: ErrNotUIWorkflow, Reason: "node has no type"}
	}
	n := &uiNode{id: id, typ: typ, index: pos}
	if v, ok := uiInt(m["mode"]); ok {
		n.mode = v
	}
	if v, ok := uiInt(m["index"]); ok {
		n.index = v
	}
	if t, ok := m["title"].(string); ok {
		n.title, n.hasTitle = t, true
	}
	n.props, _ = m["properties"].(map[string]any)
	switch wv := m["widgets_values"].(type) {
	case []any:
		n.wv = wv
	case map[string]any:
		n.wvObj = wv
	}
	ins, _ := m["inputs"].([]any)
	for _, r := range ins {
		im, _ := r.(map[string]any)
		in := uiInput{name: uiString(im["name"]), label: uiString(im["label"]), typ: uiTypeString(im["type"])}
		if l, ok := uiID(im["link"]); ok {
			in.link = l
		}
		if w, ok := im["widget"].(map[string]any); ok {
			in.widget = uiString(w["name"])
			if in.widget == "" {
				in.widget = in.name
			}
		}
		n.inputs = append(n.inputs, in)
	}
	outs, _ := m["outputs"].([]any)
	for _, r := range outs {
		om, _ := r.(map[string]any)
		n.outputs = append(n.outputs, uiOutput{name: uiString(om["name"]), typ: uiTypeString(om["type"])})
	}
	return n, nil
}

func parseUILink(raw any) (*uiLink, error) {
	var id, origin, target, originSlot, targetSlot, typ any
	switch v := raw.(type) {
	case []any:
		if len(v) < 5 {
			return nil, fmt.Errorf("array link has %d elements, want 6", len(v))
		}
		id, origin, originSlot, target, targetSlot = v[0], v[1], v[2], v[3], v[4]
		if len(v) > 5 {
			typ = v[5]
		}
	case map[string]any:
		id, origin, originSlot, target, targetSlot, typ = v["id"], v["origin_id"], v["origin_slot"], v["target_id"], v["target_slot"], v["type"]
	default:
		return nil, errors.New("link is neither an array nor an object")
	}
	lid, ok := uiID(id)
	if !ok {
		return nil, errors.New("link has no valid id")
	}
	l := &uiLink{id: lid, typ: uiTypeString(typ)}
	var ok1, ok2, ok3, ok4 bool
	l.origin, ok1 = uiID(origin)
	l.target, ok2 = uiID(target)
	l.originSlot, ok3 = uiInt(originSlot)
	l.targetSlot, ok4 = uiInt(targetSlot)
	l.broken = !ok1 || !ok2 || !ok3 || !ok4 || l.originSlot < 0
	return l, nil
}

// uiID reads a node or link id: an integer (written as a JSON number) or a string.
func uiID(v any) (string, bool) {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			return strconv.FormatInt(i, 10), true
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return "", false
		}
		return strconv.FormatInt(int64(f), 10), true
	case string:
		return x, x != ""
	}
	return "", false
}

// uiInt reads a slot index or mode.
func uiInt(v any) (int, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	if i, err := strconv.ParseInt(n.String(), 10, 32); err == nil {
		return int(i), true
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		return 0, false
	}
	return int(f), true
}

func uiString(v any) string {
	s, _ := v.(string)
	return s
}

// uiTypeString reads a slot type: usually a string, -1 for litegraph events.
func uiTypeString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}

// --- emission ---------------------------------------------------------------------

func (c *uiConverter) emitScope(sc *uiScope) error {
	for _, n := range sc.g.nodes {
		if err := c.step(); err != nil {
			return err
		}
		if uiVirtualTypes[n.typ] || n.mode == uiModeNever || n.mode == uiModeBypass {
			continue
		}
		id := sc.prefix + n.id
		if def, err := c.definition(sc, n); err != nil {
			return err
		} else if def != nil {
			inner, err := c.newInstanceScope(sc, n, def)
			if err != nil {
				return err
			}
			if err := c.emitScope(inner); err != nil {
				return err
			}
			continue
		}
		ni := c.info[n.typ]
		if ni == nil {
			if c.opts.Strict {
				return &ConvertError{NodeID: id, NodeType: n.typ, Err: ErrUnknownNodeType,
					Reason: "type is not in object_info (a custom node that is not installed?)"}
			}
			continue
		}
		if err := c.emitNode(sc, n, ni); err != nil {
			return err
		}
		if len(c.out) > uiMaxNodes {
			return &ConvertError{Err: ErrUnsupportedNode, Reason: fmt.Sprintf("more than %d nodes after flattening subgraphs", uiMaxNodes)}
		}
	}
	return nil
}

// definition returns the subgraph or group node definition a node instantiates, or nil.
func (c *uiConverter) definition(sc *uiScope, n *uiNode) (*uiGraph, error) {
	if g, ok := c.subgraphs[n.typ]; ok {
		return g, nil
	}
	name, ok := strings.CutPrefix(n.typ, "workflow>")
	if !ok {
		name, ok = strings.CutPrefix(n.typ, "workflow/")
	}
	if !ok {
		return nil, nil
	}
	if g, ok := c.groups[name]; ok {
		return g, nil
	}
	raw, ok := c.groupRaw[name]
	if !ok {
		return nil, nil // unknown type: handled like any type missing from object_info
	}
	g, err := c.buildGroupDef(n.typ, raw)
	if err != nil {
		err.NodeID = sc.prefix + n.id
		return nil, err
	}
	c.groups[name] = g
	return g, nil
}

func (c *uiConverter) newInstanceScope(sc *uiScope, n *uiNode, def *uiGraph) (*uiScope, error) {
	id := sc.prefix + n.id
	if sc.depth >= uiMaxDepth {
		return nil, &ConvertError{NodeID: id, NodeType: n.typ, Err: ErrUnsupportedNode, Reason: "subgraphs nested too deeply"}
	}
	for p := sc; p != nil; p = p.parent {
		if p.g == def {
			return nil, &ConvertError{NodeID: id, NodeType: n.typ, Err: ErrUnsupportedNode, Reason: "subgraph contains an instance of itself"}
		}
	}
	inner := &uiScope{g: def, prefix: id + ":", parent: sc, instance: n, depth: sc.depth + 1}
	if def.isGroup {
		inner.overrides = groupWidgetOverrides(n, def)
	} else {
		inner.instanceWidgets = subgraphInstanceWidgets(n, def)
	}
	return inner, nil
}

func (c *uiConverter) emitNode(sc *uiScope, n *uiNode, ni *NodeInfo) error {
	id := sc.prefix + n.id
	inputs, err := c.widgetValues(id, n, ni, sc.overrides[n.id])
	if err != nil {
		return err
	}
	for i, in := range n.inputs {
		if in.link == "" || in.name == "" {
			continue
		}
		r, err := c.resolveInput(sc, n, i, "", map[string]bool{})
		if err != nil {
			var ce *ConvertError
			if errors.As(err, &ce) && ce.NodeID == "" {
				ce.NodeID, ce.NodeType = id, n.typ
			}
			return err
		}
		switch r.kind {
		case uiResLink:
			inputs[in.name] = []any{r.id, json.Number(strconv.Itoa(r.slot))}
		case uiResValue:
			inputs[in.name] = c.finishValue(ni, in.name, r.value)
		case uiResDrop:
			delete(inputs, in.name)
		}
	}
	title := n.title
	if !n.hasTitle {
		title = ni.DisplayName
		if title == "" {
			title = n.typ
		}
	}
	c.out[id] = &Node{ClassType: n.typ, Inputs: inputs, Meta: map[string]any{"title": title}}
	return nil
}

// dropDanglingLinks removes inputs that link to nodes absent from the output, as the
// frontend does after building the prompt ("Remove inputs connected to removed nodes").
func (c *uiConverter) dropDanglingLinks() {
	for _, n := range c.out {
		for name, v := range n.Inputs {
			if l, ok := AsLink(v); ok && c.out[l.NodeID] == nil {
				delete(n.Inputs, name)
			}
		}
	}
}

// --- widget values ----------------------------------------------------------------

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

// --- link resolution --------------------------------------------------------------

type uiResKind int

const (
	uiResKeep      uiResKind = iota // nothing to set: keep the widget value, if any
	uiResLink                       // a link to an emitted node
	uiResValue                      // a constant (subgraph instance widget, primitive)
	uiResDrop                       // source muted or missing: remove the input
	uiResPrimitive                  // a PrimitiveNode: the target keeps its own widget value
)

type uiResolved struct {
	kind  uiResKind
	id    string
	slot  int
	value any
}

// resolveInput follows input idx of node n (in scope sc) back to the node that produces
// its value. typ is the type requested by the original consumer ("" = this input's).
func (c *uiConverter) resolveInput(sc *uiScope, n *uiNode, idx int, typ string, visited map[string]bool) (uiResolved, error) {
	if err := c.step(); err != nil {
		return uiResolved{}, err
	}
	key := sc.prefix + n.id + "[I]" + strconv.Itoa(idx)
	if visited[key] {
		return uiResolved{}, &ConvertError{NodeID: sc.prefix + n.id, NodeType: n.typ, Err: ErrUnsupportedNode,
			Reason: "link cycle through Reroute, bypassed or subgraph nodes"}
	}
	visited[key] = true
	if idx < 0 || idx >= len(n.inputs) {
		return uiResolved{}, nil
	}
	in := n.inputs[idx]
	if typ == "" {
		typ = in.typ
	}
	if in.link == "" {
		return uiResolved{}, nil
	}
	l := sc.g.links[in.link]
	if l == nil {
		return uiResolved{}, nil // stale link id: the input is unconnected
	}
	if l.broken {
		return uiResolved{kind: uiResDrop}, nil
	}
	if l.origin == uiSubgraphInputID && sc.instance != nil {
		return c.resolveDefInput(sc, l.originSlot, typ, visited)
	}
	src := sc.g.byID[l.origin]
	if src == nil {
		return uiResolved{kind: uiResDrop}, nil
	}
	return c.resolveOutput(sc, src, l.originSlot, typ, visited)
}

// resolveDefInput resolves definition input k of the instance behind scope sc: the
// instance's outer link, else its widget value.
func (c *uiConverter) resolveDefInput(sc *uiScope, k int, typ string, visited map[string]bool) (uiResolved, error) {
	outer := sc.instanceInput(k)
	if outer >= 0 && sc.instance.inputs[outer].link != "" {
		r, err := c.resolveInput(sc.parent, sc.instance, outer, typ, visited)
		if err != nil {
			return r, err
		}
		if r.kind == uiResPrimitive {
			// The PrimitiveNode sets the widget the instance promotes; the inner node
			// gets the primitive's value.
			if r.value != nil {
				return uiResolved{kind: uiResValue, value: r.value}, nil
			}
			if v, ok := sc.instanceWidgets[k]; ok {
				return uiResolved{kind: uiResValue, value: v}, nil
			}
			return uiResolved{kind: uiResKeep}, nil
		}
		if r.kind != uiResKeep {
			return r, nil
		}
	}
	if v, ok := sc.instanceWidgets[k]; ok {
		return uiResolved{kind: uiResValue, value: v}, nil
	}
	return uiResolved{}, nil
}

// instanceInput finds the instance's input for definition input k: by name for
// subgraphs (saved instances may list only some inputs), by position for group nodes.
func (sc *uiScope) instanceInput(k int) int {
	if k < 0 || k >= len(sc.g.inputs) {
		return -1
	}
	inst := sc.instance
	if sc.g.isGroup && k < len(inst.inputs) {
		return k
	}
	name := sc.g.inputs[k].name
	for i, in := range inst.inputs {
		if in.name == name {
			return i
		}
	}
	if !sc.g.isGroup && len(inst.inputs) == len(sc.g.inputs) {
		return k
	}
	return -1
}

// resolveOutput resolves output slot of node n to the node that really produces it.
func (c *uiConverter) resolveOutput(sc *uiScope, n *uiNode, slot int, typ string, visited map[string]bool) (uiResolved, error) {
	key := sc.prefix + n.id + "[O]" + strconv.Itoa(slot)
	if visited[key] {
		return uiResolved{}, &ConvertError{NodeID: sc.prefix + n.id, NodeType: n.typ, Err: ErrUnsupportedNode,
			Reason: "link cycle through Reroute, bypassed or subgraph nodes"}
	}
	visited[key] = true
	switch {
	case n.mode == uiModeBypass:
		// Pass through the input of the same slot if its type matches, else the first
		// input whose type matches; no match drops the link.
		if slot >= 0 && slot < len(n.inputs) && n.inputs[slot].typ == typ {
			return c.resolveInput(sc, n, slot, typ, visited)
		}
		for i, in := range n.inputs {
			if in.typ == typ {
				return c.resolveInput(sc, n, i, typ, visited)
			}
		}
		return uiResolved{}, nil
	case n.mode == uiModeNever:
		return uiResolved{kind: uiResDrop}, nil
	case n.typ == "Reroute":
		if len(n.inputs) == 0 {
			return uiResolved{}, nil
		}
		return c.resolveInput(sc, n, 0, typ, visited)
	case n.typ == "PrimitiveNode":
		r := uiResolved{kind: uiResPrimitive}
		if len(n.wv) > 0 {
			r.value = n.wv[0]
		}
		return r, nil
	case uiVirtualTypes[n.typ]:
		return uiResolved{}, nil
	}
	def, err := c.definition(sc, n)
	if err != nil {
		return uiResolved{}, err
	}
	if def != nil {
		inner, err := c.newInstanceScope(sc, n, def)
		if err != nil {
			return uiResolved{}, err
		}
		l := def.outputLink(slot)
		if l == nil || l.broken {
			return uiResolved{kind: uiResDrop}, nil
		}
		if l.origin == uiSubgraphInputID {
			return c.resolveDefInput(inner, l.originSlot, typ, visited)
		}
		src := def.byID[l.origin]
		if src == nil {
			return uiResolved{kind: uiResDrop}, nil
		}
		return c.resolveOutput(inner, src, l.originSlot, typ, visited)
	}
	if c.info[n.typ] == nil {
		return uiResolved{kind: uiResDrop}, nil
	}
	return uiResolved{kind: uiResLink, id: sc.prefix + n.id, slot: slot}, nil
}

// outputLink is the inner link that feeds definition output slot.
func (g *uiGraph) outputLink(slot int) *uiLink {
	if slot >= 0 && slot < len(g.outputs) {
		for _, id := range g.outputs[slot].linkIDs {
			if l := g.links[id]; l != nil && l.target == uiSubgraphOutputID {
				return l
			}
		}
	}
	var best *uiLink
	for _, l := range g.links {
		if l.target == uiSubgraphOutputID && l.targetSlot == slot && (best == nil || lessID(l.id, best.id)) {
			best = l
		}
	}
	return best
}

// --- subgraph instance widgets ----------------------------------------------------

// subgraphInstanceWidgets maps definition input index → the instance's widget value, for
// inputs that feed widgets. Newer frontends list the instance's widgets in
// properties.proxyWidgets (["-1", name] for the instance's own widgets, whose values are
// widgets_values in order); older ones have one widget per definition input that feeds
// a widget, in definition order. When the values cannot be matched safely, none are
// returned and inner nodes keep their own widget values.
func subgraphInstanceWidgets(inst *uiNode, def *uiGraph) map[int]any {
	byName := func(name string) int {
		for k, in := range def.inputs {
			if in.name == name {
				return k
			}
		}
		return -1
	}
	m := map[int]any{}
	if inst.wvObj != nil {
		for k, in := range def.inputs {
			if v, ok := inst.wvObj[in.name]; ok {
				m[k] = v
			}
		}
		return m
	}
	if pw, ok := inst.props["proxyWidgets"].([]any); ok {
		type entry struct {
			self bool
			name string
		}
		entries := make([]entry, 0, len(pw))
		self := 0
		for _, e := range pw {
			pair, _ := e.([]any)
			if len(pair) != 2 {
				entries = append(entries, entry{})
				continue
			}
			node, _ := uiID(pair[0])
			name, _ := pair[1].(string)
			entries = append(entries, entry{self: node == "-1", name: name})
			if node == "-1" {
				self++
			}
		}
		switch len(inst.wv) {
		case self:
			i := 0
			for _, e := range entries {
				if e.self {
					if k := byName(e.name); k >= 0 {
						m[k] = inst.wv[i]
					}
					i++
				}
			}
		case len(entries):
			for i, e := range entries {
				if e.self {
					if k := byName(e.name); k >= 0 {
						m[k] = inst.wv[i]
					}
				}
			}
		}
		return m
	}
	var widgetInputs []int
	for k := range def.inputs {
		if def.inputFeedsWidget(k) {
			widgetInputs = append(widgetInputs, k)
		}
	}
	if len(widgetInputs) == len(inst.wv) {
		for i, k := range widgetInputs {
			m[k] = inst.wv[i]
		}
	}
	return m
}

// inputFeedsWidget reports whether definition input k is linked to an inner input that
// stands for a widget.
func (g *uiGraph) inputFeedsWidget(k int) bool {
	for _, l := range g.links {
		if l.origin != uiSubgraphInputID || l.originSlot != k {
			continue
		}
		if t := g.byID[l.target]; t != nil && l.targetSlot >= 0 && l.targetSlot < len(t.inputs) && t.inputs[l.targetSlot].widget != "" {
			return true
		}
	}
	return false
}

// --- legacy group nodes -----------------------------------------------------------

// groupWidgetOverrides maps the instance's widgets_values onto the inner widgets.
func groupWidgetOverrides(inst *uiNode, def *uiGraph) map[string]map[string]any {
	ov := map[string]map[string]any{}
	set := func(w uiGroupWidget, v any) {
		for _, t := range w.targets {
			if ov[t.node] == nil {
				ov[t.node] = map[string]any{}
			}
			ov[t.node][t.widget] = v
		}
	}
	if inst.wvObj != nil {
		for _, w := range def.groupWidgets {
			if len(w.targets) == 0 {
				continue
			}
			if v, ok := inst.wvObj[w.targets[0].widget]; ok {
				set(w, v)
			}
		}
		return ov
	}
	pos := 0
	for _, w := range def.groupWidgets {
		if pos >= len(inst.wv) {
			break
		}
		set(w, inst.wv[pos])
		pos += 1 + w.extras
	}
	return ov
}

// buildGroupDef turns extra.groupNodes[name] into a graph shaped like a subgraph
// definition, following the frontend's GroupNodeConfig: inner node i gets id "i";
// inputs not linked inside the group become the instance's inputs and outputs not
// linked inside become its outputs, node by node; widgets not linked inside become the
// instance's widgets.
func (c *uiConverter) buildGroupDef(typ string, raw any) (*uiGraph, *ConvertError) {
	bad := func(reason string) *ConvertError {
		return &ConvertError{NodeType: typ, Err: ErrNotUIWorkflow, Reason: "group node definition: " + reason}
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, bad("not an object")
	}
	g := &uiGraph{id: typ, byID: map[string]*uiNode{}, links: map[string]*uiLink{}, isGroup: true}
	rawNodes, _ := m["nodes"].([]any)
	for i, rn := range rawNodes {
		nm, ok := rn.(map[string]any)
		if !ok {
			return nil, bad(fmt.Sprintf("nodes[%d] is not an object", i))
		}
		nm = uiWithID(nm, i)
		n, err := parseUINode(nm, i)
		if err != nil {
			return nil, bad(err.Reason)
		}
		n.id = strconv.Itoa(n.index)
		if _, dup := g.byID[n.id]; dup {
			return nil, bad("duplicate node index " + n.id)
		}
		for j := range n.inputs {
			n.inputs[j].link = ""
		}
		g.nodes = append(g.nodes, n)
		g.byID[n.id] = n
	}
	sort.SliceStable(g.nodes, func(i, j int) bool { return g.nodes[i].index < g.nodes[j].index })

	type slotKey struct {
		node string
		slot int
	}
	linksTo := map[slotKey]*uiLink{}
	linksFrom := map[slotKey][]*uiLink{}
	hasFrom := map[string]bool{}
	hasTo := map[string]bool{}
	externalIn := map[slotKey]bool{}
	rawLinks, _ := m["links"].([]any)
	for i, rl := range rawLinks {
		arr, ok := rl.([]any)
		if !ok || len(arr) < 4 {
			continue
		}
		t, ok1 := uiInt(arr[2])
		ts, ok2 := uiInt(arr[3])
		if !ok1 || !ok2 {
			continue
		}
		target := strconv.Itoa(t)
		if arr[0] == nil {
			externalIn[slotKey{target, ts}] = true
			continue
		}
		o, ok1 := uiInt(arr[0])
		os, ok2 := uiInt(arr[1])
		if !ok1 || !ok2 || os < 0 {
			continue
		}
		l := &uiLink{id: "g" + strconv.Itoa(i), origin: strconv.Itoa(o), originSlot: os, target: target, targetSlot: ts}
		if len(arr) > 5 {
			l.typ = uiTypeString(arr[5])
		}
		g.links[l.id] = l
		linksTo[slotKey{target, ts}] = l
		linksFrom[slotKey{l.origin, os}] = append(linksFrom[slotKey{l.origin, os}], l)
		hasFrom[l.origin] = true
		hasTo[target] = true
	}
	externalFrom := map[slotKey]bool{}
	if ext, ok := m["external"].([]any); ok {
		for _, e := range ext {
			arr, _ := e.([]any)
			if len(arr) < 2 {
				continue
			}
			// Only numeric node indexes count: some frontends saved the whole node
			// object here, which the frontend itself never matches.
			o, ok1 := uiInt(arr[0])
			s, ok2 := uiInt(arr[1])
			if ok1 && ok2 {
				externalFrom[slotKey{strconv.Itoa(o), s}] = true
			}
		}
	}
	config, _ := m["config"].(map[string]any)
	slotConfig := func(node, kind, key string) map[string]any {
		nc, _ := config[node].(map[string]any)
		kc, _ := nc[kind].(map[string]any)
		sc, _ := kc[key].(map[string]any)
		return sc
	}
	hidden := func(cfg map[string]any) bool {
		v, set := uiTruthy(cfg["visible"])
		return set && !v
	}

	seenInputs := map[string]int{}
	inputName := func(n *uiNode, name, label string) string {
		if cfg := slotConfig(n.id, "input", name); cfg != nil {
			if s, ok := cfg["name"].(string); ok && s != "" {
				name = s
			}
		} else if label != "" {
			name = label
		}
		if _, seen := seenInputs[name]; seen {
			prefix := n.typ
			if n.hasTitle {
				prefix = n.title
			}
			name = prefix + " " + name
		}
		seenInputs[name]++
		return name
	}
	linkN := 0
	addInput := func(n *uiNode, slot int, name, typ string) {
		k := len(g.inputs)
		id := "gi" + strconv.Itoa(linkN)
		linkN++
		g.links[id] = &uiLink{id: id, origin: uiSubgraphInputID, originSlot: k, target: n.id, targetSlot: slot, typ: typ}
		n.inputs[slot].link = id
		g.inputs = append(g.inputs, uiSlot{name: name, typ: typ})
	}
	addOutput := func(n *uiNode, slot int, typ string) {
		j := len(g.outputs)
		id := "go" + strconv.Itoa(linkN)
		linkN++
		g.links[id] = &uiLink{id: id, origin: n.id, originSlot: slot, target: uiSubgraphOutputID, targetSlot: j, typ: typ}
		g.outputs = append(g.outputs, uiSlot{typ: typ, linkIDs: []string{id}})
	}
	outputVisible := func(n *uiNode, slot int) bool {
		if cfg := slotConfig(n.id, "output", strconv.Itoa(slot)); cfg != nil {
			if v, set := uiTruthy(cfg["visible"]); set {
				return v
			}
		}
		internal := len(linksFrom[slotKey{n.id, slot}]) > 0 && !externalFrom[slotKey{n.id, slot}]
		return !internal
	}

	for _, n := range g.nodes {
		// Restore internal links on the inner inputs.
		for j := range n.inputs {
			if l := linksTo[slotKey{n.id, j}]; l != nil {
				n.inputs[j].link = l.id
			}
		}
		switch {
		case n.typ == "Reroute":
			if hasTo[n.id] && hasFrom[n.id] && !externalFrom[slotKey{n.id, 0}] {
				continue // used inside the group only
			}
			if len(n.inputs) == 0 {
				n.inputs = []uiInput{{typ: "*"}}
			}
			rerouteType := "*"
			for _, l := range linksFrom[slotKey{n.id, 0}] {
				if t := g.byID[l.target]; t != nil && l.targetSlot >= 0 && l.targetSlot < len(t.inputs) {
					rerouteType = t.inputs[l.targetSlot].typ
					break
				}
			}
			if rerouteType == "*" && n.inputs[0].typ != "" {
				rerouteType = n.inputs[0].typ
			}
			if linksTo[slotKey{n.id, 0}] == nil {
				addInput(n, 0, inputName(n, rerouteType, ""), rerouteType)
			}
			if outputVisible(n, 0) {
				addOutput(n, 0, rerouteType)
			}
		case n.typ == "PrimitiveNode":
			var w uiGroupWidget
			for _, l := range linksFrom[slotKey{n.id, 0}] {
				t := g.byID[l.target]
				if t == nil || l.targetSlot < 0 || l.targetSlot >= len(t.inputs) || t.inputs[l.targetSlot].widget == "" {
					continue
				}
				ref := uiWidgetRef{node: t.id, widget: t.inputs[l.targetSlot].widget}
				if len(w.targets) == 0 {
					if ni := c.info[t.typ]; ni != nil {
						if s, ok := c.classSpecs(ni).byName[ref.widget]; ok {
							w.extras = uiWidgetExtras(s)
						}
					}
				}
				w.targets = append(w.targets, ref)
			}
			if len(w.targets) > 0 {
				g.groupWidgets = append(g.groupWidgets, w)
			}
		default:
			ni := c.info[n.typ]
			if ni == nil {
				continue // unknown or virtual inner node: the frontend skips it
			}
			// Widgets: those without an input socket first, in input order, then the
			// ones converted to inputs, in socket order (GroupNodeConfig).
			// A widget the class gained after the group was saved (past the end of
			// the inner node's own widgets_values) has no value on the instance
			// either: it keeps its default.
			var plain, converted []uiGroupWidget
			var convertedSlot []int
			pos := 0
			for _, s := range c.classSpecs(ni).ordered {
				if !uiIsWidget(s) {
					continue
				}
				if n.wv != nil && pos >= len(n.wv) {
					break
				}
				pos += 1 + uiWidgetExtras(s)
				slot := -1
				for j, in := range n.inputs {
					if in.widget == s.Name {
						slot = j
						break
					}
				}
				if slot >= 0 && linksTo[slotKey{n.id, slot}] != nil {
					continue // fed inside the group
				}
				if hidden(slotConfig(n.id, "input", s.Name)) {
					continue // not shown on the instance: the inner value stays
				}
				w := uiGroupWidget{targets: []uiWidgetRef{{node: n.id, widget: s.Name}}, extras: uiWidgetExtras(s)}
				if slot < 0 {
					plain = append(plain, w)
				} else {
					converted = append(converted, w)
					convertedSlot = append(convertedSlot, slot)
				}
			}
			sort.SliceStable(converted, func(i, j int) bool { return convertedSlot[i] < convertedSlot[j] })
			g.groupWidgets = append(g.groupWidgets, plain...)
			g.groupWidgets = append(g.groupWidgets, converted...)
			// Inputs: sockets not linked inside the group; widget sockets only when
			// linked from outside.
			for j, in := range n.inputs {
				if linksTo[slotKey{n.id, j}] != nil {
					continue
				}
				if in.widget != "" && !externalIn[slotKey{n.id, j}] {
					continue
				}
				if hidden(slotConfig(n.id, "input", in.name)) {
					continue
				}
				addInput(n, j, inputName(n, in.name, in.label), in.typ)
			}
			for j := range ni.Output {
				if outputVisible(n, j) {
					addOutput(n, j, uiTypeString(ni.Output[j]))
				}
			}
		}
	}
	return g, nil
}

// uiWithID gives a group node definition's node an id (they have only "index").
func uiWithID(m map[string]any, pos int) map[string]any {
	if _, ok := m["id"]; ok {
		return m
	}
	cp := make(map[string]any, len(m)+1)
	for k, v := range m {
		cp[k] = v
	}
	if idx, ok := m["index"]; ok {
		cp["id"] = idx
	} else {
		cp["id"] = json.Number(strconv.Itoa(pos))
	}
	return cp
}

// --- dynamic prompts --------------------------------------------------------------

var uiCommentRE = regexp.MustCompile(`/\*[\s\S]*?\*/|//[^\n\r\x{2028}\x{2029}]*`)
var uiEscapedRE = regexp.MustCompile(`\\([{}|])`)

// uiDynamicPrompt mirrors the frontend's processDynamicPrompt: comments are removed,
// each {a|b|c} group (nestable, \-escapes kept literal) becomes one of its choices.
func uiDynamicPrompt(s string, r *rand.Rand) string {
	return uiEscapedRE.ReplaceAllString(uiDynamicExpand([]rune(uiCommentRE.ReplaceAllString(s, "")), r, 0), "$1")
}

func uiDynamicExpand(in []rune, r *rand.Rand, depth int) string {
	var out strings.Builder
	i := 0
	escape := func(b *strings.Builder) {
		b.WriteRune('\\')
		if i < len(in) {
			b.WriteRune(in[i])
			i++
		}
	}
	for i < len(in) {
		ch := in[i]
		i++
		switch ch {
		case '\\':
			escape(&out)
		case '{':
			var options []string
			var choice strings.Builder
			level := 0
		block:
			for i < len(in) {
				ch := in[i]
				i++
				switch ch {
				case '\\':
					escape(&choice)
					continue
				case '{':
					level++
				case '}':
					if level == 0 {
						break block
					}
					level--
				case '|':
					if level == 0 {
						options = append(options, choice.String())
						choice.Reset()
						continue
					}
				}
				choice.WriteRune(ch)
			}
			options = append(options, choice.String())
			var pick int
			if r != nil {
				pick = r.IntN(len(options))
			} else {
				pick = rand.IntN(len(options))
			}
			if depth > 64 {
				out.WriteString(options[pick])
			} else {
				out.WriteString(uiDynamicExpand([]rune(options[pick]), r, depth+1))
			}
		default:
			out.WriteRune(ch)
		}
	}
	return out.String()
}
