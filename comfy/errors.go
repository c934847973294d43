package comfy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors. Test for them with errors.Is; the errors returned by the client wrap
// them with details.
var (
	// ErrNotFound is returned when ComfyUI has no such prompt, file or class: a 404, or
	// the {} that /history/{id} and /object_info/{class} answer for unknown keys.
	ErrNotFound = errors.New("comfy: not found")
	// ErrUnavailable is returned when the node cannot be reached or does not answer:
	// dial errors, connection resets, per-request timeouts, HTTP 502/503/504 and failed
	// WebSocket handshakes. It is the signal to retry elsewhere or later.
	ErrUnavailable = errors.New("comfy: node unavailable")
	// ErrInterrupted is returned by Follow and Run when the prompt was interrupted.
	ErrInterrupted = errors.New("comfy: prompt interrupted")
	// ErrClosed is returned by a Client after Close.
	ErrClosed = errors.New("comfy: client closed")
	// ErrPromptLost is returned by Follow when the prompt is neither queued, running nor
	// in the history: the node restarted (its queue and history are in memory only) or
	// the prompt was deleted from the queue.
	ErrPromptLost = errors.New("comfy: prompt lost")
	// ErrExecution is wrapped by every *ExecutionError.
	ErrExecution = errors.New("comfy: execution error")
)

// maxErrorBody bounds how much of an error response is kept in HTTPError.Body and
// ValidationError.Raw.
const maxErrorBody = 64 << 10

// HTTPError is an unexpected HTTP status from ComfyUI. It unwraps to ErrNotFound for 404
// and to ErrUnavailable for 502, 503 and 504.
type HTTPError struct {
	StatusCode int
	// Body is the start of the response body (bounded).
	Body string
	// Path is the request path, without the query.
	Path string
	// Method is the request method.
	Method string
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("comfy: %s %s: HTTP %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if body := strings.TrimSpace(e.Body); body != "" {
		if len(body) > 200 {
			body = body[:200] + "…"
		}
		msg += ": " + body
	}
	return msg
}

// Unwrap maps the status to ErrNotFound or ErrUnavailable where one applies.
func (e *HTTPError) Unwrap() error {
	switch e.StatusCode {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return ErrUnavailable
	}
	return nil
}

// APIError is ComfyUI's error object, used at the top level of a rejected prompt and for
// each input error in NodeError.Errors.
type APIError struct {
	Type      string         `json:"type"`
	Message   string         `json:"message"`
	Details   string         `json:"details"`
	ExtraInfo map[string]any `json:"extra_info"`
}

func (e APIError) String() string {
	s := e.Type
	if e.Message != "" {
		if s != "" {
			s += ": "
		}
		s += e.Message
	}
	if d := strings.TrimSpace(e.Details); d != "" {
		s += " (" + strings.ReplaceAll(d, "\n", "; ") + ")"
	}
	return s
}

// NodeError lists the validation errors of one node of a prompt.
type NodeError struct {
	ClassType string `json:"class_type"`
	// DependentOutputs are the output node ids that cannot run because of this node.
	DependentOutputs []string   `json:"dependent_outputs"`
	Errors           []APIError `json:"errors"`
}

// ValidationError is a prompt rejected by POST /prompt (HTTP 400): nothing was queued.
// Retrying the same prompt cannot succeed.
type ValidationError struct {
	StatusCode int                  `json:"-"`
	Err        APIError             `json:"error"`
	NodeErrors map[string]NodeError `json:"node_errors"`
	// Raw is the response body (bounded).
	Raw json.RawMessage `json:"-"`
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("comfy: prompt rejected: ")
	b.WriteString(e.Err.String())
	if e.Err.Details == "" && len(e.NodeErrors) > 0 {
		ids := sortedKeys(e.NodeErrors)
		for i, id := range ids {
			if i == 3 {
				fmt.Fprintf(&b, "; and %d more nodes", len(ids)-3)
				break
			}
			ne := e.NodeErrors[id]
			fmt.Fprintf(&b, "; node %s (%s)", id, ne.ClassType)
			for _, ie := range ne.Errors {
				b.WriteString(": ")
				b.WriteString(ie.String())
			}
		}
	}
	return b.String()
}

// ExecutionError is a prompt that failed while running: the node that raised, the Python
// exception and a bounded traceback. It is also the decoded form of the execution_error
// event. It wraps ErrExecution.
type ExecutionError struct {
	PromptID         string   `json:"prompt_id"`
	NodeID           string   `json:"node_id"`
	NodeType         string   `json:"node_type"`
	ExceptionType    string   `json:"exception_type"`
	ExceptionMessage string   `json:"exception_message"`
	Traceback        []string `json:"traceback"`
	// Executed are the ids of the nodes that had finished before the error.
	Executed  []string `json:"executed"`
	Timestamp int64    `json:"timestamp,omitempty"`
}

// Bounds applied to the execution errors the client decodes: tracebacks and current
// inputs can hold megabytes of tensor dumps.
const (
	maxTracebackLines = 40
	maxTracebackLine  = 2 << 10
	maxExceptionMsg   = 8 << 10
)

func (e *ExecutionError) bound() {
	if len(e.Traceback) > maxTracebackLines {
		// Keep the innermost frames: they name the failing call.
		e.Traceback = append([]string{"…"}, e.Traceback[len(e.Traceback)-maxTracebackLines+1:]...)
	}
	for i, l := range e.Traceback {
		e.Traceback[i] = truncate(l, maxTracebackLine)
	}
	e.ExceptionMessage = truncate(e.ExceptionMessage, maxExceptionMsg)
}

func (e *ExecutionError) Error() string {
	var b strings.Builder
	b.WriteString("comfy: ")
	if e.NodeID != "" {
		b.WriteString("node ")
		b.WriteString(e.NodeID)
		if e.NodeType != "" {
			b.WriteString(" (" + e.NodeType + ")")
		}
		b.WriteString(" raised ")
	} else {
		b.WriteString("prompt failed: ")
	}
	typ := e.ExceptionType
	if typ == "" {
		typ = "an error"
	}
	b.WriteString(typ)
	// ComfyUI's message ends in a newline and may carry hints on further lines; the
	// first line is the exception's own text.
	if msg, _, _ := strings.Cut(strings.TrimSpace(e.ExceptionMessage), "\n"); msg != "" {
		b.WriteString(": ")
		b.WriteString(truncate(strings.TrimSpace(msg), 500))
	}
	return b.String()
}

// Unwrap returns ErrExecution.
func (e *ExecutionError) Unwrap() error { return ErrExecution }

// IsOOM reports whether the node ran out of (GPU) memory; such a failure may succeed on
// another node or after /free.
func (e *ExecutionError) IsOOM() bool {
	if strings.Contains(e.ExceptionType, "OutOfMemoryError") {
		return true
	}
	m := strings.ToLower(e.ExceptionMessage)
	return strings.Contains(m, "out of memory") || strings.Contains(m, "allocation on device")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	i := n
	for i > 0 && i > n-4 && !isRuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
