// Package job is the contract shared by the producer, the worker and the HTTP API: the
// submission (Spec), the status record (Job), its states and error codes, the asynq task
// type names and payload encoding, and the Redis store that keeps job records and
// publishes their live events.
//
// # Lifecycle
//
// A job moves queued → running → uploading → succeeded | failed | canceled; a retry goes
// back to queued with Attempt+1. Terminal states never change again: every write goes
// through Store.Update, which refuses to touch a terminal record.
//
// # Redis layout
//
// Everything lives under the "comfyq:" prefix (asynq keeps its own keys):
//
//	comfyq:job:{id}            the Job JSON, expiring after the retention
//	comfyq:jobs                sorted set of job ids by creation time (listing)
//	comfyq:idem:{key}          idempotency key → job id
//	comfyq:events:{id}         pub/sub channel of the job's live events
//
// The job id is a UUIDv7 and is also the asynq TaskID and the ComfyUI prompt_id of every
// attempt.
package job
