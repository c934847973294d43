package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

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

	comps := doc["components"].(map[string]any)
	schemes := comps["securitySchemes"].(map[string]any)
	nameRE := regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	for _, section := range []string{"schemas", "responses", "securitySchemes"} {
		for name := range comps[section].(map[string]any) {
			require.Regexp(t, nameRE, name, "component name")
		}
	}

	checkSecurity := func(where string, v any) {
		for _, req := range v.([]any) {
			for name := range req.(map[string]any) {
				require.Contains(t, schemes, name, "%s: unknown security scheme", where)
			}
		}
	}
	checkSecurity("root", doc["security"])

	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}
	pathParam := regexp.MustCompile(`\{([^}]+)\}`)
	opIDs := map[string]string{}
	paths := doc["paths"].(map[string]any)
	require.NotEmpty(t, paths)
	for p, item := range paths {
		require.True(t, strings.HasPrefix(p, "/"), "path %q", p)
		for m, opAny := range item.(map[string]any) {
			require.True(t, methods[m], "%s: %q is not an HTTP method", p, m)
			op := opAny.(map[string]any)
			where := strings.ToUpper(m) + " " + p
			id, _ := op["operationId"].(string)
			require.NotEmpty(t, id, where)
			require.NotContains(t, opIDs, id, "%s: operationId %q also used by %s", where, id, opIDs[id])
			opIDs[id] = where
			responses, ok := op["responses"].(map[string]any)
			require.True(t, ok && len(responses) > 0, "%s has no responses", where)
			for code, resp := range responses {
				require.Regexp(t, `^([1-5][0-9][0-9]|default)$`, code, where)
				ro := resp.(map[string]any)
				if _, isRef := ro["$ref"]; !isRef {
					require.NotEmpty(t, ro["description"], "%s %s: response description", where, code)
				}
			}
			if sec, ok := op["security"]; ok {
				checkSecurity(where, sec)
			}
			declared := map[string]bool{}
			params, _ := op["parameters"].([]any)
			for _, prm := range params {
				po := prm.(map[string]any)
				require.Contains(t, []any{"path", "query", "header", "cookie"}, po["in"], where)
				require.NotNil(t, po["schema"], "%s: parameter %v has a schema", where, po["name"])
				if po["in"] == "path" {
					require.Equal(t, true, po["required"], "%s: path parameters are required", where)
					declared[po["name"].(string)] = true
				}
			}
			for _, m := range pathParam.FindAllStringSubmatch(p, -1) {
				require.True(t, declared[m[1]], "%s: path parameter %q is not declared", where, m[1])
			}
			if rb, ok := op["requestBody"].(map[string]any); ok {
				require.NotEmpty(t, rb["content"], where)
			}
		}
	}

	// Every $ref resolves in the document.
	refs := 0
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				refs++
				require.NotNil(t, resolvePointer(doc, ref), "%s: $ref %q does not resolve", at, ref)
			}
			for k, c := range x {
				walk(c, at+"/"+k)
			}
		case []any:
			for i, c := range x {
				walk(c, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(doc, "#")
	require.Greater(t, refs, 20)

	// Schemas are sane JSON Schema: known types, required properties that exist.
	types := map[string]bool{"object": true, "array": true, "string": true, "integer": true, "number": true, "boolean": true, "null": true}
	var checkSchema func(s map[string]any, at string)
	checkSchema = func(s map[string]any, at string) {
		if typ, ok := s["type"].(string); ok {
			require.True(t, types[typ], "%s: type %q", at, typ)
		}
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok && props != nil {
			for _, r := range req {
				require.Contains(t, props, r, "%s: required %v is not a property", at, r)
			}
		}
		for name, p := range props {
			checkSchema(p.(map[string]any), at+"."+name)
		}
		if items, ok := s["items"].(map[string]any); ok {
			checkSchema(items, at+"[]")
		}
	}
	for name, s := range comps["schemas"].(map[string]any) {
		checkSchema(s.(map[string]any), name)
	}

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
		res := b.do(t, method, fill.Replace(p), adminKey, body)
		require.NotEqual(t, http.StatusMethodNotAllowed, res.status, route)
		if res.status == http.StatusNotFound {
			require.False(t, strings.HasPrefix(res.apiError(t).Message, "no route"), "%s is not routed", route)
		}
	}
	r = b.do(t, "DELETE", "/v1/templates/txt2img", adminKey, nil)
	require.Equal(t, 204, r.status)
}

// resolvePointer resolves a local JSON pointer ("#/components/schemas/Job").
func resolvePointer(doc map[string]any, ref string) any {
	if !strings.HasPrefix(ref, "#/") {
		return nil
	}
	var cur any = doc
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[tok]; !ok {
			return nil
		}
	}
	return cur
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
