// Package quota enforces the per-key submission quotas of comfyq's API in Redis, so
// that every API replica sees the same counts:
//
//   - [Limiter]: submissions per second, a token bucket per key refilled continuously,
//     taken and refilled in one Lua script (atomic under any concurrency). A refusal
//     says how long until a token is back: the API's 429 Retry-After.
//   - [InFlight]: jobs of a key that have not ended, a sorted set per key checked and
//     added to in one Lua script. Members that ended (or whose records expired) are
//     pruned when the set is full, by reading their job records' status, so nothing
//     needs to be told when a job ends.
package quota
