package comfysim

import (
	"errors"
	"math/big"
	"net/http"
	"sort"
	"strings"
)

// The jobs API of ComfyUI 0.38 (server.py@0.38 routes, comfy_execution/jobs.py
// helpers). It exists only under /api (the routes are declared as /api/jobs,
// so the /api prefixing also serves /api/api/jobs) and only when the
// simulated version has it.

// Job statuses (jobs.JobStatus).
const (
	jobPending    = "pending"
	jobInProgress = "in_progress"
	jobCompleted  = "completed"
	jobFailed     = "failed"
	jobCancelled  = "cancelled"
)

var jobStatuses = []string{jobPending, jobInProgress, jobCompleted, jobFailed, jobCancelled}

// routeJobs serves the jobs routes and reports whether path was one.
func (s *Server) routeJobs(w http.ResponseWriter, r *http.Request, stripped string, prefixed bool) bool {
	if !s.jobsAPI() {
		return false
	}
	var rest string
	switch {
	case prefixed && (stripped == "/jobs" || strings.HasPrefix(stripped, "/jobs/")):
		rest = stripped[len("/jobs"):]
	case stripped == "/api/jobs" || strings.HasPrefix(stripped, "/api/jobs/"):
		rest = stripped[len("/api/jobs"):]
	default:
		return false
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	allow := func(methods string) {
		w.Header().Set("Allow", methods)
		writeText(w, http.StatusMethodNotAllowed, "405: Method Not Allowed")
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxUploadSize)
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	switch {
	case rest == "":
		if method != http.MethodGet {
			allow("GET,HEAD")
			return true
		}
		s.handleListJobs(w, r)
	case len(parts) == 1 && parts[0] == "cancel" && method == http.MethodPost:
		s.handleCancelJobs(w, r)
	case len(parts) == 1 && parts[0] != "":
		if method != http.MethodGet {
			allow("GET,HEAD")
			return true
		}
		s.handleGetJob(w, parts[0])
	case len(parts) == 2 && parts[0] != "" && parts[1] == "cancel":
		if method != http.MethodPost {
			allow("POST")
			return true
		}
		writeJSON(w, http.StatusOK, obj("cancelled", s.cancelJob(parts[0])))
	default:
		writeText(w, http.StatusNotFound, "404: Not Found")
	}
	return true
}

func jobsError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, obj("error", msg))
}

// handleListJobs is GET /api/jobs: filter, sort, paginate.
func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var statusFilter []string
	if p := q.Get("status"); p != "" {
		var invalid []string
		for _, st := range strings.Split(p, ",") {
			st = strings.ToLower(strings.TrimSpace(st))
			if st == "" {
				continue
			}
			statusFilter = append(statusFilter, st)
			if !contains(jobStatuses, st) {
				invalid = append(invalid, st)
			}
		}
		if len(invalid) > 0 {
			jobsError(w, http.StatusBadRequest, "Invalid status value(s): "+strings.Join(invalid, ", ")+
				". Valid values: "+strings.Join(jobStatuses, ", "))
			return
		}
	}
	sortBy, sortOrder := "created_at", "desc"
	if q.Has("sort_by") {
		sortBy = strings.ToLower(q.Get("sort_by"))
	}
	if q.Has("sort_order") {
		sortOrder = strings.ToLower(q.Get("sort_order"))
	}
	if sortBy != "created_at" && sortBy != "execution_duration" {
		jobsError(w, http.StatusBadRequest, "sort_by must be 'created_at' or 'execution_duration'")
		return
	}
	if sortOrder != "asc" && sortOrder != "desc" {
		jobsError(w, http.StatusBadRequest, "sort_order must be 'asc' or 'desc'")
		return
	}
	var limit any // None
	lim := -1
	if q.Has("limit") {
		n, ok := pyAtoi(q.Get("limit"))
		if !ok {
			jobsError(w, http.StatusBadRequest, "limit must be an integer")
			return
		}
		if n <= 0 {
			jobsError(w, http.StatusBadRequest, "limit must be a positive integer")
			return
		}
		limit, lim = n, n
	}
	offset := 0
	if q.Has("offset") {
		n, ok := pyAtoi(q.Get("offset"))
		if !ok {
			jobsError(w, http.StatusBadRequest, "offset must be an integer")
			return
		}
		offset = max(n, 0)
	}
	workflowID := q.Get("workflow_id")

	inst := s.current()
	inst.mu.Lock()
	var jobs []*object
	if statusFilter == nil {
		statusFilter = jobStatuses
	}
	if contains(statusFilter, jobInProgress) && inst.running != nil {
		jobs = append(jobs, normalizeQueueItem(inst.running, jobInProgress, false))
	}
	if contains(statusFilter, jobPending) {
		for _, it := range inst.queue { // the heap array, as get_current_queue_volatile
			jobs = append(jobs, normalizeQueueItem(it, jobPending, false))
		}
	}
	if contains(statusFilter, jobCompleted) || contains(statusFilter, jobFailed) || contains(statusFilter, jobCancelled) {
		for _, id := range inst.history.Keys() {
			e, _ := inst.history.Get(id)
			job := normalizeHistoryItem(id, e.(*object), false)
			st, _ := job.getString("status")
			if contains(statusFilter, st) {
				jobs = append(jobs, job)
			}
		}
	}
	inst.mu.Unlock()

	if workflowID != "" {
		kept := jobs[:0]
		for _, j := range jobs {
			if v, ok := j.Get("workflow_id"); ok && pyEqual(v, workflowID) {
				kept = append(kept, j)
			}
		}
		jobs = kept
	}
	sortJobs(jobs, sortBy, sortOrder == "desc")
	total := len(jobs)
	if offset > 0 {
		jobs = jobs[min(offset, len(jobs)):]
	}
	if lim >= 0 && lim < len(jobs) {
		jobs = jobs[:lim]
	}
	list := make([]any, len(jobs))
	for i, j := range jobs {
		list[i] = j
	}
	writeJSON(w, http.StatusOK, obj("jobs", list, "pagination", obj(
		"offset", offset, "limit", limit, "total", total, "has_more", offset+len(jobs) < total)))
}

// sortJobs is jobs.apply_sorting: Python's stable sorted, also when reversed.
func sortJobs(jobs []*object, by string, desc bool) {
	key := func(j *object) float64 {
		num := func(k string) float64 {
			v, ok := j.Get(k)
			if !ok {
				return 0
			}
			return numberValue(v)
		}
		if by == "execution_duration" {
			start, end := num("execution_start_time"), num("execution_end_time")
			if start != 0 && end != 0 {
				return end - start
			}
			return 0
		}
		return num("create_time")
	}
	sort.SliceStable(jobs, func(a, b int) bool {
		if desc {
			return key(jobs[a]) > key(jobs[b])
		}
		return key(jobs[a]) < key(jobs[b])
	})
}

func numberValue(v any) float64 {
	switch n := v.(type) {
	case int:
		return float64(n)
	case int64:
		return float64(n)
	case *big.Int:
		f, _ := new(big.Float).SetInt(n).Float64()
		return f
	case pyFloat:
		return float64(n)
	}
	return 0
}

// handleGetJob is GET /api/jobs/{id}: history first, then running, then
// pending; 404 otherwise.
func (s *Server) handleGetJob(w http.ResponseWriter, id string) {
	inst := s.current()
	inst.mu.Lock()
	var job *object
	if e, ok := inst.history.Get(id); ok {
		job = normalizeHistoryItem(id, e.(*object), true)
	} else if inst.running != nil && inst.running.promptID == id {
		job = normalizeQueueItem(inst.running, jobInProgress, true)
	} else {
		for _, it := range inst.queue {
			if it.promptID == id {
				job = normalizeQueueItem(it, jobPending, true)
				break
			}
		}
	}
	inst.mu.Unlock()
	if job == nil {
		jobsError(w, http.StatusNotFound, "Job not found")
		return
	}
	writeJSON(w, http.StatusOK, job)
}

// cancelJob is server.py's _cancel_job_by_id over jobs.cancel_job. The
// classification and the action happen under the queue lock, which is
// PromptQueue.interrupt_if_running's atomicity: a prompt that already moved
// to history is a no-op, never an interrupt of its successor.
func (s *Server) cancelJob(id string) bool {
	inst := s.current()
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.running != nil && inst.running.promptID == id {
		inst.setInterrupt()
		return true
	}
	for _, it := range inst.queue {
		if it.promptID == id {
			inst.deleteQueueItemLocked(id)
			return true
		}
	}
	return false // terminal (in history) or unknown
}

// handleCancelJobs is POST /api/jobs/cancel {"job_ids": [...]}.
func (s *Server) handleCancelJobs(w http.ResponseWriter, r *http.Request) {
	body, err := readJSON(r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeServerError(w, r, err)
			return
		}
		jobsError(w, http.StatusBadRequest, "Request body must be valid JSON")
		return
	}
	var ids []any
	ok := false
	if o, isObj := body.(*object); isObj {
		v, _ := o.Get("job_ids")
		ids, ok = v.([]any)
	}
	if !ok {
		jobsError(w, http.StatusBadRequest, "job_ids must be a list")
		return
	}
	invalid := []any{}
	for _, id := range ids {
		if validJobID(id) {
			continue
		}
		if str, isStr := id.(string); isStr {
			invalid = append(invalid, str)
		} else {
			invalid = append(invalid, pyRepr(id))
		}
	}
	if len(invalid) > 0 {
		writeJSON(w, http.StatusBadRequest, obj("error", "job_ids contains invalid id(s)", "invalid_ids", invalid))
		return
	}
	cancelled := false
	for _, id := range ids {
		if s.cancelJob(id.(string)) {
			cancelled = true
		}
	}
	writeJSON(w, http.StatusOK, obj("cancelled", cancelled))
}

// jobMetadata is jobs._extract_job_metadata.
func jobMetadata(extra *object) (createTime, workflowID any) {
	createTime, _ = extra.Get("create_time")
	if p, ok := extra.Get("extra_pnginfo"); ok {
		if po, ok := p.(*object); ok {
			if wf, ok := po.Get("workflow"); ok {
				if wo, ok := wf.(*object); ok {
					workflowID, _ = wo.Get("id")
				}
			}
		}
	}
	return createTime, workflowID
}

// pruned is comfy_api.internal.prune_dict over key/value pairs: None values
// are left out.
func pruned(kv ...any) *object {
	o := newObject()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != nil {
			o.Set(kv[i].(string), kv[i+1])
		}
	}
	return o
}

// normalizeQueueItem is jobs.normalize_queue_item (the sixth element is
// never part of it).
func normalizeQueueItem(it *queueItem, status string, withWorkflow bool) *object {
	createTime, workflowID := jobMetadata(it.extra)
	job := pruned("id", it.promptID, "status", status, "priority", it.number, "create_time", createTime,
		"outputs_count", 0, "previewable_outputs_count", 0, "workflow_id", workflowID)
	if withWorkflow {
		job.Set("workflow", obj("prompt", it.prompt, "extra_data", it.extra))
	}
	return job
}

// normalizeHistoryItem is jobs.normalize_history_item.
func normalizeHistoryItem(id string, e *object, withOutputs bool) *object {
	pv, _ := e.Get("prompt")
	tuple, _ := pv.([]any)
	var priority, prompt any
	extra := newObject()
	if len(tuple) >= 5 {
		priority, prompt = tuple[0], tuple[2]
		if eo, ok := tuple[3].(*object); ok {
			extra = eo
		}
	}
	createTime, workflowID := jobMetadata(extra)
	status := e.getObject("status")
	outputs := e.getObject("outputs")
	count, preview := outputsSummary(outputs)
	previewable := countPreviewable(outputs)

	var execError, start, end any
	interrupted := false
	statusStr := ""
	if status != nil {
		statusStr, _ = status.getString("status_str")
		msgs, _ := status.Get("messages")
		l, _ := msgs.([]any)
		for _, m := range l {
			pair, ok := m.([]any)
			if !ok || len(pair) < 2 {
				continue
			}
			name, _ := pair[0].(string)
			data, ok := pair[1].(*object)
			if !ok {
				continue
			}
			switch name {
			case "execution_start":
				start, _ = data.Get("timestamp")
			case "execution_success", "execution_error", "execution_interrupted":
				end, _ = data.Get("timestamp")
				switch name {
				case "execution_error":
					execError = data
				case "execution_interrupted":
					interrupted = true
				}
			}
		}
	}
	st := jobCompleted
	if statusStr == "error" {
		st = jobFailed
		if interrupted {
			st = jobCancelled
		}
	}
	var previewV any
	if preview != nil {
		previewV = preview
	}
	job := pruned("id", id, "status", st, "priority", priority, "create_time", createTime,
		"execution_start_time", start, "execution_end_time", end, "execution_error", execError,
		"outputs_count", count, "previewable_outputs_count", previewable, "preview_output", previewV,
		"workflow_id", workflowID)
	if withOutputs {
		job.Set("outputs", normalizeOutputs(outputs))
		var sv any
		if status != nil {
			sv = status
		}
		job.Set("execution_status", sv)
		job.Set("workflow", obj("prompt", prompt, "extra_data", extra))
	}
	return job
}

// threeDExtensions and textExtensions are jobs.THREE_D_EXTENSIONS and
// TEXT_EXTENSIONS.
var (
	threeDExtensions   = []string{".obj", ".fbx", ".gltf", ".glb", ".usdz"}
	textExtensions     = []string{".txt", ".md", ".json"}
	previewableMediaTy = []string{"images", "video", "audio", "3d", "text"}
)

func hasSuffixFold(name string, exts []string) bool {
	l := strings.ToLower(name)
	for _, e := range exts {
		if strings.HasSuffix(l, e) {
			return true
		}
	}
	return false
}

// normalizeOutputItem is jobs.normalize_output_item: a 3D file given as a
// string becomes a file dict; other non-dicts are nil (kept as they are by
// the caller).
func normalizeOutputItem(item any) *object {
	switch v := item.(type) {
	case string:
		if hasSuffixFold(v, threeDExtensions) {
			return obj("filename", v, "type", "output", "subfolder", "", "mediaType", "3d")
		}
	case *object:
		return v
	}
	return nil
}

// normalizeOutputs is jobs.normalize_outputs over a history outputs
// dict: None items dropped, 3D file strings made dicts, everything else as
// is.
func normalizeOutputs(outputs *object) *object {
	out := newObject()
	if outputs == nil {
		return out
	}
	for _, nodeID := range outputs.Keys() {
		nv, _ := outputs.Get(nodeID)
		no, ok := nv.(*object)
		if !ok {
			out.Set(nodeID, nv)
			continue
		}
		nn := newObject()
		for _, media := range no.Keys() {
			items, _ := no.Get(media)
			l, isList := items.([]any)
			if media == "animated" || !isList {
				nn.Set(media, items)
				continue
			}
			norm := []any{}
			for _, it := range l {
				if it == nil {
					continue
				}
				if n := normalizeOutputItem(it); n != nil {
					norm = append(norm, n)
				} else {
					norm = append(norm, it)
				}
			}
			nn.Set(media, norm)
		}
		out.Set(nodeID, nn)
	}
	return out
}

func isPreviewable(media string, item *object) bool {
	if contains(previewableMediaTy, media) {
		return true
	}
	if f, _ := item.getString("format"); strings.HasPrefix(f, "video/") || strings.HasPrefix(f, "audio/") {
		return true
	}
	fn, _ := item.getString("filename")
	return hasSuffixFold(fn, threeDExtensions) || hasSuffixFold(fn, textExtensions)
}

func isTextPreview(media string, item *object) bool {
	if media == "text" {
		return true
	}
	fn, _ := item.getString("filename")
	return hasSuffixFold(fn, textExtensions)
}

// outputsSummary is jobs.get_outputs_summary: the output count and the
// preview (saved visual media, then other visual media, then a saved text
// file, then raw text).
func outputsSummary(outputs *object) (int, *object) {
	count := 0
	var preview, fallback, textFile, text *object
	if outputs == nil {
		return 0, nil
	}
	for _, nodeID := range outputs.Keys() {
		nv, _ := outputs.Get(nodeID)
		no, ok := nv.(*object)
		if !ok {
			continue
		}
		for _, media := range no.Keys() {
			items, _ := no.Get(media)
			l, isList := items.([]any)
			if media == "animated" || !isList {
				continue
			}
			for _, it := range l {
				item, isDict := it.(*object)
				if !isDict {
					item = normalizeOutputItem(it)
					if item == nil {
						if media == "text" && preview == nil && text == nil {
							tv := pyStr(it)
							p := obj("content", tv)
							if r := []rune(tv); len(r) > 1024 {
								p = obj("content", string(r[:1024]), "truncated", true)
							}
							p.Set("nodeId", nodeID)
							p.Set("mediaType", media)
							text = p
						}
						continue
					}
				}
				count++
				if preview != nil || !isPreviewable(media, item) {
					continue
				}
				enriched := copyObject(item)
				enriched.Set("nodeId", nodeID)
				if !item.Has("mediaType") {
					enriched.Set("mediaType", media)
				}
				t, _ := item.Get("type")
				switch {
				case isTextPreview(media, item):
					if textFile == nil {
						textFile = enriched
					}
				case pyEqual(t, "output"):
					preview = enriched
				case fallback == nil:
					fallback = enriched
				}
			}
		}
	}
	for _, p := range []*object{preview, fallback, textFile, text} {
		if p != nil {
			return count, p
		}
	}
	return count, nil
}

// countPreviewable is jobs.count_previewable_outputs.
func countPreviewable(outputs *object) int {
	n := 0
	if outputs == nil {
		return 0
	}
	for _, nodeID := range outputs.Keys() {
		nv, _ := outputs.Get(nodeID)
		no, ok := nv.(*object)
		if !ok {
			continue
		}
		for _, media := range no.Keys() {
			items, _ := no.Get(media)
			l, isList := items.([]any)
			if media == "animated" || !isList {
				continue
			}
			for _, it := range l {
				item, isDict := it.(*object)
				if !isDict {
					if item = normalizeOutputItem(it); item == nil {
						continue
					}
				}
				if isPreviewable(media, item) {
					n++
				}
			}
		}
	}
	return n
}
