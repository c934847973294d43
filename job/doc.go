// Package job is the contract shared by the producer, the worker, the HTTP API and its
// client: the submission (Spec), the status record (Job), its states and error codes
// (Code), the live events (Event), the asynq task type names and payload encoding, and
// the Client interface that both producer.Client (Redis) and apiclient.Client (HTTP)
// implement, with the one Wait that follows a job to its end.
//
// It imports no Redis client and no queue, the way rivertype stands alone in river: the
// Redis record store and its event hub are package jobstore.
//
// # Lifecycle
//
// A job moves queued → running → uploading → succeeded | failed | canceled; a retry goes
// back to queued with Attempt+1. Terminal states never change again (jobstore.Store.Update
// refuses to touch a terminal record).
//
// The job id is a UUIDv7 and is also the asynq TaskID and the ComfyUI prompt_id of every
// attempt.
package job
