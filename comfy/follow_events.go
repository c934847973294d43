package comfy

// streamEntry builds a prompt's history entry from its WebSocket events, for Follow
// with FollowOptions.FromEvents: a prompt whose every event reached the socket needs
// no /history read after it succeeds.
//
// ComfyUI sends a prompt's messages to the socket of the client id that queued it, in
// order: execution_start, execution_cached, per output node an executed with its UI
// output (a cached node's too, from the UI cache), then execution_success, and only
// then writes the history entry, whose outputs are the same UI outputs by node
// (execution.py). Seen without a gap, from execution_start to execution_success, the
// events hold everything the entry would; any doubt (a reconnect, a dropped event, an
// executed without a prompt id) leaves the entry to /history.
type streamEntry struct {
	id       string
	gap      bool
	started  bool
	messages []StatusMessage
	outputs  map[string]NodeOutput
}

func newStreamEntry(id string) *streamEntry {
	return &streamEntry{id: id, outputs: map[string]NodeOutput{}}
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
		}
	case EventExecuted:
		v, err := ev.Decode()
		x, ok := v.(*Executed)
		switch {
		case err != nil || !ok || x.PromptID == "":
			e.gap = true // cannot tell whose output it is
		case x.PromptID == e.id && x.Output != nil:
			e.outputs[x.Node] = x.Output
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
// incomplete: the start was not seen, or a gap or a drop (lossy) happened.
func (e *streamEntry) entry(lossy bool) *HistoryEntry {
	if e.gap || !e.started || lossy {
		return nil
	}
	return &HistoryEntry{
		PromptID: e.id,
		Prompt:   QueueItem{PromptID: e.id},
		Outputs:  e.outputs,
		Status:   HistoryStatus{StatusStr: "success", Completed: true, Messages: e.messages},
	}
}
