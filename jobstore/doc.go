// Package jobstore keeps comfyq's job records in Redis and delivers their live events:
// the Store (Create, Get, Update, List, Watch, RecordDelivery) and the Hub, one pattern
// subscription per process that fans events out to every watcher (producer.Watch and
// Wait, the API's Server-Sent Events).
//
// Every write of a record is one round trip: a Lua script that checks the record is
// the one the change was made to and the state machine of package job, writes the
// record, moves the job between its filter sets and publishes the event (write.go).
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
//	comfyq:jobs?{filters}      the same, for one combination of status, queue,
//	                           template and tenant (filtered listing; index.go)
//	comfyq:jobs:indexed        the filter sets hold every job (backfill.go)
//	comfyq:idem:{key}          idempotency key → job id
//	comfyq:events:{id}         pub/sub channel of the job's live events (job.Event JSON)
package jobstore
