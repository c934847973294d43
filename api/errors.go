package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"unicode/utf8"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/validate"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/template"
)

// Error codes of the API's error responses ({"error": {"code", "message", "details"}}).
// Submission errors also pass through the stable codes of job.SpecError and package
// template (unknown_parameter, invalid_template, …), always with a 4xx status.
const (
	CodeInvalidRequest            = job.CodeInvalidRequest   // 400: malformed JSON, bad field, bad query
	CodeInvalidWorkflow           = job.CodeInvalidWorkflow  // 400: the workflow cannot be used
	CodeInvalidParams             = job.CodeInvalidParams    // 400: template parameters; details lists every violation
	CodeUnauthorized     job.Code = "unauthorized"           // 401: no key or an unknown key
	CodeForbidden        job.Code = "forbidden"              // 403: the key's role does not allow the route
	CodeNotFound         job.Code = "not_found"              // 404: no such job, template, file or route
	CodeMethodNotAllowed job.Code = "method_not_allowed"     // 405
	CodeConflict         job.Code = "conflict"               // 409: the job already ended, the template exists
	CodeTooLarge                  = job.CodeTooLarge         // 413: body, image or workflow over its limit
	CodeUnsupportedMedia job.Code = "unsupported_media_type" // 415: a body that is not JSON
	CodeInternal                  = job.CodeInternal         // 500: generic; details are only in the server's log
	CodeUnavailable      job.Code = "unavailable"            // 503: Redis, storage or object_info unreachable
)

// errorCodes returns every code an error answer can carry: the API's own and those of
// refused submissions (job.SpecCodes), each once. The OpenAPI document's enum of
// Error.error.code comes from here.
func errorCodes() []job.Code {
	codes := []job.Code{CodeInvalidRequest, CodeInvalidWorkflow, CodeInvalidParams, CodeUnauthorized,
		CodeForbidden, CodeNotFound, CodeMethodNotAllowed, CodeConflict, CodeTooLarge, CodeUnsupportedMedia,
		CodeInternal, CodeUnavailable, CodeRateLimited, CodeTooManyInFlight, CodeQueueForbidden}
	for _, c := range job.SpecCodes() {
		if !slices.Contains(codes, c) {
			codes = append(codes, c)
		}
	}
	return codes
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorInfo `json:"error"`
}

// ErrorInfo describes an error: a stable code, a message for humans, the offending
// field when there is one, and structured details (for invalid_params, the list of
// violations).
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Details any    `json:"details,omitempty"`
}

// httpError is an error with its response.
type httpError struct {
	status int
	info   ErrorInfo
	header http.Header
}

func (e *httpError) Error() string { return e.info.Code + ": " + e.info.Message }

func errorf(status int, code job.Code, format string, args ...any) *httpError {
	return &httpError{status: status, info: ErrorInfo{Code: string(code), Message: fmt.Sprintf(format, args...)}}
}

// errClientGone marks a request whose client went away: nothing is written.
var errClientGone = errors.New("api: client gone")

// toHTTPError maps an error to its response. Errors it does not know become a 500
// with a generic message; the caller logs the original.
func toHTTPError(err error) (*httpError, bool) {
	var he *httpError
	if errors.As(err, &he) {
		return he, true
	}
	var se *job.SpecError
	if errors.As(err, &se) {
		status := http.StatusBadRequest
		code := se.Code
		switch code {
		case "":
			code = CodeInvalidRequest
		case job.CodeTooLarge:
			status = http.StatusRequestEntityTooLarge
		case job.CodeIdempotencyKeyReuse:
			status = http.StatusUnprocessableEntity
		}
		return &httpError{status: status, info: ErrorInfo{Code: string(code), Message: se.Message, Field: se.Field, Details: se.Details}}, true
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "the request body is larger than %d bytes", mbe.Limit), true
	}
	switch {
	case errors.Is(err, job.ErrNotFound):
		return errorf(http.StatusNotFound, CodeNotFound, "no such job (wrong id, or expired after its retention)"), true
	case errors.Is(err, job.ErrTerminal):
		return errorf(http.StatusConflict, CodeConflict, "the job already ended"), true
	case errors.Is(err, template.ErrNotFound):
		return errorf(http.StatusNotFound, CodeNotFound, "no such template"), true
	case errors.Is(err, template.ErrExists):
		return errorf(http.StatusConflict, CodeConflict, "a template with this name exists; PUT /v1/templates/{name} replaces it"), true
	case errors.Is(err, template.ErrObjectInfo):
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "object_info is unavailable: the server cannot read ComfyUI's node definitions (check --object-info)"), true
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrInvalidKey):
		return errorf(http.StatusNotFound, CodeNotFound, "no such file"), true
	}
	return nil, false
}

// writeError writes err as an error response. Unknown errors are logged with the request
// id and answered with a generic 500, so no internal detail (addresses, keys, stack
// traces) reaches the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errClientGone) || (errors.Is(err, context.Canceled) && r.Context().Err() != nil) {
		return
	}
	he, ok := toHTTPError(err)
	if !ok {
		id := requestID(r)
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", id, "tenant", ownerOf(r), "err", err)
		he = errorf(http.StatusInternalServerError, CodeInternal, "internal error (request id %s)", id)
	}
	for k, v := range he.header {
		w.Header()[k] = v
	}
	writeJSON(w, he.status, ErrorBody{Error: bounded(he.info)})
}

// Bounds of an error answer: messages quote what they refuse (a name, a path, a cycle
// through a workflow), and the input may be megabytes.
const (
	maxMessageLen    = 1024
	maxFieldLen      = 256
	maxViolations    = 100
	maxDetailsBytes  = 64 << 10
	truncationMarker = "…"
)

// bounded shortens an error's message, field and details to sizes a client can show.
func bounded(info ErrorInfo) ErrorInfo {
	info.Message = truncate(info.Message, maxMessageLen)
	info.Field = truncate(info.Field, maxFieldLen)
	if vs, ok := info.Details.([]template.Violation); ok {
		n := min(len(vs), maxViolations)
		out := make([]template.Violation, n)
		for i := range n {
			out[i] = template.Violation{Param: truncate(vs[i].Param, maxFieldLen/2), Message: truncate(vs[i].Message, maxMessageLen/4)}
		}
		info.Details = out
	}
	if ve, ok := info.Details.(*comfy.ValidationError); ok {
		// Keep as many nodes' errors as fit rather than none.
		info.Details = validate.Trim(ve, maxDetailsBytes-1024)
	}
	if info.Details != nil {
		if data, err := json.Marshal(info.Details); err != nil || len(data) > maxDetailsBytes {
			info.Details = nil
			info.Message = truncate(info.Message+" (details left out: too large)", maxMessageLen+64)
		}
	}
	return info
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + truncationMarker
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := marshalJSON(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// marshalJSON encodes v followed by a newline, leaving &, < and > as they are (output
// URLs carry query strings).
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
