package comfy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

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
	if g, found := c.groups[name]; found {
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
