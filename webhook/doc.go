// Package webhook signs, verifies and durably delivers comfyq's webhooks,
// which follow the Standard Webhooks specification
// (https://www.standardwebhooks.com), and defines the event body they carry.
//
// # Messages
//
// A webhook is an HTTP POST whose body is an [Event] in JSON:
//
//	{"type": "job.succeeded", "timestamp": "2025-01-02T03:04:05Z", "data": {…Job JSON…}}
//
// with three headers:
//
//   - webhook-id: the message id, the same on every retry of one message; a
//     receiver uses it to process each message once.
//   - webhook-timestamp: unix seconds of this delivery attempt.
//   - webhook-signature: a space-separated list of "v1,<base64 signature>",
//     where the signature is HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}".
//
// The types are job.started (at the start of each attempt), job.progress
// (only for subscriptions that list it, at most one per job every two
// seconds), job.succeeded, job.failed (after the last attempt) and
// job.canceled. data is the job's record at the time of the event, as GET
// /v1/jobs/{id} shows it, without the delivery log. timestamp is when the
// event happened; a terminal event carries the job's finished_at.
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
//
// # Secrets
//
// The signing key is random (24 to 64 bytes) and written "whsec_<base64 key>"
// ([NewSecret], [ParseSecret]). comfyq reads it from COMFYQ_WEBHOOK_SECRET;
// give the same string to receivers. Every Standard Webhooks library (Go,
// Python, JavaScript, Ruby, …) verifies comfyq's messages with it.
//
// To rotate a secret without losing messages, sign with both the new and the
// old secret ([Signer] with two Secrets; COMFYQ_WEBHOOK_SECRET="whsec_new,whsec_old"),
// move receivers to the new secret, then drop the old one. A [Verifier] can
// likewise accept several secrets. Secrets are never written to Redis: each
// attempt is signed by the delivering process with its own configuration.
//
// # Receiving in Go
//
// [Verifier.Handler] reads and verifies the request and hands the exact body
// to your function; see the receiver example. Verify the raw bytes received:
// decoding and re-encoding the JSON changes them and breaks the signature.
// Signatures are compared in constant time and messages whose timestamp is
// more than five minutes off are refused, which limits replays; to refuse a
// replay inside that window too, remember webhook-id values for a while.
package webhook
