package comfysim

import (
	"net/http"
)

// handleGetQueue is GET /queue: the running item and the pending heap array,
// unsorted, exactly as ComfyUI returns it.
func (s *Server) handleGetQueue(w http.ResponseWriter, _ *http.Request, _ string) {
	inst := s.current()
	inst.mu.Lock()
	running := []any{}
	if inst.running != nil {
		running = append(running, inst.running.tuple(false))
	}
	pending := make([]any, 0, len(inst.queue))
	for _, it := range inst.queue {
		pending = append(pending, it.tuple(false))
	}
	// Items are immutable once queued, so encoding outside the lock is safe.
	inst.mu.Unlock()
	writeJSON(w, http.StatusOK, obj("queue_running", running, "queue_pending", pending))
}

// handlePostQueue is POST /queue {"clear": true, "delete": [ids]}: pending
// items only.
func (s *Server) handlePostQueue(w http.ResponseWriter, r *http.Request, _ string) {
	body, err := readJSON(r)
	if err != nil {
		writeServerError(w, r, err)
		return
	}
	clearAll, del, err := clearDelete(body)
	if err != nil {
		writeServerError(w, r, err)
		return
	}
	inst := s.current()
	inst.mu.Lock()
	if clearAll {
		inst.queue = nil
		inst.queueUpdatedLocked()
	}
	for _, id := range del {
		if sid, ok := id.(string); ok {
			inst.deleteQueueItemLocked(sid)
		}
	}
	inst.mu.Unlock()
	writeEmpty(w, http.StatusOK)
}

// clearDelete reads {"clear": bool, "delete": [...]} as server.py does.
func clearDelete(body any) (bool, []any, error) {
	o, ok := body.(*object)
	if !ok {
		return false, nil, nil
	}
	clearAll := false
	if c, ok := o.Get("clear"); ok {
		clearAll = pyTruthy(c)
	}
	var del []any
	if d, ok := o.Get("delete"); ok {
		switch l := d.(type) {
		case []any:
			del = l
		case string:
			for _, r := range l {
				del = append(del, string(r))
			}
		case *object:
			for _, k := range l.Keys() {
				del = append(del, k)
			}
		default:
			return false, nil, errInternal
		}
	}
	return clearAll, del, nil
}

// handleGetHistory is GET /history?max_items=N&offset=K.
func (s *Server) handleGetHistory(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	maxItems, hasMax := 0, false
	if q.Has("max_items") {
		n, ok := pyAtoi(q.Get("max_items"))
		if !ok {
			writeServerError(w, r, errInternal)
			return
		}
		maxItems, hasMax = n, true
	}
	offset := -1
	if q.Has("offset") {
		n, ok := pyAtoi(q.Get("offset"))
		if !ok {
			writeServerError(w, r, errInternal)
			return
		}
		offset = n
	}
	inst := s.current()
	inst.mu.Lock()
	out := newObject()
	h := &inst.history
	if offset < 0 && hasMax {
		offset = h.Len() - maxItems
	}
	for i, k := range h.Keys() {
		if i >= offset {
			v, _ := h.Get(k)
			out.Set(k, v)
			if hasMax && out.Len() >= maxItems {
				break
			}
		}
	}
	inst.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// pyAtoi is int(str) for query parameters (negative values allowed).
func pyAtoi(s string) (int, bool) {
	i, ok := parsePyInt(s)
	if !ok || !i.IsInt64() {
		return 0, false
	}
	return int(i.Int64()), true
}

// handleGetHistoryItem is GET /history/{prompt_id}: {id: entry} or {}.
func (s *Server) handleGetHistoryItem(w http.ResponseWriter, _ *http.Request, id string) {
	inst := s.current()
	inst.mu.Lock()
	out := newObject()
	if e, ok := inst.history.Get(id); ok {
		out.Set(id, e)
	}
	inst.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// handlePostHistory is POST /history {"clear": true, "delete": [ids]}.
func (s *Server) handlePostHistory(w http.ResponseWriter, r *http.Request, _ string) {
	body, err := readJSON(r)
	if err != nil {
		writeServerError(w, r, err)
		return
	}
	clearAll, del, err := clearDelete(body)
	if err != nil {
		writeServerError(w, r, err)
		return
	}
	inst := s.current()
	inst.mu.Lock()
	if clearAll {
		inst.history = object{}
	}
	for _, id := range del {
		if sid, ok := id.(string); ok {
			inst.history.Delete(sid)
		}
	}
	inst.mu.Unlock()
	writeEmpty(w, http.StatusOK)
}

// handleInterrupt is POST /interrupt: global, or {"prompt_id"} only when that
// prompt is running. Always 200.
func (s *Server) handleInterrupt(w http.ResponseWriter, r *http.Request, _ string) {
	var promptID any
	if body, err := readJSON(r); err == nil {
		if o, ok := body.(*object); ok {
			promptID, _ = o.Get("prompt_id")
		}
	}
	inst := s.current()
	if pyTruthy(promptID) {
		inst.mu.Lock()
		if inst.running != nil && pyEqual(inst.running.promptID, promptID) {
			inst.setInterrupt()
		}
		inst.mu.Unlock()
	} else {
		inst.setInterrupt()
	}
	writeEmpty(w, http.StatusOK)
}

// handleFree is POST /free: the flags apply when the worker is next free.
func (s *Server) handleFree(w http.ResponseWriter, r *http.Request, _ string) {
	body, err := readJSON(r)
	if err != nil {
		writeServerError(w, r, err)
		return
	}
	o, ok := body.(*object)
	if !ok {
		writeServerError(w, r, errInternal)
		return
	}
	inst := s.current()
	inst.mu.Lock()
	for _, k := range []string{"unload_models", "free_memory"} {
		if v, ok := o.Get(k); ok && pyTruthy(v) {
			inst.flags[k] = v
		}
	}
	inst.mu.Unlock()
	inst.signal()
	writeEmpty(w, http.StatusOK)
}
