package comfy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

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
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, groupDefError(typ, "not an object")
	}
	b := &groupDefBuilder{
		c:       c,
		g:       &uiGraph{id: typ, byID: map[string]*uiNode{}, links: map[string]*uiLink{}, isGroup: true},
		linksTo: map[groupSlot]*uiLink{}, linksFrom: map[groupSlot][]*uiLink{},
		hasFrom: map[string]bool{}, hasTo: map[string]bool{},
		externalIn: map[groupSlot]bool{}, externalFrom: map[groupSlot]bool{},
		seenInputs: map[string]int{},
	}
	b.config, _ = m["config"].(map[string]any)
	if err := b.parseNodes(m["nodes"]); err != nil {
		return nil, err
	}
	b.parseLinks(m["links"])
	b.parseExternal(m["external"])
	for _, n := range b.g.nodes {
		// Restore internal links on the inner inputs.
		for j := range n.inputs {
			if l := b.linksTo[groupSlot{n.id, j}]; l != nil {
				n.inputs[j].link = l.id
			}
		}
		switch n.typ {
		case "Reroute":
			b.addReroute(n)
		case "PrimitiveNode":
			b.addPrimitive(n)
		default:
			ni := c.info[n.typ]
			if ni == nil {
				continue // unknown or virtual inner node: the frontend skips it
			}
			b.addWidgets(n, ni)
			b.addSockets(n, ni)
		}
	}
	return b.g, nil
}

func groupDefError(typ, reason string) *ConvertError {
	return &ConvertError{NodeType: typ, Err: ErrNotUIWorkflow, Reason: "group node definition: " + reason}
}

// groupSlot is one input or output slot of a group node definition's inner node.
type groupSlot struct {
	node string
	slot int
}

// groupDefBuilder holds what buildGroupDef learns about a group node definition while
// it builds the graph.
type groupDefBuilder struct {
	c *uiConverter
	g *uiGraph
	// linksTo and linksFrom index the links inside the group by target and origin.
	linksTo   map[groupSlot]*uiLink
	linksFrom map[groupSlot][]*uiLink
	// hasFrom and hasTo are the nodes with a link inside the group from or to them.
	hasFrom, hasTo map[string]bool
	// externalIn are the inner inputs linked from outside the group (a link whose
	// origin is null); externalFrom the inner outputs linked to outside ("external").
	externalIn, externalFrom map[groupSlot]bool
	config                   map[string]any
	seenInputs               map[string]int // instance input names given so far
	linkN                    int            // links to and from the definition slots so far
}

// parseNodes reads the definition's inner nodes, ids being their index.
func (b *groupDefBuilder) parseNodes(raw any) *ConvertError {
	g := b.g
	rawNodes, _ := raw.([]any)
	for i, rn := range rawNodes {
		nm, ok := rn.(map[string]any)
		if !ok {
			return groupDefError(g.id, fmt.Sprintf("nodes[%d] is not an object", i))
		}
		nm = uiWithID(nm, i)
		n, err := parseUINode(nm, i)
		if err != nil {
			return groupDefError(g.id, err.Reason)
		}
		n.id = strconv.Itoa(n.index)
		if _, dup := g.byID[n.id]; dup {
			return groupDefError(g.id, "duplicate node index "+n.id)
		}
		for j := range n.inputs {
			n.inputs[j].link = ""
		}
		g.nodes = append(g.nodes, n)
		g.byID[n.id] = n
	}
	sort.SliceStable(g.nodes, func(i, j int) bool { return g.nodes[i].index < g.nodes[j].index })
	return nil
}

// parseLinks reads the definition's links: [origin, origin slot, target, target slot,
// …, type], origin null for a link from outside the group.
func (b *groupDefBuilder) parseLinks(raw any) {
	rawLinks, _ := raw.([]any)
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
			b.externalIn[groupSlot{target, ts}] = true
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
		b.g.links[l.id] = l
		b.linksTo[groupSlot{target, ts}] = l
		b.linksFrom[groupSlot{l.origin, os}] = append(b.linksFrom[groupSlot{l.origin, os}], l)
		b.hasFrom[l.origin] = true
		b.hasTo[target] = true
	}
}

// parseExternal reads the definition's "external" list: [node, output slot, type] of
// the inner outputs linked to outside the group.
func (b *groupDefBuilder) parseExternal(raw any) {
	ext, _ := raw.([]any)
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
			b.externalFrom[groupSlot{strconv.Itoa(o), s}] = true
		}
	}
}

// slotConfig returns config[node][kind][key]: how the group shows an inner slot.
func (b *groupDefBuilder) slotConfig(node, kind, key string) map[string]any {
	nc, _ := b.config[node].(map[string]any)
	kc, _ := nc[kind].(map[string]any)
	sc, _ := kc[key].(map[string]any)
	return sc
}

func groupSlotHidden(cfg map[string]any) bool {
	v, set := uiTruthy(cfg["visible"])
	return set && !v
}

// inputName names an instance input: the config's name, else the slot's label, else
// its name, prefixed with the node's title or type when another input has it already.
func (b *groupDefBuilder) inputName(n *uiNode, name, label string) string {
	if cfg := b.slotConfig(n.id, "input", name); cfg != nil {
		if s, ok := cfg["name"].(string); ok && s != "" {
			name = s
		}
	} else if label != "" {
		name = label
	}
	if _, seen := b.seenInputs[name]; seen {
		prefix := n.typ
		if n.hasTitle {
			prefix = n.title
		}
		name = prefix + " " + name
	}
	b.seenInputs[name]++
	return name
}

// addInput makes an inner input slot an input of the definition.
func (b *groupDefBuilder) addInput(n *uiNode, slot int, name, typ string) {
	g := b.g
	k := len(g.inputs)
	id := "gi" + strconv.Itoa(b.linkN)
	b.linkN++
	g.links[id] = &uiLink{id: id, origin: uiSubgraphInputID, originSlot: k, target: n.id, targetSlot: slot, typ: typ}
	n.inputs[slot].link = id
	g.inputs = append(g.inputs, uiSlot{name: name, typ: typ})
}

// addOutput makes an inner output slot an output of the definition.
func (b *groupDefBuilder) addOutput(n *uiNode, slot int, typ string) {
	g := b.g
	j := len(g.outputs)
	id := "go" + strconv.Itoa(b.linkN)
	b.linkN++
	g.links[id] = &uiLink{id: id, origin: n.id, originSlot: slot, target: uiSubgraphOutputID, targetSlot: j, typ: typ}
	g.outputs = append(g.outputs, uiSlot{typ: typ, linkIDs: []string{id}})
}

// outputVisible reports whether an inner output is an output of the instance: as the
// config says, else when nothing inside the group uses it or something outside does.
func (b *groupDefBuilder) outputVisible(n *uiNode, slot int) bool {
	if cfg := b.slotConfig(n.id, "output", strconv.Itoa(slot)); cfg != nil {
		if v, set := uiTruthy(cfg["visible"]); set {
			return v
		}
	}
	internal := len(b.linksFrom[groupSlot{n.id, slot}]) > 0 && !b.externalFrom[groupSlot{n.id, slot}]
	return !internal
}

// addReroute gives an inner Reroute that the outside reaches an input and an output,
// typed by what it feeds inside.
func (b *groupDefBuilder) addReroute(n *uiNode) {
	if b.hasTo[n.id] && b.hasFrom[n.id] && !b.externalFrom[groupSlot{n.id, 0}] {
		return // used inside the group only
	}
	if len(n.inputs) == 0 {
		n.inputs = []uiInput{{typ: "*"}}
	}
	rerouteType := "*"
	for _, l := range b.linksFrom[groupSlot{n.id, 0}] {
		if t := b.g.byID[l.target]; t != nil && l.targetSlot >= 0 && l.targetSlot < len(t.inputs) {
			rerouteType = t.inputs[l.targetSlot].typ
			break
		}
	}
	if rerouteType == "*" && n.inputs[0].typ != "" {
		rerouteType = n.inputs[0].typ
	}
	if b.linksTo[groupSlot{n.id, 0}] == nil {
		b.addInput(n, 0, b.inputName(n, rerouteType, ""), rerouteType)
	}
	if b.outputVisible(n, 0) {
		b.addOutput(n, 0, rerouteType)
	}
}

// addPrimitive makes an inner PrimitiveNode one widget of the instance that sets every
// inner widget it feeds.
func (b *groupDefBuilder) addPrimitive(n *uiNode) {
	var w uiGroupWidget
	for _, l := range b.linksFrom[groupSlot{n.id, 0}] {
		t := b.g.byID[l.target]
		if t == nil || l.targetSlot < 0 || l.targetSlot >= len(t.inputs) || t.inputs[l.targetSlot].widget == "" {
			continue
		}
		ref := uiWidgetRef{node: t.id, widget: t.inputs[l.targetSlot].widget}
		if len(w.targets) == 0 {
			if ni := b.c.info[t.typ]; ni != nil {
				if s, ok := b.c.classSpecs(ni).byName[ref.widget]; ok {
					w.extras = uiWidgetExtras(s)
				}
			}
		}
		w.targets = append(w.targets, ref)
	}
	if len(w.targets) > 0 {
		b.g.groupWidgets = append(b.g.groupWidgets, w)
	}
}

// addWidgets makes an inner node's widgets that nothing inside the group feeds widgets
// of the instance: those without an input socket first, in input order, then the ones
// converted to inputs, in socket order (GroupNodeConfig).
func (b *groupDefBuilder) addWidgets(n *uiNode, ni *NodeInfo) {
	// A widget the class gained after the group was saved (past the end of the inner
	// node's own widgets_values) has no value on the instance either: it keeps its
	// default.
	var plain, converted []uiGroupWidget
	var convertedSlot []int
	pos := 0
	for _, s := range b.c.classSpecs(ni).ordered {
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
		if slot >= 0 && b.linksTo[groupSlot{n.id, slot}] != nil {
			continue // fed inside the group
		}
		if groupSlotHidden(b.slotConfig(n.id, "input", s.Name)) {
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
	b.g.groupWidgets = append(b.g.groupWidgets, plain...)
	b.g.groupWidgets = append(b.g.groupWidgets, converted...)
}

// addSockets makes an inner node's sockets not linked inside the group inputs and
// outputs of the instance; widget sockets only when linked from outside.
func (b *groupDefBuilder) addSockets(n *uiNode, ni *NodeInfo) {
	for j, in := range n.inputs {
		if b.linksTo[groupSlot{n.id, j}] != nil {
			continue
		}
		if in.widget != "" && !b.externalIn[groupSlot{n.id, j}] {
			continue
		}
		if groupSlotHidden(b.slotConfig(n.id, "input", in.name)) {
			continue
		}
		b.addInput(n, j, b.inputName(n, in.name, in.label), in.typ)
	}
	for j := range ni.Output {
		if b.outputVisible(n, j) {
			b.addOutput(n, j, uiTypeString(ni.Output[j]))
		}
	}
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
