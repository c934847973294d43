package comfysim

// execList is comfy_execution/graph.py's ExecutionList: a topological sort
// that always runs a ready node, preferring output nodes and the nodes that
// unblock them (ux_friendly_pick_node). Ready nodes are considered in the
// order they were added, and add_node walks inputs depth first with a stack,
// so the execution order is the one ComfyUI 0.3.64 produces for the same
// prompt (with output nodes added in prompt key order).
type execList struct {
	prompt     *object
	isCached   func(id string) bool
	isOutput   func(id string) bool
	pending    []string
	inPending  map[string]bool
	blockCount map[string]int
	blocking   map[string][]string
}

func newExecList(prompt *object, isCached, isOutput func(string) bool) *execList {
	return &execList{
		prompt:     prompt,
		isCached:   isCached,
		isOutput:   isOutput,
		inPending:  map[string]bool{},
		blockCount: map[string]int{},
		blocking:   map[string][]string{},
	}
}

func (l *execList) empty() bool { return len(l.pending) == 0 }

func (l *execList) inputsOf(id string) *object {
	v, _ := l.prompt.Get(id)
	n, _ := v.(*object)
	return n.getObject("inputs")
}

type link struct{ from, to string }

// addNode is TopologicalSort.add_node.
func (l *execList) addNode(id string) {
	stack := []string{id}
	var links []link
	for len(stack) > 0 {
		uid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if l.inPending[uid] {
			continue
		}
		l.inPending[uid] = true
		l.pending = append(l.pending, uid)
		l.blockCount[uid] = 0
		l.blocking[uid] = nil
		inputs := l.inputsOf(uid)
		for _, name := range inputs.Keys() {
			v, _ := inputs.Get(name)
			from, _, ok := isLink(v)
			if !ok {
				continue
			}
			if !l.isCached(from) {
				stack = append(stack, from)
			}
			links = append(links, link{from, uid})
		}
	}
	for _, lk := range links {
		l.addStrongLink(lk.from, lk.to)
	}
}

// addStrongLink is TopologicalSort.add_strong_link.
func (l *execList) addStrongLink(from, to string) {
	if l.isCached(from) {
		return
	}
	l.addNode(from)
	for _, b := range l.blocking[from] {
		if b == to {
			return
		}
	}
	l.blocking[from] = append(l.blocking[from], to)
	l.blockCount[to]++
}

// stage picks the next node; ok is false when every pending node waits on
// another (a dependency cycle).
func (l *execList) stage() (string, bool) {
	var ready []string
	for _, id := range l.pending {
		if l.blockCount[id] == 0 {
			ready = append(ready, id)
		}
	}
	if len(ready) == 0 {
		return "", false
	}
	for _, id := range ready {
		if l.isOutput(id) {
			return id, true
		}
	}
	for _, id := range ready {
		for _, b := range l.blocking[id] {
			if l.isOutput(b) {
				return id, true
			}
		}
	}
	for _, id := range ready {
		for _, b := range l.blocking[id] {
			for _, b1 := range l.blocking[b] {
				if l.isOutput(b1) {
					return id, true
				}
			}
		}
	}
	return ready[0], true
}

// cycleNode names the node blamed for a cycle: the first pending one.
func (l *execList) cycleNode() string {
	if len(l.pending) == 0 {
		return ""
	}
	return l.pending[0]
}

// complete is pop_node for the staged node.
func (l *execList) complete(id string) {
	delete(l.inPending, id)
	for i, p := range l.pending {
		if p == id {
			l.pending = append(l.pending[:i:i], l.pending[i+1:]...)
			break
		}
	}
	for _, b := range l.blocking[id] {
		l.blockCount[b]--
	}
	delete(l.blocking, id)
}
