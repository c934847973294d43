package comfy

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
