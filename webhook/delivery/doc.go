// Package delivery sends comfyq's webhooks durably: the Dispatcher turns job
// events into asynq tasks, the Deliverer sends them signed (package webhook),
// retried with backoff, in order per job and destination, and logged in the
// job's record.
//
// # Subscriptions
//
// A job's submission may name its own webhook: {"url", "events"}. The server
// may also have global subscriptions ([Subscription], [ParseSubscriptions],
// COMFYQ_WEBHOOK_SUBSCRIPTIONS), each with a URL, an event filter and
// optionally secrets of its own; they receive the events of every job.
// Without an event filter, a subscription receives [DefaultEvents]: all but
// job.progress.
//
// # Delivery
//
// The [Dispatcher] (the Notifier of the worker and the producer) turns each
// event into one asynq task of type comfyq:webhook per destination, on a
// queue of its own ([DefaultQueue], "comfyq_webhooks"). The [Deliverer], run
// by [RunServer] in any comfyq process, sends them. Tasks live in Redis, so
// a message survives the restart of every comfyq process, and of Redis with
// persistence.
//
//   - Ids. The webhook-id is "msg_" and 32 hex digits derived from the job,
//     the event, the job's attempt and the destination. It is the asynq
//     TaskID too: an event reported twice (a worker that restarts) is
//     enqueued once, and every retry of a message carries the same id and
//     the same body, with a new webhook-timestamp and signature. A replay
//     ([Dispatcher.Replay]) is a new message with a new id.
//   - Success and retries. Any 2xx answer is success. Anything else (an
//     error status, a redirect, which is never followed, a timeout after
//     10 seconds, a refused connection) is retried with exponential backoff
//     and full jitter ([RetryPolicy]): waits grow from 5 seconds to at most
//     an hour, and a message is retried until its first failure after the
//     horizon, 24 hours after its first attempt. A receiver that is down for
//     hours therefore gets every event once it is back, at the latest an
//     hour later.
//   - 410 Gone ends a message at once: the receiver asks not to be called
//     again for it. The log says so.
//   - Safety. Destinations are checked like input URLs (package netguard):
//     loopback, private, link-local and metadata addresses are refused
//     unless COMFYQ_ALLOW_PRIVATE_URLS is set, both before sending and at
//     connect time; such a message ends at once with a clear error. At most
//     4 KiB of an answer is read, for the log.
//   - Order. Messages of one job to one destination are sent in the order
//     the events occurred: a message waits (without using up attempts)
//     until every earlier one of the same job to the same destination has
//     been delivered or given up. Messages of different jobs, or to
//     different destinations, do not wait for each other.
//   - Log. Every message is in its job's record ("webhooks": id, event,
//     url, attempts, status_code, last_error, delivered_at, created_at),
//     written when it is enqueued and after every attempt, also after the
//     job has ended.
//   - Delivery is at least once: a process that dies during an attempt
//     leaves the message to be sent again, with the same webhook-id.
//     Receivers deduplicate on webhook-id.
package delivery
