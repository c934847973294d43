package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
)

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
	if _, err := s.jobFor(r, id); err != nil {
		return err
	}
	// The store's Watch is the one follower of a job: it subscribes through the
	// process's hub before reading the record, drops events older than what it sent,
	// re-reads the record when events were lost, and ends after a terminal state.
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	events, err := s.store.Watch(wctx, id)
	if errors.Is(err, jobstore.ErrUnavailable) {
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "live events are unavailable (Redis unreachable); poll GET /v1/jobs/%s", id)
	}
	if err != nil {
		if ctx.Err() != nil {
			return errClientGone
		}
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
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil // shutting down: the client reconnects (retry:) to another replica
		case ev, ok := <-events:
			if !ok {
				return nil // after a terminal state
			}
			s.presentJob(ctx, r, ev.Job)
			if !st.event(ev.Type, ev.Job) {
				return nil
			}
		case <-heartbeat.C:
			if !st.write([]byte(": heartbeat\n\n")) {
				return nil
			}
		}
	}
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
