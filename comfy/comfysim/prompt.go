package comfysim

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
)

// handleGetPrompt is GET /prompt: the queue size.
func (s *Server) handleGetPrompt(w http.ResponseWriter, _ *http.Request, _ string) {
	inst := s.current()
	inst.mu.Lock()
	info := inst.queueInfoLocked()
	inst.mu.Unlock()
	writeJSON(w, http.StatusOK, info)
}

// handlePostPrompt is POST /prompt (server.py post_prompt).
func (s *Server) handlePostPrompt(w http.ResponseWriter, r *http.Request, _ string) {
	body, err := readJSON(r)
	if err != nil {
		writeServerError(w, r, err)
		return
	}
	inst := s.current()
	data, isObj := body.(*object)
	if !isObj {
		// `"number" in json_data` and `"prompt" in json_data` on a list or a
		// string test membership; anything else raises.
		var has func(k string) bool
		switch b := body.(type) {
		case []any:
			has = func(k string) bool { return containsPy(b, k) }
		case string:
			has = func(k string) bool { return strings.Contains(b, k) }
		default:
			writeServerError(w, r, errInternal)
			return
		}
		if has("number") || has("prompt") {
			writeServerError(w, r, errInternal)
			return
		}
		inst.nextNumber(false)
		s.rejectPrompt(w, noPromptError())
		return
	}

	var number any
	if n, ok := data.Get("number"); ok {
		f, perr := pyFloatConv(n)
		if perr != nil {
			writeServerError(w, r, perr)
			return
		}
		number = f
	} else {
		front, _ := data.Get("front")
		number = inst.nextNumber(pyTruthy(front))
	}

	promptV, ok := data.Get("prompt")
	if !ok {
		s.rejectPrompt(w, noPromptError())
		return
	}
	promptID := uuid.NewString()
	if v, ok := data.Get("prompt_id"); ok {
		switch {
		case !s.jobsAPI():
			promptID = pyStr(v)
		case v == nil: // 0.38: an explicit null lets the server mint the id
		case validJobID(v):
			promptID = v.(string)
		default:
			s.rejectPrompt(w, invalidPromptIDError())
			return
		}
	}
	partial, hasPartial := data.Get("partial_execution_targets")
	valid, verr, outputs, nodeErrors, err := s.validatePrompt(promptV, partial, hasPartial)
	if err != nil {
		writeServerError(w, r, err)
		return
	}
	extra := newObject()
	if e, ok := data.Get("extra_data"); ok {
		eo, isObj := e.(*object)
		if !isObj {
			writeServerError(w, r, errInternal)
			return
		}
		extra = eo
	}
	if c, ok := data.Get("client_id"); ok {
		extra.Set("client_id", c)
	}
	var sensitive *object
	if s.jobsAPI() {
		if !extra.Has("comfy_usage_source") {
			if src := r.Header.Get("Comfy-Usage-Source"); src != "" {
				extra.Set("comfy_usage_source", src)
			}
		}
	}
	if !valid {
		s.rejectPrompt(w, obj("error", verr, "node_errors", nodeErrors))
		return
	}
	if s.jobsAPI() {
		// server.py@0.38 moves the secrets into a sixth queue element that
		// /queue, /api/jobs and history never show, and stamps create_time.
		sensitive = newObject()
		for _, k := range sensitiveExtraDataKeys {
			if v, ok := extra.Get(k); ok {
				sensitive.Set(k, v)
				extra.Delete(k)
			}
		}
		extra.Set("create_time", time.Now().UnixMilli())
	}
	prompt := promptV.(*object)
	inst.put(&queueItem{number: number, promptID: promptID, prompt: prompt, extra: extra, outputs: outputs, sensitive: sensitive})
	s.updateStats(func(st *Stats) { st.PromptsAccepted++ })
	s.log.Debug("comfysim: prompt queued", "prompt_id", promptID)
	writeJSON(w, http.StatusOK, obj("prompt_id", promptID, "number", number, "node_errors", nodeErrors))
}

func noPromptError() *object {
	return obj("error", obj("type", "no_prompt", "message", "No prompt provided", "details", "No prompt provided",
		"extra_info", newObject()), "node_errors", newObject())
}

func (s *Server) rejectPrompt(w http.ResponseWriter, body *object) {
	s.updateStats(func(st *Stats) { st.PromptsRejected++ })
	writeJSON(w, http.StatusBadRequest, body)
}
