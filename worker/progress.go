package worker

import (
	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/job"
)

// progressTracker turns a prompt's events into a job.Progress: the fraction is the
// share of nodes to execute that are done, plus the current node's sampler steps.
type progressTracker struct {
	classes map[string]string // node id → class
	total   int               // nodes that will execute (prompt nodes minus cached ones)
	done    map[string]bool
	node    string
	step    int
	steps   int
}

func newProgressTracker(wf comfy.Workflow) *progressTracker {
	t := &progressTracker{classes: map[string]string{}, done: map[string]bool{}, total: len(wf)}
	for id, n := range wf {
		t.classes[id] = n.ClassType
	}
	return t
}

// apply folds one decoded event in and reports whether the progress changed.
func (t *progressTracker) apply(v any) bool {
	switch e := v.(type) {
	case *comfy.ExecutionCached:
		if n := len(t.classes) - len(e.Nodes); len(t.classes) > 0 && n >= 0 {
			t.total = n
		}
		return true
	case *comfy.Executing:
		if e.Node == nil {
			return false
		}
		if t.node != "" && t.node != *e.Node {
			t.done[t.node] = true
		}
		t.node, t.step, t.steps = *e.Node, 0, 0
		return true
	case *comfy.Progress:
		t.step, t.steps = int(e.Value), int(e.Max)
		return true
	case *comfy.Executed:
		t.done[e.Node] = true
		return true
	case *comfy.ProgressState:
		changed := false
		for id, ns := range e.Nodes {
			if ns.State == "finished" && !t.done[id] {
				t.done[id] = true
				changed = true
			}
		}
		return changed
	}
	return false
}

func (t *progressTracker) snapshot() job.Progress {
	total := max(t.total, len(t.done))
	p := job.Progress{Node: t.node, NodeClass: t.classes[t.node], Step: t.step, Steps: t.steps,
		NodesDone: len(t.done), NodesTotal: total}
	if total > 0 {
		f := float64(len(t.done))
		if t.steps > 0 && !t.done[t.node] {
			f += float64(t.step) / float64(t.steps)
		}
		p.Fraction = min(f/float64(total), 0.99)
	}
	return p
}
