package job

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Status is a job's state.
type Status string

// The states of a job.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusUploading Status = "uploading"
	// StatusCanceling: a cancel was asked for a job that is (or may be) on a node; the
	// worker stops its prompt and moves it to canceled once the node confirms.
	StatusCanceling Status = "canceling"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCanceled  Status = "canceled"
)

// Terminal reports whether s is a final state.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled
}

// Valid reports whether s is one of the known states.
func (s Status) Valid() bool {
	switch s {
	case StatusQueued, StatusRunning, StatusUploading, StatusCanceling, StatusSucceeded, StatusFailed, StatusCanceled:
		return true
	}
	return false
}

// Statuses returns every state, in lifecycle order: the one list the OpenAPI
// document's JobStatus enum and the docs' tests take the states from.
func Statuses() []Status {
	return []Status{StatusQueued, StatusRunning, StatusUploading, StatusCanceling, StatusSucceeded, StatusFailed, StatusCanceled}
}

// Job is the status record of a job: the Job JSON of GET /v1/jobs/{id}, `comfyq status
// --json` and webhook payloads. Absent fields are omitted.
type Job struct {
	ID              string         `json:"id"`
	Status          Status         `json:"status"`
	Queue           string         `json:"queue"`
	Tenant          string         `json:"tenant,omitempty"`
	Template        string         `json:"template,omitempty"`
	TemplateVersion int            `json:"template_version,omitempty"`
	Attempt         int            `json:"attempt"`
	MaxAttempts     int            `json:"max_attempts"`
	Progress        *Progress      `json:"progress,omitempty"`
	Outputs         []Output       `json:"outputs,omitempty"`
	Error           *Error         `json:"error,omitempty"`
	Node            string         `json:"node,omitempty"`
	NodeName        string         `json:"node_name,omitempty"`
	Metadata        map[string]any `json:"metadata,omitempty"`
	CreatedAt       time.Time      `json:"created_at"`
	StartedAt       *time.Time     `json:"started_at,omitempty"`
	FinishedAt      *time.Time     `json:"finished_at,omitempty"`
	Timings         *Timings       `json:"timings,omitempty"`
	// Webhook is the job's own webhook subscription, from the submission.
	Webhook *WebhookSpec `json:"webhook,omitempty"`
	// Webhooks is the delivery log of the job's webhook events.
	Webhooks []Delivery `json:"webhooks,omitempty"`
	// CancelRequested is set when a cancel was asked for a job that is running; the
	// worker interrupts the prompt and moves the job to canceled.
	CancelRequested bool `json:"cancel_requested,omitempty"`
	// SubmissionHash is the SHA-256 (hex) of the submission as normalised (defaults
	// filled, the idempotency key left out): a submission that reuses an idempotency
	// key with another body is told apart from a retry of the same one.
	SubmissionHash string `json:"submission_sha256,omitempty"`
}

// Progress is how far a running job is.
type Progress struct {
	Fraction   float64 `json:"fraction"`
	Node       string  `json:"node,omitempty"`
	NodeClass  string  `json:"node_class,omitempty"`
	Step       int     `json:"step,omitempty"`
	Steps      int     `json:"steps,omitempty"`
	NodesDone  int     `json:"nodes_done"`
	NodesTotal int     `json:"nodes_total"`
}

// Output kinds.
const (
	KindImage = "image"
	KindVideo = "video"
	KindAudio = "audio"
	KindText  = "text"
	KindFile  = "file"
)

// Kinds returns every output kind (Output.Kind).
func Kinds() []string { return []string{KindImage, KindVideo, KindAudio, KindText, KindFile} }

// Output is one output of a job: a file copied to storage, or a text.
type Output struct {
	NodeID   string `json:"node_id"`
	Kind     string `json:"kind"`
	Filename string `json:"filename,omitempty"`
	// Bucket is the S3 bucket the file was copied to; empty for the file store.
	Bucket string `json:"bucket,omitempty"`
	// Key is the object's key as any client of the storage names it: its full
	// key in Bucket (the storage URL's prefix included), or its path under the
	// file store's root.
	Key    string `json:"key,omitempty"`
	URL    string `json:"url,omitempty"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// BLAKE3 is the lower-case hex blake3 of the file, the hash the Comfy API v2 names
	// assets by.
	BLAKE3      string `json:"blake3,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Text        string `json:"text,omitempty"`
	// Type is where ComfyUI kept the file: "output" for a saved output, "temp" for a
	// preview (PreviewImage and the like). Empty for text.
	Type string `json:"type,omitempty"`
	// Animated is set for images the node marked animated (animated WEBP/PNG, video).
	Animated bool `json:"animated,omitempty"`
	// Format is the file's declared format, as custom nodes give it
	// (VideoHelperSuite: "video/h264-mp4").
	Format string `json:"format,omitempty"`
}

// Timings are the durations of a job's phases, in milliseconds.
type Timings struct {
	QueuedMS    int64 `json:"queued_ms"`
	ExecutionMS int64 `json:"execution_ms"`
	UploadMS    int64 `json:"upload_ms"`
	TotalMS     int64 `json:"total_ms"`
}

// Delivery is the log of one webhook event's delivery.
type Delivery struct {
	ID          string     `json:"id"`
	Event       string     `json:"event"`
	URL         string     `json:"url"`
	Attempts    int        `json:"attempts"`
	StatusCode  int        `json:"status_code,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
}

// NewID returns a new job id: a UUIDv7 in canonical lowercase form.
func NewID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// ValidID reports whether s is a canonical lowercase UUID, the only form of a job id.
func ValidID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// Clone returns a deep copy of the job.
func (j *Job) Clone() *Job {
	data, _ := json.Marshal(j)
	var c Job
	_ = json.Unmarshal(data, &c)
	return &c
}

// UnmarshalJSON decodes a Job keeping the numbers of its free-form fields (Metadata)
// exact: 9007199254740993 stays that, as a json.Number, instead of the nearest float64.
func (j *Job) UnmarshalJSON(data []byte) error {
	type plain Job // no methods: no recursion
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode((*plain)(j))
}
