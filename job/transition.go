package job

// The state machine of a job, in one place: Go checks it before a write, and the Redis
// store hands the same table to its write script, which checks it again atomically
// with the write.
//
// A job that is neither terminal nor canceling may move to any state: the worker takes
// it queued → running → uploading → succeeded, back to queued for another attempt, or
// to failed; a cancel takes it to canceling, or straight to canceled while it waits in
// its queue. A terminal state never changes. A canceling job only ends: a write that would take it
// to another non-terminal state (a worker's late running, uploading or queued) keeps it
// canceling.

// CanBecome reports whether a job in state s may move to next. Staying in the same
// state (a progress write) counts as a move.
func (s Status) CanBecome(next Status) bool {
	switch {
	case s.Terminal():
		return false
	case s == StatusCanceling:
		return next == StatusCanceling || next.Terminal()
	}
	return next.Valid()
}

// Settle returns the state a write of next to a job in state s leaves it in: next,
// except that a canceling job stays canceling until it ends. ok is false when the
// write must be refused (s is terminal, or next is not a state).
func (s Status) Settle(next Status) (settled Status, ok bool) {
	if s == StatusCanceling && next.Valid() && !next.Terminal() {
		next = StatusCanceling
	}
	return next, s.CanBecome(next)
}

// From returns the states a job may move to s from, in lifecycle order.
func From(s Status) []Status {
	var out []Status
	for _, from := range Statuses() {
		if from.CanBecome(s) {
			out = append(out, from)
		}
	}
	return out
}
