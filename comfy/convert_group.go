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
