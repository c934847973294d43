package comfy

import (
	"strconv"
	"strings"
)

// streamEntry builds a prompt's history entry from its WebSocket events, for Follow
// with FollowOptions.FromEvents: a prompt whose every event reached the socket needs
// no /history read after it succeeds.
//
// ComfyUI sends a prompt's messages to the socket of the client id that queued it, in
// order: execution_start, execution_cached, per output node an executed with its UI
// output (a cached output node's too, from its cache entry), then execution_success,
// and only then writes the history entry. On 0.38.1 the history's outputs are exactly
// the UI outputs it sent (execution.py builds them from what it emitted, a cached
// intermediate node with UI output included: asset_enrichment.emit_cached_output). On
// older versions (0.3.64) the history also lists the UI output of a cached node that
// is not an output node, which no executed announced: there a prompt with such a node
// (cached, and no executed of its own) leaves the entry to /history. Seen without a
// gap, from execution_start to execution_success, the events hold everything the entry
// would; any doubt (a reconnect, a dropped event, an executed without a prompt id)
// leaves the entry to /history.
type streamEntry struct {
	id string
	// allCachedUI: the node announces every cached UI output (0.38.1 and later).
	allCachedUI bool
	gap         bool
	started     bool
	messages    []StatusMessage
	outputs     map[string]NodeOutput
	cached      []string        // execution_cached's nodes
	executed    map[string]bool // nodes an executed named
}

func newStreamEntry(id, version string) *streamEntry {
	return &streamEntry{id: id, allCachedUI: versionAtLeast(version, 0, 38, 1),
		outputs: map[string]NodeOutput{}, executed: map[string]bool{}}
}

// versionAtLeast reports whether version ("0.38.1", "v0.3.64") is major.minor.patch
// or later; an unknown version is not. Hand-rolled rather than golang.org/x/mod/semver:
// ComfyUI's comfyui_version is no semver tag (no "v"; builds append suffixes such as
// "-rc1" to the release they are of), and this one comparison is all comfy needs.
func versionAtLeast(version string, major, minor, patch int) bool {
	var v [3]int
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	for i, p := range parts {
		digits := p
		if end := strings.IndexFunc(p, func(r rune) bool { return r < '0' || r > '9' }); end >= 0 {
			digits = p[:end]
		}
		n, err := strconv.Atoi(digits)
		if err != nil {
			return false
		}
		v[i] = n
	}
	want := [3]int{major, minor, patch}
	for i := range v {
		if v[i] != want[i] {
			return v[i] > want[i]
		}
	}
	return true
}

// note takes one event of the subscription and reports whether it ended the prompt
// successfully.
func (e *streamEntry) note(ev Event) (succeeded bool) {
	switch ev.Type {
	case EventDisconnected, EventReconnected:
		e.gap = true // messages may have been lost meanwhile
	case EventExecutionStart, EventExecutionCached:
		if ev.PromptID == e.id {
			e.started = e.started || ev.Type == EventExecutionStart
			e.messages = append(e.messages, StatusMessage{Type: ev.Type, Data: ev.Data})
			if ev.Type == EventExecutionCached {
				v, err := ev.Decode()
				c, ok := v.(*ExecutionCached)
				if err != nil || !ok {
					e.gap = true
					break
				}
				e.cached = append(e.cached, c.Nodes...)
			}
		}
	case EventExecuted:
		v, err := ev.Decode()
		x, ok := v.(*Executed)
		switch {
		case err != nil || !ok || x.PromptID == "":
			e.gap = true // cannot tell whose output it is
		case x.PromptID == e.id:
			e.executed[x.Node] = true
			if x.Output != nil {
				e.outputs[x.Node] = x.Output
			}
		}
	case EventExecutionSuccess:
		if ev.PromptID == e.id {
			e.messages = append(e.messages, StatusMessage{Type: ev.Type, Data: ev.Data})
			return true
		}
	}
	return false
}

// entry returns the history entry the events make, or nil when they may be
// incomplete: the start was not seen, a gap or a drop (lossy) happened, or (before
// 0.38.1) a cached node sent no executed.
func (e *streamEntry) entry(lossy bool) *HistoryEntry {
	if e.gap || !e.started || lossy {
		return nil
	}
	if !e.allCachedUI {
		for _, id := range e.cached {
			if !e.executed[id] { // a cached node the history may list with UI output
				return nil
			}
		}
	}
	return &HistoryEntry{
		PromptID: e.id,
		Prompt:   QueueItem{PromptID: e.id},
		Outputs:  e.outputs,
		Status:   HistoryStatus{StatusStr: "success", Completed: true, Messages: e.messages},
	}
}
