package api_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/producer"
)

func TestErrorShapes(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{config: func(c *api.Config) {
		c.MaxBodyBytes = 64 << 10
		c.MaxImageBytes = 1 << 10
	}})
	wf := jsonRaw(imageWorkflow)
	ct := func(v string) reqOpt { return withHeader("Content-Type", v) }

	cases := []struct {
		name, method, path string
		body               any
		opts               []reqOpt
		status             int
		code, field        string
	}{
		{"malformed JSON", "POST", "/v1/jobs", `{"workflow": `, nil, 400, "invalid_request", ""},
		{"syntax error", "POST", "/v1/jobs", `{"workflow" 1}`, nil, 400, "invalid_request", ""},
		{"empty body", "POST", "/v1/jobs", ``, nil, 400, "invalid_request", ""},
		{"two values", "POST", "/v1/jobs", `{"workflow": {}} {}`, nil, 400, "invalid_request", ""},
		{"unknown field", "POST", "/v1/jobs", `{"workflw": {}}`, nil, 400, "invalid_request", ""},
		{"wrong type", "POST", "/v1/jobs", `{"workflow": {}, "timeout_s": "ten"}`, nil, 400, "invalid_request", "timeout_s"},
		{"neither workflow nor template", "POST", "/v1/jobs", `{"queue": "default"}`, nil, 400, "invalid_request", "workflow"},
		{"both workflow and template", "POST", "/v1/jobs", map[string]any{"workflow": wf, "template": "x"}, nil, 400, "invalid_request", "workflow"},
		{"bad queue", "POST", "/v1/jobs", map[string]any{"workflow": wf, "queue": "no spaces"}, nil, 400, "invalid_request", "queue"},
		{"bad webhook event", "POST", "/v1/jobs", map[string]any{"workflow": wf, "webhook": map[string]any{"url": "https://93.184.215.14/h", "events": []string{"job.exploded"}}}, nil, 400, "invalid_request", "webhook.events"},
		{"broken workflow", "POST", "/v1/jobs", map[string]any{"workflow": map[string]any{"1": map[string]any{"inputs": map[string]any{}}}}, nil, 400, "invalid_workflow", "workflow"},
		{"dangling link", "POST", "/v1/jobs", map[string]any{"workflow": jsonRaw(`{"2": {"class_type": "SaveImage", "inputs": {"images": ["9", 0]}}}`)}, nil, 400, "invalid_workflow", "workflow"},
		{"set on a missing node", "POST", "/v1/jobs", map[string]any{"workflow": wf, "set": map[string]any{"77.inputs.x": 1}}, nil, 400, "invalid_request", "set.77.inputs.x"},
		{"unknown template", "POST", "/v1/jobs", map[string]any{"template": "nope"}, nil, 400, "unknown_template", "template"},
		{"bad base64", "POST", "/v1/jobs", map[string]any{"workflow": wf, "images": map[string]any{"1.inputs.image": map[string]any{"base64": "***"}}}, nil, 400, "invalid_request", "images.1.inputs.image"},
		{"image too large", "POST", "/v1/jobs", map[string]any{"workflow": wf, "images": map[string]any{"1.inputs.image": map[string]any{"base64": base64.StdEncoding.EncodeToString(make([]byte, 2<<10))}}}, nil, 413, "too_large", "images.1.inputs.image"},
		{"image with two sources", "POST", "/v1/jobs", map[string]any{"workflow": wf, "images": map[string]any{"1.inputs.image": map[string]any{"url": "https://example.com/a.png", "key": "a.png"}}}, nil, 400, "invalid_request", "images.1.inputs.image"},
		{"image URL not http", "POST", "/v1/jobs", map[string]any{"workflow": wf, "images": map[string]any{"1.inputs.image": map[string]any{"url": "file:///etc/passwd"}}}, nil, 400, "invalid_request", "images.1.inputs.image"},
		{"image URL on loopback", "POST", "/v1/jobs", map[string]any{"workflow": wf, "images": map[string]any{"1.inputs.image": map[string]any{"url": "http://127.0.0.1:6379/x.png"}}}, nil, 400, "invalid_request", "images.1.inputs.image"},
		{"webhook on a private address", "POST", "/v1/jobs", map[string]any{"workflow": wf, "webhook": map[string]any{"url": "http://10.0.0.8/hook"}}, nil, 400, "invalid_request", "webhook.url"},
		{"webhook not http", "POST", "/v1/jobs", map[string]any{"workflow": wf, "webhook": map[string]any{"url": "ftp://hooks.example/x"}}, nil, 400, "invalid_request", "webhook.url"},
		{"image key missing", "POST", "/v1/jobs", map[string]any{"workflow": wf, "images": map[string]any{"1.inputs.image": map[string]any{"key": "inputs/none.png"}}}, nil, 400, "invalid_request", "images.1.inputs.image"},
		{"body too large", "POST", "/v1/jobs", `{"metadata": {"x": "` + strings.Repeat("a", 70<<10) + `"}}`, nil, 413, "too_large", ""},
		{"not JSON", "POST", "/v1/jobs", `workflow=1`, []reqOpt{ct("application/x-www-form-urlencoded")}, 415, "unsupported_media_type", ""},
		{"no content type", "POST", "/v1/jobs", `{}`, []reqOpt{ct("")}, 415, "unsupported_media_type", ""},
		{"JSON with charset", "POST", "/v1/jobs", map[string]any{"workflow": wf}, []reqOpt{ct("application/json; charset=utf-8")}, 202, "", ""},
		{"unknown route", "GET", "/v1/nothing", nil, nil, 404, "not_found", ""},
		{"unknown job", "GET", "/v1/jobs/01937c9e-8f3a-7b2c-9d1e-4f5a6b7c8d9e", nil, nil, 404, "not_found", ""},
		{"malformed job id", "GET", "/v1/jobs/../../etc", nil, nil, 404, "not_found", ""},
		{"job id not canonical", "GET", "/v1/jobs/01937C9E-8F3A-7B2C-9D1E-4F5A6B7C8D9E", nil, nil, 404, "not_found", ""},
		{"events of an unknown job", "GET", "/v1/jobs/01937c9e-8f3a-7b2c-9d1e-4f5a6b7c8d9e/events", nil, nil, 404, "not_found", ""},
		{"cancel an unknown job", "POST", "/v1/jobs/01937c9e-8f3a-7b2c-9d1e-4f5a6b7c8d9e/cancel", nil, nil, 404, "not_found", ""},
		{"wrong method", "DELETE", "/v1/jobs", nil, nil, 405, "method_not_allowed", ""},
		{"wrong method on a job", "PUT", "/v1/jobs/01937c9e-8f3a-7b2c-9d1e-4f5a6b7c8d9e", `{}`, nil, 405, "method_not_allowed", ""},
		{"bad list status", "GET", "/v1/jobs?status=done", nil, nil, 400, "invalid_request", "status"},
		{"bad list limit", "GET", "/v1/jobs?limit=0", nil, nil, 400, "invalid_request", "limit"},
		{"big list limit", "GET", "/v1/jobs?limit=501", nil, nil, 400, "invalid_request", "limit"},
		{"unknown list parameter", "GET", "/v1/jobs?stauts=queued", nil, nil, 400, "invalid_request", "stauts"},
		{"bad cursor", "GET", "/v1/jobs?cursor=garbage", nil, nil, 400, "invalid_request", "cursor"},
		{"unknown template by name", "GET", "/v1/templates/nope", nil, nil, 404, "not_found", ""},
		{"unknown template jobs", "POST", "/v1/templates/nope/jobs", `{}`, nil, 404, "not_found", ""},
		{"file key with dot-dot", "GET", "/v1/files/jobs/%2e%2e/secret", nil, nil, 404, "not_found", ""},
		{"missing file", "GET", "/v1/files/jobs/none.png", nil, nil, 404, "not_found", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := b.do(t, c.method, c.path, userKey, c.body, c.opts...)
			require.Equal(t, c.status, r.status, "body: %s", r.body)
			if c.status < 400 {
				return
			}
			e := r.apiError(t)
			if c.code != "" {
				require.Equal(t, c.code, e.Code, "body: %s", r.body)
			}
			require.Equal(t, c.field, e.Field, "body: %s", r.body)
			if c.status == 405 {
				require.NotEmpty(t, r.header.Get("Allow"))
			}
		})
	}

	// Nothing of the refused submissions was enqueued; the one accepted was.
	jobs, _, err := b.jobs().List(b.ctx, job.ListOptions{})
	require.NoError(t, err)
	require.Len(t, jobs, 1)
}

func (b *bundle) jobs() *jobstore.Store { return jobstore.New(b.rdb, jobstore.Config{}) }

func TestTemplateErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	def := map[string]any{"name": "sampler", "workflow": jsonRaw(samplerWorkflow)}
	r := b.do(t, "POST", "/v1/templates", adminKey, def)
	require.Equal(t, 201, r.status, "body: %s", r.body)

	r = b.do(t, "POST", "/v1/templates", adminKey, def)
	require.Equal(t, 409, r.status)
	require.Equal(t, "conflict", r.apiError(t).Code)

	r = b.do(t, "POST", "/v1/templates", adminKey, map[string]any{"name": "Bad Name", "workflow": jsonRaw(samplerWorkflow)})
	require.Equal(t, 400, r.status)
	require.Equal(t, "invalid_template", r.apiError(t).Code)

	r = b.do(t, "POST", "/v1/templates", adminKey, map[string]any{"name": "broken", "workflow": jsonRaw(`{"1": 5}`)})
	require.Equal(t, 400, r.status)
	require.Equal(t, "invalid_workflow", r.apiError(t).Code)

	r = b.do(t, "PUT", "/v1/templates/sampler", adminKey, map[string]any{"name": "other", "workflow": jsonRaw(samplerWorkflow)})
	require.Equal(t, 400, r.status)
	require.Equal(t, "name", r.apiError(t).Field)

	// Every violation at once.
	r = b.do(t, "POST", "/v1/templates/sampler/jobs", userKey, map[string]any{"params": map[string]any{
		"seed": "seven", "steps": -3, "colour": "red",
	}})
	require.Equal(t, 400, r.status, "body: %s", r.body)
	e := r.apiError(t)
	require.Equal(t, "invalid_params", e.Code)
	require.Equal(t, "params", e.Field)
	violations, ok := e.Details.([]any)
	require.True(t, ok, "details is a list: %s", r.body)
	var names []string
	for _, v := range violations {
		names = append(names, fmt.Sprint(v.(map[string]any)["param"]))
	}
	require.ElementsMatch(t, []string{"colour", "seed", "steps"}, names)

	r = b.do(t, "DELETE", "/v1/templates/nope", adminKey, nil)
	require.Equal(t, 404, r.status)
	require.Equal(t, "not_found", r.apiError(t).Code)
}

// An unexpected failure is a 500 with a generic message and a request id, never the
// underlying error.
func TestInternalErrorsAreGeneric(t *testing.T) {
	t.Parallel()
	rdb, err := producer.OpenRedis(testenv.NewRedis(t))
	require.NoError(t, err)
	b := setup(t, setupOpts{redis: rdb})
	require.NoError(t, rdb.Close()) // every Redis call now fails

	r := b.do(t, "GET", "/v1/jobs/01937c9e-8f3a-7b2c-9d1e-4f5a6b7c8d9e", userKey, nil)
	require.Equal(t, http.StatusInternalServerError, r.status)
	e := r.apiError(t)
	require.Equal(t, "internal", e.Code)
	id := r.header.Get("X-Request-Id")
	require.NotEmpty(t, id)
	require.Equal(t, "internal error (request id "+id+")", e.Message)
	require.NotContains(t, strings.ToLower(string(r.body)), "redis")

	r = b.do(t, "GET", "/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	var h api.Health
	r.json(t, &h)
	require.Equal(t, "unavailable", h.Status)
	require.Equal(t, "unreachable", h.Checks["redis"])
	require.Equal(t, "ok", h.Checks["storage"])
}
