package comfy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
)

// QueueItem is ComfyUI's queue tuple [number, prompt_id, prompt, extra_data,
// outputs_to_execute], as in GET /queue and a history entry's "prompt". Newer servers
// add a sixth element (secret extra data); it is ignored.
type QueueItem struct {
	// Number is the queue priority: an integer, or a float when the client chose it.
	Number    json.Number
	PromptID  string
	Prompt    Workflow
	ExtraData map[string]any
	// OutputsToExecute are the output node ids the prompt runs.
	OutputsToExecute []string
}

// UnmarshalJSON decodes the tuple. It is lenient: an element of an unexpected shape is
// left zero rather than making the whole queue or history unreadable.
func (q *QueueItem) UnmarshalJSON(b []byte) error {
	return q.decode(b, true)
}

// queueItemHead is a QueueItem decoded without its prompt and extra data.
type queueItemHead QueueItem

func (q *queueItemHead) UnmarshalJSON(b []byte) error {
	return (*QueueItem)(q).decode(b, false)
}

// decode reads the tuple; without withPrompt it skips the prompt and the extra data,
// the two elements a workflow's size makes long to decode.
func (q *QueueItem) decode(b []byte, withPrompt bool) error {
	*q = QueueItem{}
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil {
		return errors.New("comfy: queue item is not a JSON array")
	}
	if len(parts) > 0 {
		var n json.Number
		if decodeNumbers(parts[0], &n) == nil {
			q.Number = n
		}
	}
	if len(parts) > 1 {
		_ = json.Unmarshal(parts[1], &q.PromptID)
	}
	if len(parts) > 2 && withPrompt {
		var wf Workflow
		if decodeNumbers(parts[2], &wf) == nil {
			for id, n := range wf {
				if n == nil {
					delete(wf, id)
				}
			}
			q.Prompt = wf
		}
	}
	if len(parts) > 3 && withPrompt {
		_ = decodeNumbers(parts[3], &q.ExtraData)
	}
	if len(parts) > 4 {
		var outs []any
		if decodeNumbers(parts[4], &outs) == nil {
			for _, o := range outs {
				switch x := o.(type) {
				case string:
					q.OutputsToExecute = append(q.OutputsToExecute, x)
				case json.Number:
					q.OutputsToExecute = append(q.OutputsToExecute, x.String())
				}
			}
		}
	}
	return nil
}

// MarshalJSON encodes the five-element tuple.
func (q QueueItem) MarshalJSON() ([]byte, error) {
	num := any(q.Number)
	if q.Number == "" {
		num = 0
	}
	prompt := q.Prompt
	if prompt == nil {
		prompt = Workflow{}
	}
	extra := q.ExtraData
	if extra == nil {
		extra = map[string]any{}
	}
	outs := q.OutputsToExecute
	if outs == nil {
		outs = []string{}
	}
	return json.Marshal([]any{num, q.PromptID, prompt, extra, outs})
}

// QueueState is GET /queue.
type QueueState struct {
	// Running holds the prompt being executed (at most one in ComfyUI).
	Running []QueueItem `json:"queue_running"`
	// Pending holds the waiting prompts, sorted by number (the order they will run).
	Pending []QueueItem `json:"queue_pending"`
}

// Queue returns the running and pending prompts (GET /queue). Pending is sorted by
// number: ComfyUI sends its heap array unsorted.
func (c *Client) Queue(ctx context.Context) (*QueueState, error) {
	var q QueueState
	if err := c.doJSON(ctx, http.MethodGet, "/queue", nil, nil, &q, nil); err != nil {
		return nil, err
	}
	sort.SliceStable(q.Pending, func(i, j int) bool {
		return numberLess(q.Pending[i].Number, q.Pending[j].Number)
	})
	return &q, nil
}

func numberLess(a, b json.Number) bool {
	fa, erra := strconv.ParseFloat(a.String(), 64)
	fb, errb := strconv.ParseFloat(b.String(), 64)
	if erra != nil || errb != nil {
		return erra == nil && errb != nil
	}
	return fa < fb
}

// Contains reports whether the prompt is running or pending, and which.
func (q *QueueState) Contains(promptID string) (running, pending bool) {
	for _, it := range q.Running {
		if it.PromptID == promptID {
			return true, false
		}
	}
	for _, it := range q.Pending {
		if it.PromptID == promptID {
			return false, true
		}
	}
	return false, false
}

// DeleteFromQueue removes pending prompts (POST /queue {"delete": ids}). A running prompt
// is not affected: interrupt it. Unknown ids are ignored; no ids is a no-op.
func (c *Client) DeleteFromQueue(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	return c.doJSON(ctx, http.MethodPost, "/queue", nil, map[string]any{"delete": ids}, nil, nil)
}

// ClearQueue removes every pending prompt (POST /queue {"clear": true}).
func (c *Client) ClearQueue(ctx context.Context) error {
	return c.doJSON(ctx, http.MethodPost, "/queue", nil, map[string]any{"clear": true}, nil, nil)
}

// Interrupt stops the prompt if it is the one running (POST /interrupt {"prompt_id"});
// otherwise nothing happens.
//
// An empty promptID interrupts whatever is running, whoever queued it: the interrupt is
// a process-wide flag, and between a check and the request another prompt may have
// started. Pass the prompt id unless you mean exactly that.
func (c *Client) Interrupt(ctx context.Context, promptID string) error {
	body := map[string]any{}
	if promptID != "" {
		body["prompt_id"] = promptID
	}
	return c.doJSON(ctx, http.MethodPost, "/interrupt", nil, body, nil, nil)
}

// Free asks the node to unload models and/or free memory after the current prompt
// (POST /free). free_memory also drops every execution cache.
func (c *Client) Free(ctx context.Context, unloadModels, freeMemory bool) error {
	return c.doJSON(ctx, http.MethodPost, "/free", nil,
		map[string]any{"unload_models": unloadModels, "free_memory": freeMemory}, nil, nil)
}
