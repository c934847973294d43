package comfy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
)

// queueIDs is GET /queue read for the prompt ids only: Locate runs before every
// submission and needs nothing else, and decoding every queued workflow (up to the
// node's depth of them) into maps is most of the cost of a read.
type queueIDs struct {
	Running []queuedID `json:"queue_running"`
	Pending []queuedID `json:"queue_pending"`
}

// queuedID is the prompt id of one queue tuple [number, prompt_id, …]; the rest of
// the tuple is skipped unread. Lenient as QueueItem: a tuple of another shape is "".
type queuedID string

func (q *queuedID) UnmarshalJSON(b []byte) error {
	*q = ""
	var parts []json.RawMessage
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) || json.Unmarshal(b, &parts) != nil || len(parts) < 2 {
		return nil
	}
	var id string
	if json.Unmarshal(parts[1], &id) == nil {
		*q = queuedID(id)
	}
	return nil
}

func (c *Client) queueIDs(ctx context.Context) (*queueIDs, error) {
	var q queueIDs
	if err := c.doJSON(ctx, http.MethodGet, "/queue", nil, nil, &q, nil); err != nil {
		return nil, err
	}
	return &q, nil
}

// contains reports whether the prompt is running or pending, and which.
func (q *queueIDs) contains(promptID string) (running, pending bool) {
	for _, id := range q.Running {
		if string(id) == promptID {
			return true, false
		}
	}
	for _, id := range q.Pending {
		if string(id) == promptID {
			return false, true
		}
	}
	return false, false
}
