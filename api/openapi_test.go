package api_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
)

// TestOpenAPIDocumentIsValid checks the document's structure as an OpenAPI 3.1
// validator would (version, operations with responses, unique operation ids, path
// parameters declared, security schemes known, every $ref resolving, schemas sane), and
// that every path it lists is served by the router.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	r := b.do(t, "POST", "/v1/templates", adminKey, map[string]any{
		"name": "txt2img", "workflow": json.RawMessage(readFixture(t, "default_graph.ui.json")),
	})
	require.Equal(t, 201, r.status, "body: %s", r.body)
	r = b.do(t, "POST", "/v1/templates", adminKey, map[string]any{
		"name": "img-2-img", "workflow": json.RawMessage(readFixture(t, "loadimage_img2img.ui.json")),
	})
	require.Equal(t, 201, r.status, "body: %s", r.body)

	doc := getOpenAPI(t, b)
	require.Equal(t, "3.1.0", doc["openapi"])
	info := doc["info"].(map[string]any)
	require.NotEmpty(t, info["title"])
	require.NotEmpty(t, info["version"])

	// A maintained OpenAPI library loads the document, resolves every $ref and
	// validates it (kin-openapi validates 3.1 documents as 3.1: JSON Schema 2020-12
	// keywords, type arrays).
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	loader := openapi3.NewLoader()
	spec, err := loader.LoadFromData(raw)
	require.NoError(t, err, "the document loads and its $refs resolve")
	require.True(t, spec.IsOpenAPI31OrLater())
	require.NoError(t, spec.Validate(loader.Context), "the document is valid OpenAPI 3.1")
	require.NotEmpty(t, spec.Paths.Map())

	comps := doc["components"].(map[string]any)
	paths := doc["paths"].(map[string]any)
	// One typed operation per template, the name's dash kept in the path.
	require.Contains(t, paths, "/v1/templates/txt2img/jobs")
	require.Contains(t, paths, "/v1/templates/img-2-img/jobs")
	imgs := comps["schemas"].(map[string]any)["Template_img-2-img_Images"].(map[string]any)
	require.NotEmpty(t, imgs["properties"], "the LoadImage image is an image parameter")

	// Every listed route is served: a request to it reaches a handler (any answer but
	// the router's "no route" 404 or a 405).
	id, err := job.NewID()
	require.NoError(t, err)
	fill := strings.NewReplacer("{id}", id, "{name}", "txt2img", "{key}", "jobs/none.png")
	var listed []string
	for p, item := range paths {
		for m := range item.(map[string]any) {
			listed = append(listed, strings.ToUpper(m)+" "+p)
		}
	}
	sort.Strings(listed)
	for _, route := range listed {
		method, p, _ := strings.Cut(route, " ")
		if method == "DELETE" {
			continue // checked below, last, not to delete the template others use
		}
		var body any
		if method == "POST" || method == "PUT" {
			body = `{}`
		}
		r = b.do(t, method, fill.Replace(p), adminKey, body)
		require.NotEqual(t, http.StatusMethodNotAllowed, r.status, route)
		if r.status == http.StatusNotFound {
			require.False(t, strings.HasPrefix(r.apiError(t).Message, "no route"), "%s is not routed", route)
		}
	}
	r = b.do(t, "DELETE", "/v1/templates/txt2img", adminKey, nil)
	require.Equal(t, 204, r.status)
}

// TestDocsPageIsSelfContained checks that /docs loads nothing from elsewhere: no
// script, no absolute or protocol-relative link, no CSS import or url().
func TestDocsPageIsSelfContained(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	r := b.do(t, "POST", "/v1/templates", adminKey, map[string]any{
		"name": "txt2img", "workflow": json.RawMessage(readFixture(t, "default_graph.ui.json")),
	})
	require.Equal(t, 201, r.status, "body: %s", r.body)

	r = b.do(t, "GET", "/docs", "", nil)
	require.Equal(t, 200, r.status)
	require.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"))
	require.Contains(t, r.header.Get("Content-Security-Policy"), "default-src 'none'")
	page := string(r.body)
	lower := strings.ToLower(page)
	require.NotContains(t, lower, "<script")
	require.NotContains(t, lower, "@import")
	require.NotContains(t, lower, "url(")
	require.NotContains(t, lower, "<link")
	attr := regexp.MustCompile(`(?i)\b(src|href|action|srcset|poster|data)\s*=\s*["']?([^"'\s>]*)`)
	for _, m := range attr.FindAllStringSubmatch(page, -1) {
		v := m[2]
		require.False(t, strings.Contains(v, "//") || strings.Contains(v, ":"), "external reference %s=%q", m[1], v)
	}
	require.NotContains(t, page, "http://")
	require.NotContains(t, page, "https://")

	// Every route and the template's own operation, with its parameters.
	for _, want := range []string{"/v1/jobs", "/v1/jobs/{id}/events", "/v1/templates/{name}/jobs", "/monitoring/",
		"/v1/templates/txt2img/jobs", "Template parameters", "prompt", "seed", "invalid_params"} {
		require.Contains(t, page, want)
	}
}
