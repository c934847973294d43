package comfy

import "strconv"

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
