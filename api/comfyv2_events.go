package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
)

// The event stream of the Comfy API v2, GET /api/v2/jobs/{id}/events: live push, no
// replay (no ids). On connect: the latest preview, progress and the current status; then a
// status on every transition (and on each change of queue_position while queued),
// progress at most every v2ProgressEvery, the latest preview image while running (the
// worker keeps one a second, jobstore.Preview), an output as each output is committed,
// log lines for what a user wants to see in a console (the node a job runs on, the
// error it failed with), and the terminal status last. It follows the same
// jobstore Watch as /v1's stream: any API replica serves any job.

const (
	v2ProgressEvery   = 500 * time.Millisecond // about 2 a second
	v2QueuePollEvery  = 2 * time.Second
	v2EventStatus     = "status"
	v2EventProgress   = "progress"
	v2EventOutput     = "output"
	v2EventLog        = "log"
	v2EventPreview    = "preview"
	v2LogInfo, v2LogE = "info", "error"
)

// V2StatusEvent is the data of a status event.
type V2StatusEvent struct {
	Status        string `json:"status"`
	QueuePosition *int   `json:"queue_position"`
}

// V2LogEvent is the data of a log event.
type V2LogEvent struct {
	Level   string `json:"level"`
	Message string `json:"message"`
}

// v2Follower turns job records into v2 events, remembering what it sent.
type v2Follower struct {
	s       *Server
	r       *http.Request
	st      *sseStream
	status  string
	qpos    *int
	node    string
	outputs map[string]bool
	// pending is a progress snapshot held back by the throttle.
	pending      *V2Progress
	lastProgress time.Time
	previewAt    time.Time // of the latest preview sent
}

// V2PreviewEvent is the data of a preview event.
type V2PreviewEvent struct {
	NodeID      string `json:"node_id"`
	ContentType string `json:"content_type"`
	DataBase64  string `json:"data_base64"`
}

func (s *Server) v2JobEvents(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("id")
	if !job.ValidID(id) {
		return job.ErrNotFound
	}
	if _, err := s.jobFor(r, id); err != nil {
		return err
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	events, err := s.store.Watch(wctx, id)
	if errors.Is(err, jobstore.ErrUnavailable) {
		return retryAfter(errorf(http.StatusServiceUnavailable, CodeUnavailable, "live events are unavailable (Redis unreachable); poll GET /api/v2/jobs/%s", id), 2)
	}
	if err != nil {
		if ctx.Err() != nil {
			return errClientGone
		}
		return err
	}
	// The first event is the record as it is now; a job that does not exist is a 404
	// before the stream starts.
	var first job.Event
	select {
	case <-ctx.Done():
		return errClientGone
	case ev, ok := <-events:
		if !ok {
			return job.ErrNotFound
		}
		first = ev
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f := &v2Follower{s: s, r: r, st: &sseStream{w: w, rc: http.NewResponseController(w)}, outputs: map[string]bool{}}
	// Outputs committed before the client connected are on the job already.
	for _, o := range s.v2Outputs(ctx, r, first.Job) {
		f.outputs[o.ID] = true
	}
	if !f.apply(ctx, first.Job, true) || first.Job.Status.Terminal() {
		return nil
	}

	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	queuePoll := time.NewTicker(v2QueuePollEvery)
	defer queuePoll.Stop()
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	last := first.Job
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			last = ev.Job
			if !f.apply(ctx, ev.Job, false) || ev.Job.Status.Terminal() {
				return nil
			}
			if f.pending != nil {
				flush.Reset(time.Until(f.lastProgress.Add(v2ProgressEvery)))
			}
		case <-flush.C:
			if f.pending != nil && !f.sendProgress(f.pending) {
				return nil
			}
		case <-queuePoll.C:
			if last.Status == job.StatusQueued && !f.apply(ctx, last, false) {
				return nil
			}
		case <-heartbeat.C:
			if !f.st.write([]byte(": heartbeat\n\n")) {
				return nil
			}
		}
	}
}

// apply sends the events that the record j implies after what was sent; false when
// the client is gone.
func (f *v2Follower) apply(ctx context.Context, j *job.Job, connect bool) bool {
	v := f.s.presentV2(ctx, f.r, j)
	terminal := j.Status.Terminal()
	if connect {
		f.node = j.Node // a snapshot: no log of where the job went
	}
	if connect && !terminal {
		// The snapshot, in the contract's order: status, progress, preview.
		f.status, f.qpos = v.Status, v.QueuePosition
		if !f.send(v2EventStatus, V2StatusEvent{Status: v.Status, QueuePosition: v.QueuePosition}) {
			return false
		}
		if v.Progress != nil && !f.sendProgress(v.Progress) {
			return false
		}
		return f.sendPreview(ctx, j.ID)
	}
	if j.Node != "" && j.Node != f.node && j.NodeName != "" {
		f.node = j.Node
		if !f.send(v2EventLog, V2LogEvent{Level: v2LogInfo, Message: "job " + j.ID + " is on node " + j.NodeName}) {
			return false
		}
	}
	for _, o := range v.Outputs {
		if f.outputs[o.ID] {
			continue
		}
		f.outputs[o.ID] = true
		if !f.send(v2EventOutput, o) {
			return false
		}
	}
	if j.Status == job.StatusRunning && !f.sendPreview(ctx, j.ID) {
		return false
	}
	if v.Progress != nil && !terminal {
		switch {
		case time.Since(f.lastProgress) >= v2ProgressEvery:
			if !f.sendProgress(v.Progress) {
				return false
			}
		default:
			f.pending = v.Progress
		}
	}
	if terminal {
		if v.Progress != nil && !f.sendProgress(v.Progress) {
			return false
		}
		if j.Error != nil && j.Status == job.StatusFailed {
			if !f.send(v2EventLog, V2LogEvent{Level: v2LogE, Message: string(j.Error.Code) + ": " + j.Error.Message}) {
				return false
			}
		}
	}
	if terminal || v.Status != f.status || !sameInt(v.QueuePosition, f.qpos) {
		f.status, f.qpos = v.Status, v.QueuePosition
		if !f.send(v2EventStatus, V2StatusEvent{Status: v.Status, QueuePosition: v.QueuePosition}) {
			return false
		}
	}
	return true
}

// sendPreview sends the job's latest preview if it is newer than the last sent.
func (f *v2Follower) sendPreview(ctx context.Context, id string) bool {
	p, err := f.s.store.Preview(ctx, id)
	if err != nil || p == nil || !p.At.After(f.previewAt) {
		return true
	}
	f.previewAt = p.At
	return f.send(v2EventPreview, V2PreviewEvent{NodeID: p.NodeID, ContentType: p.ContentType, DataBase64: base64.StdEncoding.EncodeToString(p.Data)})
}

func (f *v2Follower) sendProgress(p *V2Progress) bool {
	f.pending = nil
	f.lastProgress = time.Now()
	return f.send(v2EventProgress, p)
}

func (f *v2Follower) send(kind string, v any) bool {
	data, err := marshalJSON(v)
	if err != nil {
		return false
	}
	var b bytes.Buffer
	b.WriteString("event: " + kind + "\ndata: ")
	b.Write(bytes.TrimSuffix(data, []byte("\n")))
	b.WriteString("\n\n")
	return f.st.write(b.Bytes())
}

func sameInt(a, b *int) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
