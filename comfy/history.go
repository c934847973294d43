package comfy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// HistoryEntry is one prompt in GET /history (§2): the queue item it ran as, the UI
// outputs of its nodes and its final status.
type HistoryEntry struct {
	PromptID string                `json:"-"`
	Prompt   QueueItem             `json:"prompt"`
	Outputs  map[string]NodeOutput `json:"outputs"`
	Status   HistoryStatus         `json:"status"`
	// Meta maps output node ids to {node_id, display_node, parent_node, real_node_id}.
	Meta map[string]json.RawMessage `json:"meta,omitempty"`
}

// HistoryStatus is the status of a finished prompt.
type HistoryStatus struct {
	// StatusStr is "success" or "error" (an error or an interrupt).
	StatusStr string `json:"status_str"`
	Completed bool   `json:"completed"`
	// Messages are the timestamped execution events, decoded from [name, data] pairs:
	// execution_start, execution_cached, then execution_success, execution_error or
	// execution_interrupted.
	Messages []StatusMessage `json:"messages"`
}

// StatusMessage is one [name, data] pair of HistoryStatus.Messages.
type StatusMessage struct {
	Type string
	Data json.RawMessage
}

// UnmarshalJSON decodes the [name, data] pair.
func (m *StatusMessage) UnmarshalJSON(b []byte) error {
	// Lenient: a malformed pair from a custom node must not make the whole history
	// entry unreadable. It is kept with an empty Type and the raw JSON as Data.
	*m = StatusMessage{}
	var pair []json.RawMessage
	if json.Unmarshal(b, &pair) != nil || len(pair) == 0 || json.Unmarshal(pair[0], &m.Type) != nil {
		m.Type = ""
		m.Data = append(json.RawMessage(nil), b...)
		return nil
	}
	if len(pair) > 1 {
		m.Data = pair[1]
	}
	return nil
}

// MarshalJSON encodes the [name, data] pair.
func (m StatusMessage) MarshalJSON() ([]byte, error) {
	data := m.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return json.Marshal([]any{m.Type, data})
}

// Event returns the message as an Event, so it can be decoded with Event.Decode.
func (m StatusMessage) Event() Event {
	ev := Event{Type: m.Type, Data: m.Data}
	ev.PromptID = promptIDOf(m.Data)
	return ev
}

// Timestamp returns the message's timestamp (milliseconds since the epoch in ComfyUI),
// or the zero time.
func (m StatusMessage) Timestamp() time.Time {
	var v struct {
		Timestamp json.Number `json:"timestamp"`
	}
	if decodeNumbers(m.Data, &v) != nil || v.Timestamp == "" {
		return time.Time{}
	}
	f, err := strconv.ParseFloat(v.Timestamp.String(), 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(int64(f))
}

func (h *HistoryEntry) message(typ string) (StatusMessage, bool) {
	for i := len(h.Status.Messages) - 1; i >= 0; i-- {
		if h.Status.Messages[i].Type == typ {
			return h.Status.Messages[i], true
		}
	}
	return StatusMessage{}, false
}

// Interrupted reports whether the prompt was interrupted.
func (h *HistoryEntry) Interrupted() bool {
	_, ok := h.message("execution_interrupted")
	return ok
}

// Failed reports whether the prompt ended in an error (an interrupt is not a failure;
// see Interrupted) and returns the error's details.
func (h *HistoryEntry) Failed() (*ExecutionError, bool) {
	if h.Interrupted() {
		return nil, false
	}
	if m, ok := h.message("execution_error"); ok {
		var e ExecutionError
		if decodeNumbers(m.Data, &e) != nil {
			e = ExecutionError{ExceptionMessage: "undecodable execution_error in history"}
		}
		if e.PromptID == "" {
			e.PromptID = h.PromptID
		}
		e.bound()
		return &e, true
	}
	if h.Status.StatusStr == "error" {
		return &ExecutionError{PromptID: h.PromptID, ExceptionMessage: "history reports status error without an execution_error message"}, true
	}
	return nil, false
}

// Succeeded reports whether the prompt finished without error or interrupt.
func (h *HistoryEntry) Succeeded() bool {
	if h.Interrupted() {
		return false
	}
	_, failed := h.Failed()
	return !failed
}

// Files returns every output file of every node, nodes in id order.
func (h *HistoryEntry) Files() []NodeFile {
	var out []NodeFile
	for _, id := range sortedKeys(h.Outputs) {
		for _, f := range h.Outputs[id].Files() {
			out = append(out, NodeFile{NodeID: id, OutputFile: f})
		}
	}
	return out
}

// NodeFile is an output file with the id of the node that produced it.
type NodeFile struct {
	NodeID string
	OutputFile
}

// History returns the history entry of a prompt (GET /history/{id}), or ErrNotFound
// when the node has none: the prompt is still queued or running, or unknown.
func (c *Client) History(ctx context.Context, promptID string) (*HistoryEntry, error) {
	return c.history(ctx, promptID, true)
}

// historyWithoutPrompt is a history entry whose queue item is decoded without its
// prompt and extra data (the outer Prompt field hides the entry's).
type historyWithoutPrompt struct {
	HistoryEntry
	Prompt queueItemHead `json:"prompt"`
}

// history reads one entry; without withPrompt, its Prompt has no Prompt or ExtraData.
func (c *Client) history(ctx context.Context, promptID string, withPrompt bool) (*HistoryEntry, error) {
	if promptID == "" {
		return nil, fmt.Errorf("comfy: History: empty prompt id")
	}
	path := "/history/" + url.PathEscape(promptID)
	var h *HistoryEntry
	if withPrompt {
		var m map[string]*HistoryEntry
		if err := c.doJSON(ctx, http.MethodGet, path, nil, nil, &m, nil); err != nil {
			return nil, err
		}
		h = m[promptID]
	} else {
		var m map[string]*historyWithoutPrompt
		if err := c.doJSON(ctx, http.MethodGet, path, nil, nil, &m, nil); err != nil {
			return nil, err
		}
		if e := m[promptID]; e != nil {
			h = &e.HistoryEntry
			h.Prompt = QueueItem(e.Prompt)
		}
	}
	if h == nil {
		return nil, fmt.Errorf("%w: no history for prompt %s", ErrNotFound, promptID)
	}
	h.PromptID = promptID
	return h, nil
}

// HistoryList returns history entries keyed by prompt id (GET /history). maxItems > 0
// asks for the newest maxItems entries; offset > 0 skips entries from the oldest end.
// Values <= 0 are not sent.
func (c *Client) HistoryList(ctx context.Context, maxItems, offset int) (map[string]*HistoryEntry, error) {
	q := url.Values{}
	if maxItems > 0 {
		q.Set("max_items", strconv.Itoa(maxItems))
	}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	var m map[string]*HistoryEntry
	if err := c.doJSON(ctx, http.MethodGet, "/history", q, nil, &m, nil); err != nil {
		return nil, err
	}
	for id, h := range m {
		if h == nil {
			delete(m, id)
			continue
		}
		h.PromptID = id
	}
	if m == nil {
		m = map[string]*HistoryEntry{}
	}
	return m, nil
}

// DeleteHistory removes history entries (POST /history {"delete": ids}). Unknown ids
// are ignored by ComfyUI; no ids is a no-op.
func (c *Client) DeleteHistory(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	return c.doJSON(ctx, http.MethodPost, "/history", nil, map[string]any{"delete": ids}, nil, nil)
}

// ClearHistory removes every history entry (POST /history {"clear": true}).
func (c *Client) ClearHistory(ctx context.Context) error {
	return c.doJSON(ctx, http.MethodPost, "/history", nil, map[string]any{"clear": true}, nil, nil)
}

// NodeOutput is the UI dict of one node, as in history outputs and executed events:
// output key ("images", "audio", "text", …) → JSON value. Unknown keys are kept.
type NodeOutput map[string]json.RawMessage

// OutputFile is one file listed in a NodeOutput.
type OutputFile struct {
	// Key is the output key the file was listed under: "images", "audio", "3d",
	// "gifs" (VideoHelperSuite), …
	Key string `json:"key"`
	FileRef
	// Animated is set when the node marked its images as animated ("animated": [true]),
	// as video and animated WEBP/PNG nodes do.
	Animated bool `json:"animated,omitempty"`
	// Format is the entry's "format" (VideoHelperSuite: "video/h264-mp4"), if any.
	Format string `json:"format,omitempty"`
}

// FileRef names a file on the node, as /view and LoadImage take it.
type FileRef struct {
	Filename  string `json:"filename"`
	Subfolder string `json:"subfolder"`
	// Type is "output", "input" or "temp".
	Type string `json:"type"`
}

// Files returns every list entry that has a "filename", under any key, keys in sorted
// order and entries in list order.
func (o NodeOutput) Files() []OutputFile {
	var animated []bool
	if raw, ok := o["animated"]; ok {
		_ = json.Unmarshal(raw, &animated)
	}
	var out []OutputFile
	for _, key := range sortedKeys(o) {
		raw := bytes.TrimSpace(o[key])
		if len(raw) == 0 || raw[0] != '[' {
			continue
		}
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			continue
		}
		for i, item := range items {
			item = bytes.TrimSpace(item)
			if len(item) > 0 && item[0] == '"' {
				// A 3D file given as a bare file name (Preview3D's "result", custom
				// nodes): an output file, as 0.38's jobs API normalises it
				// (comfy_execution/jobs.py normalize_output_item).
				// The name is relative to output/; unlike jobs.py, a directory part is
				// moved to Subfolder, because /view keeps only the filename's basename.
				var name string
				if json.Unmarshal(item, &name) == nil && has3DExtension(name) {
					sub, base := "", name
					if cut := strings.LastIndexAny(name, `/\`); cut >= 0 {
						sub, base = name[:cut], name[cut+1:]
					}
					out = append(out, OutputFile{Key: key, FileRef: FileRef{Filename: base, Subfolder: sub, Type: "output"}})
				}
				continue
			}
			if len(item) == 0 || item[0] != '{' {
				continue
			}
			var f struct {
				Filename  *string `json:"filename"`
				Subfolder any     `json:"subfolder"`
				Type      any     `json:"type"`
				Format    any     `json:"format"`
			}
			if json.Unmarshal(item, &f) != nil || f.Filename == nil || *f.Filename == "" {
				continue
			}
			of := OutputFile{Key: key, FileRef: FileRef{Filename: *f.Filename}}
			of.Subfolder, _ = f.Subfolder.(string)
			of.Type, _ = f.Type.(string)
			of.Format, _ = f.Format.(string)
			if key == "images" && len(animated) > 0 {
				if i < len(animated) {
					of.Animated = animated[i]
				} else {
					of.Animated = animated[0]
				}
			}
			out = append(out, of)
		}
	}
	return out
}

// threeDExtensions are comfy_execution/jobs.py's THREE_D_EXTENSIONS.
var threeDExtensions = []string{".obj", ".fbx", ".gltf", ".glb", ".usdz"}

func has3DExtension(name string) bool {
	l := strings.ToLower(name)
	for _, e := range threeDExtensions {
		if strings.HasSuffix(l, e) {
			return true
		}
	}
	return false
}

// Text returns the strings under the "text" key (PreviewAny and similar nodes).
func (o NodeOutput) Text() []string {
	raw, ok := o["text"]
	if !ok {
		return nil
	}
	var items []any
	if json.Unmarshal(raw, &items) != nil {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return []string{s}
		}
		return nil
	}
	var out []string
	for _, it := range items {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
