package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
)

// loadSpec loads the served document with kin-openapi and routes requests by it.
func loadSpec(t *testing.T, b *bundle) (*openapi3.T, routers.Router) {
	t.Helper()
	raw, err := json.Marshal(getOpenAPI(t, b))
	require.NoError(t, err)
	loader := openapi3.NewLoader()
	spec, err := loader.LoadFromData(raw)
	require.NoError(t, err)
	require.NoError(t, spec.Validate(loader.Context))
	router, err := gorillamux.NewRouter(spec)
	require.NoError(t, err)
	return spec, router
}

// checkResponse validates a real answer (status, headers, body) against the
// operation the document gives for the request.
func checkResponse(t *testing.T, router routers.Router, method, path string, r response) {
	t.Helper()
	req, err := http.NewRequest(method, path, nil)
	require.NoError(t, err)
	route, params, err := router.FindRoute(req)
	require.NoError(t, err, "%s %s is in the document", method, path)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status: r.status,
		Header: r.header,
		Body:   io.NopCloser(bytes.NewReader(r.body)),
	}
	require.NoError(t, openapi3filter.ValidateResponse(context.Background(), in), "%s %s answered %d: %s", method, path, r.status, r.body)
}

// TestResponsesMatchTheDocument validates real answers of a job's life, on S3 (so
// outputs carry bucket and key), against /openapi.json.
func TestResponsesMatchTheDocument(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{s3: true, worker: true})
	_, router := loadSpec(t, b)

	r := b.do(t, "POST", "/v1/jobs", userKey, map[string]any{"workflow": jsonRaw(imageWorkflow), "metadata": map[string]any{"user": "42"}})
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	checkResponse(t, router, "POST", b.url+"/v1/jobs", r)
	var acc struct{ ID string }
	r.json(t, &acc)

	j := b.waitJob(t, acc.ID)
	require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
	r = b.do(t, "GET", "/v1/jobs/"+acc.ID, userKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, string(r.body), `"bucket"`)
	checkResponse(t, router, "GET", b.url+"/v1/jobs/"+acc.ID, r)

	r = b.do(t, "GET", "/v1/jobs?limit=5", userKey, nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	checkResponse(t, router, "GET", b.url+"/v1/jobs?limit=5", r)

	id, err := job.NewID()
	require.NoError(t, err)
	r = b.do(t, "GET", "/v1/jobs/"+id, userKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	checkResponse(t, router, "GET", b.url+"/v1/jobs/"+id, r)

	r = b.do(t, "GET", "/v1/templates", userKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	checkResponse(t, router, "GET", b.url+"/v1/templates", r)
}

// titledWorkflow has a node titled "Input: size" with several inputs, none called
// size: discovery makes the names size_width, … and lists them in params_made.
const titledWorkflow = `{
 "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}, "_meta": {"title": "Input: size"}},
 "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0}, "_meta": {"title": "Input: color"}},
 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "api"}}
}`

// TestTemplateAndErrorAnswersMatchTheDocument validates a template's answers (with
// made parameter names) and the error envelope of several codes against
// /openapi.json.
func TestTemplateAndErrorAnswersMatchTheDocument(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	_, router := loadSpec(t, b)

	r := b.do(t, "POST", "/v1/templates", adminKey, map[string]any{"name": "sized", "workflow": jsonRaw(titledWorkflow)})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Contains(t, string(r.body), `"params_made"`)
	checkResponse(t, router, "POST", b.url+"/v1/templates", r)

	r = b.do(t, "GET", "/v1/templates/sized", userKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, string(r.body), `"params_made"`)
	checkResponse(t, router, "GET", b.url+"/v1/templates/sized", r)

	r = b.do(t, "PUT", "/v1/templates/sized", adminKey, map[string]any{"workflow": jsonRaw(titledWorkflow)})
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	checkResponse(t, router, "PUT", b.url+"/v1/templates/sized", r)

	r = b.do(t, "GET", "/v1/templates", userKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.NotContains(t, string(r.body), `"workflow"`, "lists leave the workflow out")
	checkResponse(t, router, "GET", b.url+"/v1/templates", r)

	// Error envelopes: invalid_params with its violations, conflict, unauthorized,
	// forbidden, not_found, invalid_template.
	r = b.do(t, "POST", "/v1/templates/sized/jobs", userKey, map[string]any{"params": map[string]any{"size_width": "wide", "nope": 1}})
	require.Equal(t, http.StatusBadRequest, r.status, "body: %s", r.body)
	require.Equal(t, "invalid_params", r.apiError(t).Code)
	require.Contains(t, string(r.body), `"details"`)
	checkResponse(t, router, "POST", b.url+"/v1/templates/sized/jobs", r)

	r = b.do(t, "POST", "/v1/templates", adminKey, map[string]any{"name": "sized", "workflow": jsonRaw(titledWorkflow)})
	require.Equal(t, http.StatusConflict, r.status, "body: %s", r.body)
	checkResponse(t, router, "POST", b.url+"/v1/templates", r)

	r = b.do(t, "POST", "/v1/templates", adminKey, map[string]any{"name": "Bad Name", "workflow": jsonRaw(titledWorkflow)})
	require.Equal(t, http.StatusBadRequest, r.status, "body: %s", r.body)
	require.Equal(t, "invalid_template", r.apiError(t).Code)
	checkResponse(t, router, "POST", b.url+"/v1/templates", r)

	r = b.do(t, "GET", "/v1/templates/sized", "", nil)
	require.Equal(t, http.StatusUnauthorized, r.status)
	checkResponse(t, router, "GET", b.url+"/v1/templates/sized", r)

	r = b.do(t, "DELETE", "/v1/templates/sized", userKey, nil)
	require.Equal(t, http.StatusForbidden, r.status)
	checkResponse(t, router, "DELETE", b.url+"/v1/templates/sized", r)

	r = b.do(t, "GET", "/v1/templates/none", userKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	checkResponse(t, router, "GET", b.url+"/v1/templates/none", r)
}
