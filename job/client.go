package job

import "context"

// Follower reads a job and follows its live events. Wait needs nothing more.
type Follower interface {
	// Get returns the job's record, or an error matching ErrNotFound.
	Get(ctx context.Context, id string) (*Job, error)
	// Watch streams the job's events: its current state first, then every status and
	// progress change; the channel closes after a terminal state or when ctx ends, and
	// may close early when the stream is lost (Wait then polls Get).
	Watch(ctx context.Context, id string) (<-chan Event, error)
}

// Client submits and follows jobs. producer.Client implements it on Redis directly,
// apiclient.Client through the HTTP API, so a program (the comfyq CLI's --redis and --api
// modes) can use either; both return the sentinels of this package (ErrNotFound,
// ErrTerminal) and a refused submission as a *SpecError for errors.As.
type Client interface {
	Follower
	// Enqueue validates and submits a job and returns its record. With an idempotency
	// key that already names a job, it returns that job.
	Enqueue(ctx context.Context, spec Spec) (*Job, error)
	// Wait blocks until the job reaches a terminal state and returns it.
	Wait(ctx context.Context, id string) (*Job, error)
	// List returns jobs newest first, filtered, with the cursor of the next page ("" at
	// the end).
	List(ctx context.Context, opts ListOptions) ([]*Job, string, error)
	// Cancel cancels a job; for a job that already ended it returns the job and an error
	// matching ErrTerminal.
	Cancel(ctx context.Context, id string) (*Job, error)
	// Close releases the client's connections.
	Close() error
}

// ListOptions filters and pages List.
type ListOptions struct {
	// Status, Queue, Template and Tenant filter (empty: any); any combination costs
	// the same whatever the number of jobs.
	Status   Status
	Queue    string
	Template string
	Tenant   string
	// Limit is the page size (default 50, at most 500).
	Limit int
	// Cursor is the NextCursor of the previous page.
	Cursor string
}
