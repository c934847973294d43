// Package jobstore keeps comfyq's job records in Redis and delivers their live events:
// the Store (Create, Get, Update, List, Watch, RecordDelivery) and the Hub, one pattern
// subscription per process that fans events out to every watcher (producer.Watch and
// Wait, the API's Server-Sent Events).
//
// It is the machinery behind the contract of package job, kept apart so that importing
// job links no Redis client.
//
// # Redis layout
//
// Everything lives under the "comfyq:" prefix (asynq keeps its own keys):
//
//	comfyq:job:{id}            the Job JSON, expiring after the retention
//	comfyq:jobs                sorted set of job ids by creation time (listing)
//	comfyq:idem:{key}          idempotency key → job id
//	comfyq:events:{id}         pub/sub channel of the job's live events (job.Event JSON)
package jobstore
