package webhook_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/webhook"
)

func TestEventTypes(t *testing.T) {
	t.Parallel()

	// The names are a public contract (DESIGN.md, Webhooks).
	want := []string{"job.started", "job.progress", "job.succeeded", "job.failed", "job.canceled"}
	require.Equal(t, want, webhook.EventTypes())
	for _, typ := range want {
		require.True(t, webhook.ValidEventType(typ), typ)
	}
	for _, typ := range []string{"", "job", "job.cancelled", "Job.Started", "job.started ", "job.queued"} {
		require.False(t, webhook.ValidEventType(typ), typ)
	}

	// EventTypes returns a copy.
	types := webhook.EventTypes()
	types[0] = "mutated"
	require.True(t, webhook.ValidEventType(webhook.EventJobStarted))
}

func TestNewEvent(t *testing.T) {
	t.Parallel()

	at := time.Date(2025, 1, 2, 3, 4, 5, 123000000, time.FixedZone("CET", 3600))
	data := map[string]any{"id": "01937c9e-8f3a-7b2c-9d1e-4f5a6b7c8d9e", "status": "succeeded"}
	e, err := webhook.NewEvent(webhook.EventJobSucceeded, at, data)
	require.NoError(t, err)
	body, err := json.Marshal(e)
	require.NoError(t, err)
	require.JSONEq(t, `{"type": "job.succeeded", "timestamp": "2025-01-02T02:04:05.123Z",
		"data": {"id": "01937c9e-8f3a-7b2c-9d1e-4f5a6b7c8d9e", "status": "succeeded"}}`, string(body))

	back, err := webhook.ParseEvent(body)
	require.NoError(t, err)
	require.Equal(t, webhook.EventJobSucceeded, back.Type)
	require.True(t, at.Equal(back.Timestamp))
	require.JSONEq(t, string(e.Data), string(back.Data))

	_, err = webhook.NewEvent("job.done", at, data)
	require.ErrorIs(t, err, webhook.ErrInvalidEvent)
	_, err = webhook.NewEvent(webhook.EventJobFailed, at, func() {})
	require.ErrorIs(t, err, webhook.ErrInvalidEvent)
}

func TestParseEvent(t *testing.T) {
	t.Parallel()

	// Unknown types pass, so that receivers survive new event types.
	e, err := webhook.ParseEvent([]byte(`{"type":"job.retried","timestamp":"2025-01-02T03:04:05Z","data":{"id":"x"},"extra":1}`))
	require.NoError(t, err)
	require.Equal(t, "job.retried", e.Type)
	require.JSONEq(t, `{"id":"x"}`, string(e.Data))

	e, err = webhook.ParseEvent([]byte(`{"type":"job.started","timestamp":"2025-01-02T03:04:05Z","data":null}`))
	require.NoError(t, err)
	require.Nil(t, e.Data)

	for _, body := range []string{
		``,
		`null`,
		`[]`,
		`{"type":"job.started"`,
		`{"timestamp":"2025-01-02T03:04:05Z","data":{}}`,
		`{"type":"job.started","data":{}}`,
		`{"type":"job.started","timestamp":"yesterday","data":{}}`,
		`{"type":1,"timestamp":"2025-01-02T03:04:05Z"}`,
	} {
		_, err := webhook.ParseEvent([]byte(body))
		require.ErrorIs(t, err, webhook.ErrInvalidEvent, body)
	}
}
