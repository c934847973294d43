package delivery

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/webhook"
)

// DefaultQueue is the asynq queue of delivery tasks.
const DefaultQueue = "comfyq_webhooks"

// taskVersion is the version of taskPayload written by this code.
const taskVersion = 1

// ErrInvalidTask is returned (wrapped) for a delivery task whose payload
// cannot be used; such a task is archived, not retried.
var ErrInvalidTask = errors.New("webhook: invalid delivery task")

// taskPayload is the payload of a comfyq:webhook task: one message to one
// destination. It carries the exact body, so every attempt sends the same
// bytes, and no secret (secrets stay in the processes' configuration).
type taskPayload struct {
	V int `json:"v"`
	// ID is the webhook-id, also the asynq TaskID.
	ID    string `json:"id"`
	JobID string `json:"job_id"`
	Event string `json:"event"`
	URL   string `json:"url"`
	// Subscription names the global subscription whose secrets sign the
	// message; "" for the job's own webhook (the default secrets).
	Subscription string `json:"subscription,omitempty"`
	// OrderKey names the (job, destination) pair whose messages are sent in
	// order of occurrence; Seq is this message's place in it.
	OrderKey string `json:"order_key"`
	Seq      int64  `json:"seq"`
	// Body is the request body, byte for byte.
	Body []byte `json:"body"`
	// CreatedAt is when the message was enqueued.
	CreatedAt time.Time `json:"created_at"`
	// Replay marks a message re-sent on request.
	Replay bool `json:"replay,omitempty"`
}

func encodeTask(p *taskPayload) ([]byte, error) {
	p.V = taskVersion
	return json.Marshal(p)
}

func decodeTask(data []byte) (*taskPayload, error) {
	var p taskPayload
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTask, err)
	}
	switch {
	case p.V > taskVersion:
		return nil, fmt.Errorf("%w: payload version %d is newer than this process understands (%d): upgrade it", ErrInvalidTask, p.V, taskVersion)
	case webhook.CheckMessageID(p.ID) != nil || p.ID == "":
		return nil, fmt.Errorf("%w: bad webhook-id %q", ErrInvalidTask, clip(p.ID, 64))
	case !job.ValidID(p.JobID):
		return nil, fmt.Errorf("%w: bad job id %q", ErrInvalidTask, clip(p.JobID, 64))
	case p.OrderKey == "" || p.Seq <= 0:
		return nil, fmt.Errorf("%w: no order key", ErrInvalidTask)
	case len(p.Body) == 0:
		return nil, fmt.Errorf("%w: no body", ErrInvalidTask)
	}
	if err := checkDestination(p.URL); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTask, err)
	}
	return &p, nil
}

// messageID returns the webhook-id of an event: "msg_" and 32 hex digits of
// a SHA-256 over the job, the event, the attempt, the subscription and the
// URL. The same event to the same destination always gets the same id, so
// that an event reported twice (a worker that restarts) is enqueued once;
// extra distinguishes messages that are not repeats (progress events,
// replays). The id contains no '.', as Standard Webhooks requires.
func messageID(jobID, event string, attempt int, subscription, url, extra string) string {
	h := sha256.New()
	for _, s := range []string{jobID, event, strconv.Itoa(attempt), subscription, url, extra} {
		h.Write([]byte(strconv.Itoa(len(s)))) // length-prefixed: no two inputs collide
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	return "msg_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// orderKey names the (job, destination) pair; the destination is hashed so
// that no URL appears in a Redis key name.
func orderKey(jobID, subscription, url string) string {
	h := sha256.Sum256([]byte(strconv.Itoa(len(subscription)) + ":" + subscription + url))
	return jobID + ":" + hex.EncodeToString(h[:8])
}

// nonce returns random hex, to make a replay a new message.
func nonce() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
