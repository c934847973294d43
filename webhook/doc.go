// Package webhook signs and verifies comfyq's webhooks, which follow the
// Standard Webhooks specification (https://www.standardwebhooks.com), and
// defines the event body they carry. It depends on the standard library
// only, so a receiver that verifies signatures links no queue, Redis client
// or metrics; durable delivery (asynq tasks, retries, order, the delivery
// log) is package webhook/delivery.
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
