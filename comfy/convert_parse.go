package comfy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
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
		m, isObj := raw.(map[string]any)
		if !isObj {
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
