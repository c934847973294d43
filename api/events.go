package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/comfyq/comfyq/job"
)

// recheckInterval is how often an event stream re-reads the job record, so that a
// terminal state whose event was lost (Redis reconnect) still ends the stream.
const recheckInterval = 5 * time.Second

// sseWriteTimeout bounds one write to an event stream: a client that reads nothing for
// this long is dropped.
const sseWriteTimeout = 30 * time.Second

// jobEvents serves GET /v1/jobs/{id}/events: Server-Sent Events with the job's current
// state first, then every status and progress change, ending after a terminal state.
//
//	event: status
//	id: 1
//	data: {"id":"…","status":"running",…}
//
// Comment lines (": heartbeat") keep an idle stream open through proxies.
func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("id")
	if !job.ValidID(id) {
		return job.ErrNotFound
	}
	readyCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := s.hub.waitReady(readyCtx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return errClientGone
		}
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "live events are unavailable (Redis unreachable); poll GET /v1/jobs/%s", id)
	}
	// Subscribe before reading the record, so no change falls between the two.
	sub, unsubscribe := s.hub.subscribe(id)
	defer unsubscribe()
	cur, err := s.store.Get(ctx, id)
	if err != nil {
		return err
	}

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	st := &sseStream{w: w, rc: rc}
	st.write([]byte("retry: 3000\n\n"))
	var last *job.Job
	send := func(kind string, j *job.Job) bool {
		s.presentJob(ctx, r, j)
		last = j
		return st.event(kind, j)
	}
	if !send(job.EventStatus, cur) || cur.Status.Terminal() {
		return nil
	}
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	recheck := time.NewTicker(recheckInterval)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil // shutting down: the client reconnects (retry:) to another replica
		case ev := <-sub.events:
			if before(ev.Job, last) {
				continue // published before the record we read first
			}
			if !send(ev.Type, ev.Job) || ev.Job.Status.Terminal() {
				return nil
			}
		case <-sub.lagged:
			j, err := s.store.Get(ctx, id)
			if err != nil {
				return nil
			}
			if !send(job.EventStatus, j) || j.Status.Terminal() {
				return nil
			}
		case <-recheck.C:
			j, err := s.store.Get(ctx, id)
			if err == nil && j.Status.Terminal() {
				send(job.EventStatus, j)
				return nil
			}
		case <-heartbeat.C:
			if !st.write([]byte(": heartbeat\n\n")) {
				return nil
			}
		}
	}
}

// before reports whether j is an older state than last: an earlier attempt, or an
// earlier step of the same attempt.
func before(j, last *job.Job) bool {
	if last == nil {
		return false
	}
	if j.Attempt != last.Attempt {
		return j.Attempt < last.Attempt
	}
	return statusRank(j.Status) < statusRank(last.Status)
}

func statusRank(s job.Status) int {
	switch s {
	case job.StatusQueued:
		return 0
	case job.StatusRunning:
		return 1
	case job.StatusUploading:
		return 2
	}
	return 3
}

// sseStream writes Server-Sent Events, flushing each and bounding each write.
type sseStream struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	seq int
	buf bytes.Buffer
}

func (st *sseStream) event(kind string, j *job.Job) bool {
	data, err := marshalJSON(j)
	if err != nil {
		return false
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	st.seq++
	st.buf.Reset()
	fmt.Fprintf(&st.buf, "event: %s\nid: %s\ndata: ", kind, strconv.Itoa(st.seq))
	st.buf.Write(data) // compact JSON has no newline
	st.buf.WriteString("\n\n")
	return st.write(st.buf.Bytes())
}

func (st *sseStream) write(b []byte) bool {
	_ = st.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	if _, err := st.w.Write(b); err != nil {
		return false
	}
	return st.rc.Flush() == nil
}
