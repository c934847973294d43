package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/comfyq/comfyq/api/apiclient"
	"github.com/comfyq/comfyq/internal/netguard"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/storage"
)

// Wire types of package apiclient (see templates.go).
type (
	Accepted = apiclient.Accepted
	JobList  = apiclient.JobList
)

// IdempotencyHeader is the request header that makes a retried submission return the
// same job.
const IdempotencyHeader = apiclient.IdempotencyHeader

func (s *Server) createJob(w http.ResponseWriter, r *http.Request) error {
	var spec job.Spec
	if err := decodeJSON(r, &spec); err != nil {
		return err
	}
	return s.submit(w, r, spec)
}

// submit validates and enqueues a submission and answers 202.
func (s *Server) submit(w http.ResponseWriter, r *http.Request, spec job.Spec) error {
	if key := r.Header.Get(IdempotencyHeader); key != "" {
		if spec.IdempotencyKey != "" && spec.IdempotencyKey != key {
			return &job.SpecError{Code: CodeInvalidRequest, Field: "idempotency_key", Message: "the Idempotency-Key header and the body's idempotency_key differ"}
		}
		spec.IdempotencyKey = key
	}
	// Checked here too because job.Spec.Normalize compares after converting to a
	// time.Duration, which wraps around for values near 2^63 ns.
	if maxS := int(job.MaxTimeout / time.Second); spec.TimeoutS > maxS {
		return &job.SpecError{Code: CodeInvalidRequest, Field: "timeout_s", Message: fmt.Sprintf("timeout_s must be between 1 and %d", maxS)}
	}
	if err := s.checkImages(r.Context(), spec.Images); err != nil {
		return err
	}
	if spec.Webhook != nil && spec.Webhook.URL != "" {
		if err := s.checkURL(r.Context(), spec.Webhook.URL); err != nil {
			return &job.SpecError{Code: CodeInvalidRequest, Field: "webhook.url", Message: err.Error()}
		}
	}
	j, err := s.producer.Enqueue(r.Context(), spec)
	if err != nil {
		return err
	}
	base := s.baseURL(r)
	acc := Accepted{
		ID:        j.ID,
		Status:    j.Status,
		Queue:     j.Queue,
		StatusURL: base + "/v1/jobs/" + j.ID,
		EventsURL: base + "/v1/jobs/" + j.ID + "/events",
	}
	w.Header().Set("Location", acc.StatusURL)
	writeJSON(w, http.StatusAccepted, acc)
	return nil
}

// checkImages refuses image sources that cannot work, before anything is enqueued:
// base64 that does not decode or is over MaxImageBytes, URLs that are not http(s), keys
// that name no object.
func (s *Server) checkImages(ctx context.Context, images map[string]job.ImageSource) error {
	targets := make([]string, 0, len(images))
	for t := range images {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, t := range targets {
		img := images[t]
		field := "images." + t
		switch {
		case img.Base64 != "":
			data := img.Base64
			if i := strings.Index(data, ";base64,"); strings.HasPrefix(data, "data:") && i > 0 {
				data = data[i+len(";base64,"):]
			}
			if int64(base64.StdEncoding.DecodedLen(len(data))) > s.cfg.MaxImageBytes+2 {
				return tooLargeImage(field, s.cfg.MaxImageBytes)
			}
			n, err := io.Copy(io.Discard, base64.NewDecoder(base64.StdEncoding, strings.NewReader(data)))
			if err != nil {
				return &job.SpecError{Code: CodeInvalidRequest, Field: field, Message: "base64 does not decode (standard alphabet with padding, optionally as a data: URL)"}
			}
			if n > s.cfg.MaxImageBytes {
				return tooLargeImage(field, s.cfg.MaxImageBytes)
			}
		case img.URL != "":
			if err := s.checkURL(ctx, img.URL); err != nil {
				return &job.SpecError{Code: CodeInvalidRequest, Field: field, Message: err.Error()}
			}
		case img.Key != "":
			if err := storage.ValidateKey(img.Key); err != nil {
				return &job.SpecError{Code: CodeInvalidRequest, Field: field, Message: "key is not a valid storage key"}
			}
			if _, err := s.storage.Stat(ctx, storage.InputKey(s.storage, img.Key)); errors.Is(err, storage.ErrNotFound) {
				return &job.SpecError{Code: CodeInvalidRequest, Field: field, Message: fmt.Sprintf("no object with key %q in storage", img.Key)}
			} else if err != nil {
				// Storage may be briefly unreachable; the worker reports a real problem.
				s.log.Warn("submission: cannot check an input key", "key", img.Key, "err", err)
			}
		}
	}
	return nil
}

// urlCheckTimeout bounds the DNS lookup of a submitted URL.
const urlCheckTimeout = 2 * time.Second

// checkURL refuses, before anything is enqueued, a URL the worker or the webhook task
// would refuse to reach: not http(s), or naming a private or loopback address (unless
// Config.AllowPrivateURLs). The fetch itself checks again (DNS can change); a lookup
// that fails here is left to it.
func (s *Server) checkURL(ctx context.Context, raw string) error {
	ctx, cancel := context.WithTimeout(ctx, urlCheckTimeout)
	defer cancel()
	err := s.urlPolicy.CheckURL(ctx, raw)
	if errors.Is(err, netguard.ErrInvalidURL) || errors.Is(err, netguard.ErrForbiddenAddress) {
		return errors.New(strings.TrimPrefix(err.Error(), "netguard: "))
	}
	return nil
}

func tooLargeImage(field string, limit int64) error {
	e := errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "the image is larger than %d bytes; put it in storage or behind a URL", limit)
	e.info.Field = field
	return e
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	j, err := s.store.Get(r.Context(), id)
	if err != nil {
		return err
	}
	s.presentJob(r.Context(), r, j)
	writeJSON(w, http.StatusOK, j)
	return nil
}

var listQuery = map[string]bool{"status": true, "queue": true, "limit": true, "cursor": true, "template": true}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for k := range q {
		if !listQuery[k] {
			return &job.SpecError{Code: CodeInvalidRequest, Field: k, Message: "unknown query parameter (known: status, queue, template, limit, cursor)"}
		}
	}
	// Every combination of filters is one sorted set of the store: a page costs the
	// same whatever the number of jobs.
	opts := job.ListOptions{Queue: q.Get("queue"), Template: q.Get("template"), Cursor: q.Get("cursor")}
	if st := q.Get("status"); st != "" {
		opts.Status = job.Status(st)
		if !opts.Status.Valid() {
			return &job.SpecError{Code: CodeInvalidRequest, Field: "status", Message: "status is one of queued, running, uploading, succeeded, failed, canceled"}
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return &job.SpecError{Code: CodeInvalidRequest, Field: "limit", Message: "limit is an integer from 1 to 500"}
		}
		opts.Limit = n
	}
	jobs, next, err := s.store.List(r.Context(), opts)
	if err != nil {
		return err
	}
	if jobs == nil {
		jobs = []*job.Job{}
	}
	for _, j := range jobs {
		s.presentJob(r.Context(), r, j)
	}
	writeJSON(w, http.StatusOK, JobList{Jobs: jobs, NextCursor: next})
	return nil
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !job.ValidID(id) {
		return job.ErrNotFound
	}
	j, err := s.producer.Cancel(r.Context(), id)
	if errors.Is(err, job.ErrTerminal) && j != nil {
		s.presentJob(r.Context(), r, j)
		e := errorf(http.StatusConflict, CodeConflict, "the job already ended: %s", j.Status)
		e.info.Details = map[string]any{"job": j}
		return e
	}
	if err != nil {
		return err
	}
	s.presentJob(r.Context(), r, j)
	writeJSON(w, http.StatusOK, j)
	return nil
}

// presentJob refreshes the job's output URLs: a presigned URL valid for URLTTL, or, for
// a store without URLs, the API's own /v1/files/{key}. A presigned URL is reused for a
// quarter of URLTTL (presigning costs more than the rest of a status request), so a URL
// handed out is valid for at least three quarters of URLTTL.
func (s *Server) presentJob(ctx context.Context, r *http.Request, j *job.Job) {
	for i := range j.Outputs {
		o := &j.Outputs[i]
		if o.Key == "" {
			continue
		}
		// The record names the object in the bucket; the store wants its own key.
		key, ok := storage.Unlocate(s.storage, storage.Location{Bucket: o.Bucket, Key: o.Key})
		if !ok {
			s.log.Warn("output outside this API's storage", "job_id", j.ID, "bucket", o.Bucket, "key", o.Key)
			continue
		}
		if u, ok := s.urls.get(key); ok {
			o.URL = u
			continue
		}
		u, err := s.storage.URL(ctx, key, s.cfg.URLTTL)
		switch {
		case err == nil:
			o.URL = u
			s.urls.put(key, u)
		case errors.Is(err, storage.ErrNoURL):
			o.URL = s.baseURL(r) + "/v1/files/" + escapeKey(key)
		default:
			s.log.Warn("output URL", "job_id", j.ID, "key", key, "err", err)
		}
	}
}

// escapeKey escapes each segment of a key for a URL path.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// decodeJSON reads exactly one JSON value into v, refusing unknown fields and keeping
// numbers exact (json.Number: seeds up to 2^64-1 survive).
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return &job.SpecError{Code: CodeInvalidRequest, Message: "the body has data after its JSON value"}
	}
	return nil
}

func jsonError(err error) error {
	var mbe *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return &job.SpecError{Code: CodeInvalidRequest, Message: "the body is empty; send a JSON object"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &job.SpecError{Code: CodeInvalidRequest, Message: "the body ends in the middle of its JSON value"}
	case errors.As(err, &syn):
		return &job.SpecError{Code: CodeInvalidRequest, Message: fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, syn.Error())}
	case errors.As(err, &typ):
		field := typ.Field
		msg := fmt.Sprintf("%s must be %s, not %s", orBody(field), jsonTypeName(typ.Type), typ.Value)
		return &job.SpecError{Code: CodeInvalidRequest, Field: field, Message: msg}
	}
	var je *job.SpecError
	if errors.As(err, &je) {
		return err
	}
	// Unknown fields and errors of custom decoders ("json: unknown field \"x\"").
	return &job.SpecError{Code: CodeInvalidRequest, Message: strings.TrimPrefix(err.Error(), "json: ")}
}

func orBody(field string) string {
	if field == "" {
		return "the body"
	}
	return field
}

func jsonTypeName(t reflect.Type) string {
	if t == reflect.TypeFor[json.Number]() {
		return "a number"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return jsonTypeName(t.Elem())
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	}
	return "another JSON type"
}

// urlCache keeps presigned URLs for reuse. It is bounded: when full, it starts over.
type urlCache struct {
	mu    sync.Mutex
	reuse time.Duration
	m     map[string]cachedURL
}

type cachedURL struct {
	url   string
	until time.Time
}

const urlCacheMax = 20000

func newURLCache(reuse time.Duration) *urlCache {
	return &urlCache{reuse: reuse, m: map[string]cachedURL{}}
}

func (c *urlCache) get(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || time.Now().After(e.until) {
		return "", false
	}
	return e.url, true
}

func (c *urlCache) put(key, u string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= urlCacheMax {
		clear(c.m)
	}
	c.m[key] = cachedURL{url: u, until: time.Now().Add(c.reuse)}
}
