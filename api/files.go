package api

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/storage"
)

// getFile serves GET /v1/files/{key...}: an object of the store, for stores that have no
// URLs of their own (a file store without base_url). The key is validated by the store's
// rules (no "..", no leading "/", no control characters) before anything is opened.
//
// The content is served as a download in a sandbox: a stored HTML or SVG file never
// runs as a page of the API's origin.
func (s *Server) getFile(w http.ResponseWriter, r *http.Request) error {
	key := r.PathValue("key")
	if err := storage.ValidateKey(key); err != nil {
		return errorf(http.StatusNotFound, CodeNotFound, "no such file")
	}
	if !s.fileVisible(r, key) {
		return errorf(http.StatusNotFound, CodeNotFound, "no such file")
	}
	body, obj, err := s.storage.Get(r.Context(), key)
	if err != nil {
		return err
	}
	defer body.Close()
	h := w.Header()
	ct := obj.ContentType
	if ct == "" {
		ct = storage.TypeByKey(key)
	}
	h.Set("Content-Type", ct)
	if obj.Size > 0 {
		h.Set("Content-Length", strconv.FormatInt(obj.Size, 10))
	}
	if obj.SHA256 != "" {
		h.Set("ETag", `"`+obj.SHA256+`"`)
		if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, obj.SHA256) {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
	}
	if !obj.ModTime.IsZero() {
		h.Set("Last-Modified", obj.ModTime.UTC().Format(http.TimeFormat))
	}
	h.Set("Cache-Control", "private, max-age=3600")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; "+frameAncestorsNone)
	if !inlineType(ct) {
		h.Set("Content-Disposition", "attachment")
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	// Large outputs (video) take longer than the server's write timeout: each write gets
	// its own deadline instead, so only a client that stops reading is dropped.
	dw := &deadlineWriter{w: w, rc: http.NewResponseController(w)}
	_, _ = io.Copy(dw, body) // a failure here is the client's: the status is sent
	return nil
}

// fileVisible reports whether the request may read the object key. An admin key reads
// any; a user key only the outputs of its tenant's jobs: keys the worker writes as
// PREFIX/JOB_ID/NODE/NAME, whose first segment that is a job id names a job the key
// sees. Any other object (an input, a key of no job) is an admin's.
func (s *Server) fileVisible(r *http.Request, key string) bool {
	if tenantOf(r) == "" {
		return true
	}
	for _, seg := range strings.Split(key, "/") {
		if job.ValidID(seg) {
			_, err := s.jobFor(r, seg)
			return err == nil
		}
	}
	return false
}

// deadlineWriter sets a write deadline before each write.
type deadlineWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (d *deadlineWriter) Write(b []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	return d.w.Write(b)
}

// inlineType reports whether a content type is safe to show inline: raster images,
// audio, video, plain text and JSON. Anything else (HTML, SVG, …) is a download.
func inlineType(ct string) bool {
	mt, _, _ := strings.Cut(strings.ToLower(ct), ";")
	mt = strings.TrimSpace(mt)
	switch {
	case mt == "image/svg+xml":
		return false
	case strings.HasPrefix(mt, "image/"), strings.HasPrefix(mt, "audio/"), strings.HasPrefix(mt, "video/"):
		return true
	case mt == "text/plain", mt == "application/json":
		return true
	}
	return false
}
