package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/storage"
)

// TestUIWorkflowBecomesATypedEndpoint is the "done when": a UI-format workflow
// file is registered as a template, shows in /openapi.json with typed parameters, is
// submitted over HTTP with only those parameters, followed over SSE and polling, and
// its outputs are found in the bucket (real S3).
func TestUIWorkflowBecomesATypedEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{s3: true, worker: true})
	ui := readFixture(t, "default_graph.ui.json")

	r := b.do(t, "POST", "/v1/templates", adminKey, map[string]any{
		"name": "txt2img", "description": "The default graph", "workflow": json.RawMessage(ui),
	})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, "/v1/templates/txt2img", r.header.Get("Location"))
	var info api.TemplateInfo
	r.json(t, &info)
	require.Equal(t, 1, info.Version)
	require.Equal(t, "/v1/templates/txt2img/jobs", info.JobsURL)
	params := map[string]string{}
	for _, p := range info.Params {
		params[p.Name] = p.Type
	}
	// The sampler heuristic found the prompts and the sampler's settings.
	require.Equal(t, "string", params["prompt"], "params: %v", params)
	require.Equal(t, "integer", params["seed"], "params: %v", params)
	require.Equal(t, "integer", params["steps"], "params: %v", params)

	// The template has its own operation in the OpenAPI document, with a typed schema.
	doc := getOpenAPI(t, b)
	paths := doc["paths"].(map[string]any)
	op := paths["/v1/templates/txt2img/jobs"].(map[string]any)["post"].(map[string]any)
	require.Equal(t, "submit_txt2img", op["operationId"])
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	ps := schemas["Template_txt2img_Params"].(map[string]any)
	props := ps["properties"].(map[string]any)
	require.Equal(t, "string", props["prompt"].(map[string]any)["type"])
	seed := props["seed"].(map[string]any)
	require.Equal(t, "integer", seed["type"])
	require.Equal(t, json.Number("18446744073709551615"), seed["maximum"], "exact bound from object_info")
	require.Equal(t, false, ps["additionalProperties"])

	// Submit with only the parameters, follow over SSE with the client, poll.
	r = b.do(t, "POST", "/v1/templates/txt2img/jobs", userKey, map[string]any{
		"params": map[string]any{"prompt": "a red fox in the snow", "seed": json.Number("18446744073709551615"), "steps": 4},
	})
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	var acc api.Accepted
	r.json(t, &acc)
	c := b.client(t, userKey)
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	events, err := c.Watch(ctx, acc.ID)
	require.NoError(t, err)
	var last *job.Job
	n := 0
	for ev := range events {
		last = ev.Job
		n++
	}
	require.NotNil(t, last)
	require.Equal(t, job.StatusSucceeded, last.Status, "error: %+v", last.Error)
	require.Greater(t, n, 1)

	j := b.getJob(t, acc.ID)
	require.Equal(t, "txt2img", j.Template)
	require.Equal(t, 1, j.TemplateVersion)
	require.Len(t, j.Outputs, 1)
	out := j.Outputs[0]
	require.True(t, strings.HasPrefix(out.Key, storage.Locate(b.store, "jobs/"+acc.ID+"/9/").Key), "key %s", out.Key)
	// In the bucket, and reachable by its presigned URL without any API key.
	stored := b.output(t, out)
	require.NotEmpty(t, stored)
	require.True(t, strings.HasPrefix(out.URL, "http://127.0.0.1:"), "presigned S3 URL: %s", out.URL)
	require.Contains(t, out.URL, "X-Amz-Signature")
	status, data := fetch(t, ctx, out.URL, "")
	require.Equal(t, 200, status)
	require.Equal(t, stored, data)

	// A new version of the template; later jobs record it.
	r = b.do(t, "PUT", "/v1/templates/txt2img", adminKey, map[string]any{"workflow": json.RawMessage(ui), "description": "v2"})
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	r.json(t, &info)
	require.Equal(t, 2, info.Version)
	acc2 := b.client(t, userKey)
	a2, err := acc2.EnqueueTemplate(ctx, "txt2img", api.TemplateJobRequest{Params: map[string]any{"steps": 2}}, "")
	require.NoError(t, err)
	j = b.waitJob(t, a2.ID)
	require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
	require.Equal(t, 2, j.TemplateVersion)
}

func getOpenAPI(t *testing.T, b *bundle) map[string]any {
	t.Helper()
	r := b.do(t, "GET", "/openapi.json", "", nil)
	require.Equal(t, 200, r.status)
	var doc map[string]any
	r.json(t, &doc)
	return doc
}

func TestTemplateCRUD(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	api1 := readFixture(t, "default_embedding.api.json")
	// Explicit parameters, with node selectors by class.
	def := map[string]any{
		"name": "embed", "workflow": json.RawMessage(api1),
		"params": []any{
			map[string]any{"name": "seed", "targets": []string{"KSampler.inputs.seed"}},
			map[string]any{"name": "cfg", "targets": []string{"KSampler.inputs.cfg"}, "minimum": 1, "maximum": 12},
		},
	}
	r := b.do(t, "POST", "/v1/templates", adminKey, def)
	require.Equal(t, 201, r.status, "body: %s", r.body)
	var info api.TemplateInfo
	r.json(t, &info)
	require.Len(t, info.Params, 2)
	require.NotEmpty(t, info.Workflow)

	r = b.do(t, "GET", "/v1/templates", userKey, nil)
	require.Equal(t, 200, r.status)
	var list api.TemplateList
	r.json(t, &list)
	require.Len(t, list.Templates, 1)
	require.Equal(t, "embed", list.Templates[0].Name)
	require.Empty(t, list.Templates[0].Workflow, "lists leave the workflow out")
	require.NotContains(t, string(r.body), `"workflow"`)
	require.NotEmpty(t, list.Templates[0].ParamsSchema)

	r = b.do(t, "GET", "/v1/templates/embed", userKey, nil)
	require.Equal(t, 200, r.status)
	r.json(t, &info)
	require.NotEmpty(t, info.Workflow)
	cfg := info.ParamsSchema["properties"].(map[string]any)["cfg"].(map[string]any)
	require.Equal(t, json.Number("12"), cfg["maximum"])

	// Out of bounds, with the bound in the message.
	r = b.do(t, "POST", "/v1/templates/embed/jobs", userKey, map[string]any{"params": map[string]any{"cfg": 13}})
	require.Equal(t, 400, r.status)
	require.Equal(t, "invalid_params", r.apiError(t).Code)
	r = b.do(t, "POST", "/v1/templates/embed/jobs", userKey, map[string]any{"params": map[string]any{"cfg": 5.5}})
	require.Equal(t, 202, r.status, "body: %s", r.body)

	r = b.do(t, "DELETE", "/v1/templates/embed", adminKey, nil)
	require.Equal(t, 204, r.status)
	require.Empty(t, r.body)
	require.Equal(t, 404, b.do(t, "GET", "/v1/templates/embed", userKey, nil).status)
	require.Equal(t, 404, b.do(t, "POST", "/v1/templates/embed/jobs", userKey, `{}`).status)
	doc := getOpenAPI(t, b)
	require.NotContains(t, doc["paths"], "/v1/templates/embed/jobs")
}
