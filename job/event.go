package job

import "time"

// Event kinds of a job's live stream.
const (
	EventStatus   = "status"
	EventProgress = "progress"
)

// Event is one live change of a job, as Watch delivers it: Type is EventStatus or
// EventProgress, Job the record after the change.
type Event struct {
	Type string    `json:"type"`
	At   time.Time `json:"at"`
	Job  *Job      `json:"job"`
}
