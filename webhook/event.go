package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Event types. job.progress is sent only to webhooks that ask for it.
const (
	EventJobStarted   = "job.started"
	EventJobProgress  = "job.progress"
	EventJobSucceeded = "job.succeeded"
	EventJobFailed    = "job.failed"
	EventJobCanceled  = "job.canceled"
)

var eventTypes = []string{EventJobStarted, EventJobProgress, EventJobSucceeded, EventJobFailed, EventJobCanceled}

// EventTypes returns every event type comfyq sends, in lifecycle order.
func EventTypes() []string { return slices.Clone(eventTypes) }

// ValidEventType reports whether t is an event type comfyq sends.
func ValidEventType(t string) bool { return slices.Contains(eventTypes, t) }

// ErrInvalidEvent is returned (wrapped) by NewEvent and ParseEvent.
var ErrInvalidEvent = errors.New("webhook: invalid event")

// Event is the body of every webhook:
//
//	{"type": "job.succeeded", "timestamp": "2025-01-02T03:04:05.123Z", "data": {…Job JSON…}}
//
// Timestamp is when the event happened, not when it was delivered (that is
// the webhook-timestamp header, renewed on every retry).
type Event struct {
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// NewEvent builds an event of a known type at time at (stored in UTC) whose
// data is the JSON encoding of data.
func NewEvent(typ string, at time.Time, data any) (Event, error) {
	if !ValidEventType(typ) {
		return Event{}, fmt.Errorf("%w: unknown type %q", ErrInvalidEvent, typ)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("%w: encode data: %w", ErrInvalidEvent, err)
	}
	return Event{Type: typ, Timestamp: at.UTC(), Data: raw}, nil
}

// ParseEvent decodes a webhook body. It requires a type and a timestamp but
// accepts types it does not know, so that a receiver keeps working when
// comfyq adds one; switch on Type and ignore the rest.
func ParseEvent(body []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	if e.Type == "" {
		return Event{}, fmt.Errorf("%w: no type", ErrInvalidEvent)
	}
	if e.Timestamp.IsZero() {
		return Event{}, fmt.Errorf("%w: no timestamp", ErrInvalidEvent)
	}
	if len(e.Data) == 0 || bytes.Equal(e.Data, []byte("null")) {
		e.Data = nil
	}
	return e, nil
}
