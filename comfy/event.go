package comfy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Event types. The JSON ones are ComfyUI's message names (§6); the binary ones and the
// synthetic ones are the client's.
const (
	EventStatus               = "status"
	EventExecutionStart       = "execution_start"
	EventExecutionCached      = "execution_cached"
	EventExecuting            = "executing"
	EventProgress             = "progress"
	EventProgressState        = "progress_state"
	EventExecuted             = "executed"
	EventExecutionSuccess     = "execution_success"
	EventExecutionError       = "execution_error"
	EventExecutionInterrupted = "execution_interrupted"
	EventFeatureFlags         = "feature_flags"

	// EventPreviewImage is a binary preview frame (type 1, or type 4 with metadata).
	EventPreviewImage = "comfyq.preview_image"
	// EventProgressText is a binary TEXT frame (type 3): progress text of a node.
	EventProgressText = "comfyq.progress_text"
	// EventBinary is a binary frame of an unknown type.
	EventBinary = "comfyq.binary"

	// EventReconnected is delivered to every subscription when the socket came back
	// after a loss. Messages sent in between are lost: check /history.
	EventReconnected = "comfyq.reconnected"
	// EventDisconnected is delivered to every subscription when the socket was lost.
	EventDisconnected = "comfyq.disconnected"
)

// Event is one message from the WebSocket.
type Event struct {
	// Type is the message type (see the Event constants); unknown custom types are
	// passed through.
	Type string
	// PromptID is the prompt the message belongs to, or "" for messages that carry none
	// (status, feature_flags, synthetic events). For binary frames of type 1 and 3, which
	// carry no prompt id, it is the prompt this client was running when they arrived.
	PromptID string
	// Data is the message's "data" object (nil for binary and synthetic events).
	Data json.RawMessage
	// Binary is the decoded binary frame, for binary events.
	Binary *BinaryFrame
	// Received is when the client read the message.
	Received time.Time
}

// Status is the status event: the number of prompts queued or running.
type Status struct {
	QueueRemaining int
	// SID is set on the status sent to a newly connected socket: its client id.
	SID string
}

// UnmarshalJSON decodes {"status": {"exec_info": {"queue_remaining": N}}, "sid": …}.
func (s *Status) UnmarshalJSON(b []byte) error {
	var v struct {
		Status struct {
			ExecInfo struct {
				QueueRemaining json.Number `json:"queue_remaining"`
			} `json:"exec_info"`
		} `json:"status"`
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Status{SID: v.SID}
	if v.Status.ExecInfo.QueueRemaining != "" {
		n, err := v.Status.ExecInfo.QueueRemaining.Int64()
		if err != nil {
			return fmt.Errorf("comfy: status queue_remaining: %w", err)
		}
		s.QueueRemaining = int(n)
	}
	return nil
}

// ExecutionStart is sent when a prompt starts.
type ExecutionStart struct {
	PromptID  string `json:"prompt_id"`
	Timestamp int64  `json:"timestamp"`
}

// ExecutionCached lists the prompt's nodes whose results came from the cache.
type ExecutionCached struct {
	Nodes     []string `json:"nodes"`
	PromptID  string   `json:"prompt_id"`
	Timestamp int64    `json:"timestamp"`
}

// Executing is sent when a node starts. Node is nil when the prompt is done (its
// history entry is then written): the completion signal.
type Executing struct {
	Node        *string `json:"node"`
	DisplayNode string  `json:"display_node,omitempty"`
	PromptID    string  `json:"prompt_id,omitempty"`
}

// Done reports whether this is the completion signal (node null).
func (e *Executing) Done() bool { return e.Node == nil }

// Progress is a node's progress (sampler steps: Value 1…Max).
type Progress struct {
	Value    float64 `json:"value"`
	Max      float64 `json:"max"`
	PromptID string  `json:"prompt_id"`
	Node     string  `json:"node"`
}

// ProgressState is the state of every started node of the prompt.
type ProgressState struct {
	PromptID string                  `json:"prompt_id"`
	Nodes    map[string]NodeProgress `json:"nodes"`
}

// NodeProgress is one node in ProgressState.
type NodeProgress struct {
	Value float64 `json:"value"`
	Max   float64 `json:"max"`
	// State is "running" or "finished".
	State         string  `json:"state"`
	NodeID        string  `json:"node_id"`
	PromptID      string  `json:"prompt_id"`
	DisplayNodeID string  `json:"display_node_id"`
	ParentNodeID  *string `json:"parent_node_id"`
	RealNodeID    string  `json:"real_node_id"`
}

// Executed carries the UI output of a node that produced one (from cache too).
type Executed struct {
	Node        string     `json:"node"`
	DisplayNode string     `json:"display_node"`
	Output      NodeOutput `json:"output"`
	PromptID    string     `json:"prompt_id"`
}

// ExecutionSuccess is sent when a prompt finished without error, before its history is
// written: wait for Executing.Done before reading /history.
type ExecutionSuccess struct {
	PromptID  string `json:"prompt_id"`
	Timestamp int64  `json:"timestamp"`
}

// ExecutionInterrupted is sent when a prompt was interrupted.
type ExecutionInterrupted struct {
	PromptID  string   `json:"prompt_id"`
	NodeID    string   `json:"node_id"`
	NodeType  string   `json:"node_type"`
	Executed  []string `json:"executed"`
	Timestamp int64    `json:"timestamp"`
}

// FeatureFlags is the server's answer to the client's feature flags.
type FeatureFlags struct {
	SupportsPreviewMetadata bool `json:"supports_preview_metadata"`
	// MaxUploadSize is in bytes (ComfyUI sends a float).
	MaxUploadSize float64 `json:"max_upload_size"`
	// All holds every flag, numbers as json.Number.
	All map[string]any `json:"-"`
}

// Decode returns the event's typed payload: *Status, *ExecutionStart, *ExecutionCached,
// *Executing, *Progress, *ProgressState, *Executed, *ExecutionSuccess, *ExecutionError,
// *ExecutionInterrupted, *FeatureFlags, *BinaryFrame for binary events, nil for
// synthetic events, and json.RawMessage for unknown types.
func (e Event) Decode() (any, error) {
	if e.Binary != nil {
		return e.Binary, nil
	}
	var v any
	switch e.Type {
	case EventReconnected, EventDisconnected:
		return nil, nil
	case EventStatus:
		v = &Status{}
	case EventExecutionStart:
		v = &ExecutionStart{}
	case EventExecutionCached:
		v = &ExecutionCached{}
	case EventExecuting:
		v = &Executing{}
	case EventProgress:
		v = &Progress{}
	case EventProgressState:
		v = &ProgressState{}
	case EventExecuted:
		v = &Executed{}
	case EventExecutionSuccess:
		v = &ExecutionSuccess{}
	case EventExecutionError:
		v = &ExecutionError{}
	case EventExecutionInterrupted:
		v = &ExecutionInterrupted{}
	case EventFeatureFlags:
		ff := &FeatureFlags{}
		if err := decodeEventData(e.Data, &ff.All); err != nil {
			return nil, fmt.Errorf("comfy: decode %s event: %w", e.Type, err)
		}
		if b, ok := ff.All["supports_preview_metadata"].(bool); ok {
			ff.SupportsPreviewMetadata = b
		}
		if n, ok := ff.All["max_upload_size"].(json.Number); ok {
			ff.MaxUploadSize, _ = n.Float64()
		}
		return ff, nil
	default:
		return e.Data, nil
	}
	if err := decodeEventData(e.Data, v); err != nil {
		return nil, fmt.Errorf("comfy: decode %s event: %w", e.Type, err)
	}
	if ee, ok := v.(*ExecutionError); ok {
		ee.bound()
	}
	return v, nil
}

func decodeEventData(data json.RawMessage, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("no data")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}
