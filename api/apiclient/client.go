// Package apiclient is the Go client of the comfyq HTTP API and its wire types
// (Accepted, JobList, TemplateInfo, …). It is apart from the server (package api) so
// that a program calling the API links neither the server nor its dashboard.
//
// Client implements job.Client, like producer.Client does on Redis directly:
//
//	c, err := apiclient.New("http://127.0.0.1:8080", apiKey, nil)
//	j, err := c.Enqueue(ctx, job.Spec{Workflow: workflowJSON})
//	j, err = c.Wait(ctx, j.ID)
package apiclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/template"
)

// Client calls a comfyq API server over HTTP. It implements job.Client, as
// producer.Client does, so a program (or the comfyq CLI's --api mode) can use either: errors wrap the same
// sentinels (job.ErrNotFound, job.ErrTerminal, template.ErrNotFound, template.ErrExists)
// and a refused submission is a *job.SpecError for errors.As, besides an *APIError.
type Client struct {
	base string
	key  string
	hc   *http.Client
}

// New returns a client of the API at baseURL ("http://127.0.0.1:8080") sending
// apiKey as a Bearer token (none if empty). httpClient may be nil for a default one; it
// must not have a Timeout, which would cut event streams: each call takes a context.
func New(baseURL, apiKey string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("apiclient: API URL %q: want http(s)://host:port", baseURL)
	}
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	return &Client{base: u.String(), key: apiKey, hc: httpClient}, nil
}

// resolve makes a link of an answer absolute: a server without a public URL answers
// with links relative to its root ("/v1/jobs/ID", "/v1/files/KEY"), which are the
// client's base URL joined with the path.
func (c *Client) resolve(link string) string {
	if !strings.HasPrefix(link, "/") || strings.HasPrefix(link, "//") {
		return link
	}
	return c.base + link
}

func (c *Client) resolveJob(j *job.Job) {
	for i := range j.Outputs {
		j.Outputs[i].URL = c.resolve(j.Outputs[i].URL)
	}
}

func (c *Client) resolveAccepted(a *Accepted) {
	a.StatusURL, a.EventsURL = c.resolve(a.StatusURL), c.resolve(a.EventsURL)
}

// APIError is an error answer of the API.
type APIError struct {
	Status    int
	Code      string
	Message   string
	Field     string
	Details   any
	RequestID string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("api: %d %s: %s", e.Status, e.Code, e.Message)
	if e.Field != "" {
		msg = fmt.Sprintf("api: %d %s: %s: %s", e.Status, e.Code, e.Field, e.Message)
	}
	return msg
}

// As lets errors.As find a *job.SpecError in a refused submission (a 400, 413, or
// 422 idempotency_key_reuse).
func (e *APIError) As(target any) bool {
	if se, ok := target.(**job.SpecError); ok && (e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge || e.Status == http.StatusUnprocessableEntity) {
		*se = &job.SpecError{Code: job.Code(e.Code), Field: e.Field, Message: e.Message, Details: e.Details}
		return true
	}
	return false
}

// wrapped is an *APIError that also matches a sentinel of package job or template.
type wrapped struct {
	*APIError
	sentinel error
}

func (w *wrapped) Unwrap() []error { return []error{w.sentinel, w.APIError} }

func (c *Client) url(path string, q url.Values) string {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// do sends a request and decodes a 2xx JSON answer into out (if non-nil). Other answers
// become an *APIError.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in any, out any, header http.Header) error {
	resp, err := c.send(ctx, method, path, q, in, header)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return readAPIError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("apiclient: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, q url.Values, in any, header http.Header) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("apiclient: encode request: %w", err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %w", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %s %s: %w", method, path, err)
	}
	return resp, nil
}

func readAPIError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	e := &APIError{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
			Details any    `json:"details"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&body); err == nil && body.Error.Code != "" {
		e.Code, e.Message, e.Field, e.Details = body.Error.Code, body.Error.Message, body.Error.Field, body.Error.Details
	} else {
		e.Code = "http_" + strconv.Itoa(resp.StatusCode)
		e.Message = strings.TrimSpace(string(data))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "…"
		}
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	return e
}

// withSentinel wraps an *APIError of the given status so that errors.Is also matches
// sentinel.
func withSentinel(err error, status int, sentinel error) error {
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == status {
		return &wrapped{APIError: ae, sentinel: sentinel}
	}
	return err
}

var _ job.Client = (*Client)(nil)

// Enqueue submits a job and returns its record (POST /v1/jobs, then GET): job.Client's
// Enqueue. spec.IdempotencyKey, if set, is also sent as the Idempotency-Key header.
func (c *Client) Enqueue(ctx context.Context, spec job.Spec) (*job.Job, error) {
	acc, err := c.Submit(ctx, spec, spec.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	return c.Get(ctx, acc.ID)
}

// Close releases nothing: the HTTP client is the caller's. It is there for job.Client.
func (c *Client) Close() error { return nil }

// Submit submits a job (POST /v1/jobs) and returns the server's answer: the id and
// where to follow it. idempotencyKey, if not empty, is sent as the Idempotency-Key
// header.
func (c *Client) Submit(ctx context.Context, spec job.Spec, idempotencyKey string) (*Accepted, error) {
	var acc Accepted
	if err := c.do(ctx, http.MethodPost, "/v1/jobs", nil, spec, &acc, idemHeader(idempotencyKey)); err != nil {
		return nil, err
	}
	c.resolveAccepted(&acc)
	return &acc, nil
}

// EnqueueTemplate submits a job from a template (POST /v1/templates/{name}/jobs).
func (c *Client) EnqueueTemplate(ctx context.Context, name string, req TemplateJobRequest, idempotencyKey string) (*Accepted, error) {
	var acc Accepted
	err := c.do(ctx, http.MethodPost, "/v1/templates/"+url.PathEscape(name)+"/jobs", nil, req, &acc, idemHeader(idempotencyKey))
	if err != nil {
		return nil, withSentinel(err, http.StatusNotFound, template.ErrNotFound)
	}
	c.resolveAccepted(&acc)
	return &acc, nil
}

func idemHeader(key string) http.Header {
	if key == "" {
		return nil
	}
	return http.Header{IdempotencyHeader: {key}}
}

// Get returns a job's record (GET /v1/jobs/{id}); job.ErrNotFound if there is none.
func (c *Client) Get(ctx context.Context, id string) (*job.Job, error) {
	var j job.Job
	if err := c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, nil, &j, nil); err != nil {
		return nil, withSentinel(err, http.StatusNotFound, job.ErrNotFound)
	}
	c.resolveJob(&j)
	return &j, nil
}

// List returns a page of jobs, newest first, and the cursor of the next page.
func (c *Client) List(ctx context.Context, opts job.ListOptions) ([]*job.Job, string, error) {
	q := url.Values{}
	if opts.Status != "" {
		q.Set("status", string(opts.Status))
	}
	if opts.Queue != "" {
		q.Set("queue", opts.Queue)
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	var page JobList
	if err := c.do(ctx, http.MethodGet, "/v1/jobs", q, nil, &page, nil); err != nil {
		return nil, "", err
	}
	for _, j := range page.Jobs {
		c.resolveJob(j)
	}
	return page.Jobs, page.NextCursor, nil
}

// Cancel cancels a job. For a job that already ended it returns the job and an error
// matching job.ErrTerminal, as producer.Client.Cancel does.
func (c *Client) Cancel(ctx context.Context, id string) (*job.Job, error) {
	var j job.Job
	err := c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, nil, &j, nil)
	if err == nil {
		c.resolveJob(&j)
		return &j, nil
	}
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusConflict {
		var ended *job.Job
		if d, ok := ae.Details.(map[string]any); ok {
			if raw, merr := json.Marshal(d["job"]); merr == nil {
				var jj job.Job
				if json.Unmarshal(raw, &jj) == nil && jj.ID != "" {
					c.resolveJob(&jj)
					ended = &jj
				}
			}
		}
		return ended, &wrapped{APIError: ae, sentinel: job.ErrTerminal}
	}
	return nil, withSentinel(err, http.StatusNotFound, job.ErrNotFound)
}

// Wait follows the job until it ends and returns its final record (job.Wait: it polls
// Get when the event stream is lost, and returns early only when ctx ends or Get fails).
func (c *Client) Wait(ctx context.Context, id string) (*job.Job, error) {
	return job.Wait(ctx, c, id)
}

// watchRetries bounds the reconnections of Watch in a row without any event.
const watchRetries = 8

// Watch follows a job's Server-Sent Events: its current state first, then every status
// and progress change; the channel closes after a terminal state, when ctx ends, or when
// the server stays unreachable (then call Get). A dropped stream is reopened: every
// stream starts with the current state, so nothing is lost but intermediate progress.
func (c *Client) Watch(ctx context.Context, id string) (<-chan job.Event, error) {
	resp, err := c.openEvents(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make(chan job.Event, 16)
	go func() {
		defer close(out)
		failures := 0
		for {
			got, terminal := readSSE(ctx, resp.Body, out, c.resolveJob)
			resp.Body.Close()
			if terminal || ctx.Err() != nil {
				return
			}
			if got {
				failures = 0
			}
			for {
				failures++
				if failures > watchRetries {
					return
				}
				delay := min(time.Duration(1<<failures)*100*time.Millisecond, 5*time.Second)
				select {
				case <-ctx.Done():
					return
				case <-time.After(delay):
				}
				resp, err = c.openEvents(ctx, id)
				if err == nil {
					break
				}
				var ae *APIError
				if errors.As(err, &ae) && ae.Status < 500 {
					return // gone (expired) or no longer allowed
				}
			}
		}
	}()
	return out, nil
}

func (c *Client) openEvents(ctx context.Context, id string) (*http.Response, error) {
	resp, err := c.send(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/events", nil, nil,
		http.Header{"Accept": {"text/event-stream"}})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, withSentinel(readAPIError(resp), http.StatusNotFound, job.ErrNotFound)
	}
	return resp, nil
}

// maxSSELine bounds one line of an event stream.
const maxSSELine = 16 << 20

// readSSE reads events from an event stream into out until it ends, passing each job
// through fix if it is not nil. It reports whether any event came and whether the last
// was terminal.
func readSSE(ctx context.Context, body io.Reader, out chan<- job.Event, fix func(*job.Job)) (got, terminal bool) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), maxSSELine)
	kind := ""
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if len(data) == 0 {
				kind = ""
				continue
			}
			var j job.Job
			err := json.Unmarshal(data, &j)
			data = data[:0]
			if kind == "" {
				kind = job.EventStatus
			}
			ev := job.Event{Type: kind, At: time.Now().UTC(), Job: &j}
			kind = ""
			if err != nil || j.ID == "" {
				continue
			}
			if fix != nil {
				fix(&j)
			}
			select {
			case out <- ev:
				got = true
			case <-ctx.Done():
				return got, false
			}
			if j.Status.Terminal() {
				return got, true
			}
		case line[0] == ':':
			// comment (heartbeat)
		default:
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				kind = string(value)
			case "data":
				if len(data) > 0 {
					data = append(data, '\n')
				}
				data = append(data, value...)
			}
		}
	}
	return got, false
}

// ListTemplates returns the templates, without their workflows.
func (c *Client) ListTemplates(ctx context.Context) ([]TemplateInfo, error) {
	var l TemplateList
	if err := c.do(ctx, http.MethodGet, "/v1/templates", nil, nil, &l, nil); err != nil {
		return nil, err
	}
	return l.Templates, nil
}

// GetTemplate returns a template; template.ErrNotFound if there is none.
func (c *Client) GetTemplate(ctx context.Context, name string) (*TemplateInfo, error) {
	var t TemplateInfo
	if err := c.do(ctx, http.MethodGet, "/v1/templates/"+url.PathEscape(name), nil, nil, &t, nil); err != nil {
		return nil, withSentinel(err, http.StatusNotFound, template.ErrNotFound)
	}
	return &t, nil
}

// CreateTemplate registers a new template (admin key); template.ErrExists if the name
// is taken.
func (c *Client) CreateTemplate(ctx context.Context, def template.Definition) (*TemplateInfo, error) {
	var t TemplateInfo
	if err := c.do(ctx, http.MethodPost, "/v1/templates", nil, def, &t, nil); err != nil {
		return nil, withSentinel(err, http.StatusConflict, template.ErrExists)
	}
	return &t, nil
}

// PutTemplate creates or replaces the template def.Name (admin key).
func (c *Client) PutTemplate(ctx context.Context, def template.Definition) (*TemplateInfo, error) {
	var t TemplateInfo
	if err := c.do(ctx, http.MethodPut, "/v1/templates/"+url.PathEscape(def.Name), nil, def, &t, nil); err != nil {
		return nil, err
	}
	return &t, nil
}

// DeleteTemplate deletes a template (admin key); template.ErrNotFound if there is none.
func (c *Client) DeleteTemplate(ctx context.Context, name string) error {
	err := c.do(ctx, http.MethodDelete, "/v1/templates/"+url.PathEscape(name), nil, nil, nil, nil)
	return withSentinel(err, http.StatusNotFound, template.ErrNotFound)
}

// MarshalJSON writes the template's fields and the API's beside them, leaving out the
// workflow when it is absent (lists) rather than writing null.
func (ti TemplateInfo) MarshalJSON() ([]byte, error) {
	fields := map[string]json.RawMessage{}
	if ti.Template != nil {
		data, err := json.Marshal(ti.Template)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, &fields); err != nil {
			return nil, err
		}
		if len(ti.Workflow) == 0 {
			delete(fields, "workflow")
		}
	}
	for name, v := range map[string]any{"params_schema": ti.ParamsSchema, "images_schema": ti.ImagesSchema} {
		data, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		fields[name] = data
	}
	if ti.JobsURL != "" {
		data, _ := json.Marshal(ti.JobsURL)
		fields["jobs_url"] = data
	}
	return json.Marshal(fields)
}

// UnmarshalJSON reads a TemplateInfo, keeping the template's numbers exact.
func (ti *TemplateInfo) UnmarshalJSON(data []byte) error {
	var t template.Template
	if err := t.UnmarshalJSON(data); err != nil {
		return err
	}
	var extra struct {
		ParamsSchema map[string]any `json:"params_schema"`
		ImagesSchema map[string]any `json:"images_schema"`
		JobsURL      string         `json:"jobs_url"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&extra); err != nil {
		return err
	}
	*ti = TemplateInfo{Template: &t, ParamsSchema: extra.ParamsSchema, ImagesSchema: extra.ImagesSchema, JobsURL: extra.JobsURL}
	return nil
}
