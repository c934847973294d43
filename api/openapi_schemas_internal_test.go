package api

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api/apiclient"
	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/internal/fixtures"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/template"
)

// TestSchemaDocsNameRealFields: a renamed or removed field must not leave its
// description, or its exemption from required, behind unnoticed.
func TestSchemaDocsNameRealFields(t *testing.T) {
	defs := generatedSchemas()
	for key := range allSchemaDocs() {
		if schemaAt(defs, key) == nil {
			t.Errorf("schemaDocs: %q is not a schema or property generated from the Go types", key)
		}
	}
	for name, props := range schemaOptional {
		for _, p := range props {
			if schemaAt(defs, name+"."+p) == nil {
				t.Errorf("schemaOptional: %s.%s is not a generated property", name, p)
			}
		}
	}
	for _, name := range []string{"Job", "Progress", "Output", "JobError", "Timings", "Delivery", "WebhookSpec", "JobStatus", "JobSpec",
		"Accepted", "JobList", "Error", "ErrorInfo", "Health", "Param", "ParamSpec", "MadeName",
		"TemplateDefinition", "TemplateInfo", "TemplateList", "TemplateJobRequest"} {
		if defs[name] == nil {
			t.Errorf("no generated schema %s", name)
		}
	}
	for name, sc := range defs {
		// ImageSource is replaced by the template package's schema.
		if _, ok := sc.(obj)["description"]; !ok && name != "ImageSource" {
			t.Errorf("schema %s has no description in schemaDocs", name)
		}
	}
}

// TestErrorCodesHoldEveryConstant: every code declared in errors.go is in the list the
// document's enum comes from.
func TestErrorCodesHoldEveryConstant(t *testing.T) {
	jobConsts := stringConstants(t, "../job/*.go", nil)
	declared := stringConstants(t, "errors.go", jobConsts)
	codes := errorCodes()
	n := 0
	for name, v := range declared {
		if strings.HasPrefix(name, "Code") {
			n++
			if !slices.Contains(codes, job.Code(v)) {
				t.Errorf("errorCodes() does not list %s (%q)", name, v)
			}
		}
	}
	if n == 0 {
		t.Fatal("no Code constants found in errors.go")
	}
	for _, c := range job.SpecCodes() {
		if !slices.Contains(codes, c) {
			t.Errorf("errorCodes() does not list the submission code %q", c)
		}
	}
}

// stringConstants returns the string constants the files matching pattern declare,
// by name; a value "job.Name" is looked up in jobConsts.
func stringConstants(t *testing.T, pattern string, jobConsts map[string]string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files %s: %v", pattern, err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					switch v := vs.Values[i].(type) {
					case *ast.BasicLit:
						if s, err := strconv.Unquote(v.Value); err == nil && v.Kind == token.STRING {
							out[id.Name] = s
						}
					case *ast.SelectorExpr:
						if x, ok := v.X.(*ast.Ident); ok && x.Name == "job" {
							s, ok := jobConsts[v.Sel.Name]
							if !ok {
								t.Fatalf("%s = job.%s: no such string constant in package job", id.Name, v.Sel.Name)
							}
							out[id.Name] = s
						}
					}
				}
			}
		}
	}
	return out
}

// componentsSpec loads the component schemas, in a document of their own, with
// kin-openapi.
func componentsSpec(t *testing.T) *openapi3.T {
	t.Helper()
	raw, err := json.Marshal(obj{
		"openapi": "3.1.0", "info": obj{"title": "components", "version": "0"}, "paths": obj{},
		"components": obj{"schemas": componentSchemas()},
	})
	require.NoError(t, err)
	loader := openapi3.NewLoader()
	spec, err := loader.LoadFromData(raw)
	require.NoError(t, err)
	require.NoError(t, spec.Validate(loader.Context))
	return spec
}

// matchesSchema validates the JSON of v against the component schema name, and
// checks that every key of the object (and of the objects of its arrays listed in
// nested: property → component) is a property the schema documents: the schemas
// allow other properties, so VisitJSON alone would not notice a field that a
// custom MarshalJSON adds.
func matchesSchema(t *testing.T, spec *openapi3.T, name string, v any, nested map[string]string) {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	var value map[string]any
	require.NoError(t, json.Unmarshal(data, &value))
	sc := spec.Components.Schemas[name].Value
	require.NoError(t, sc.VisitJSON(value, openapi3.EnableJSONSchema2020()), "%s: %s", name, data)
	for k, item := range value {
		require.Contains(t, sc.Properties, k, "%s writes %q, which its schema does not document", name, k)
		if comp, ok := nested[k]; ok {
			for _, elem := range item.([]any) {
				for ek := range elem.(map[string]any) {
					require.Contains(t, spec.Components.Schemas[comp].Value.Properties, ek, "%s.%s[] writes %q", name, k, ek)
				}
			}
		}
	}
}

// TestTemplateInfoMatchesItsSchema marshals real TemplateInfos (with discovered
// parameters whose names were made, with and without the workflow) through their
// custom MarshalJSON and validates them against the TemplateInfo schema.
func TestTemplateInfoMatchesItsSchema(t *testing.T) {
	t.Parallel()
	spec := componentsSpec(t)
	info, err := comfy.ParseObjectInfo(fixtures.ReadObjectInfo(t))
	require.NoError(t, err)
	objectInfo := func(context.Context) (comfy.ObjectInfo, error) { return info, nil }
	tmpl, err := template.Compile(t.Context(), template.Definition{Name: "sized", Description: "titled inputs", Workflow: json.RawMessage(`{
 "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}, "_meta": {"title": "Input: size"}},
 "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}, "_meta": {"title": "Input: color"}}
}`)}, objectInfo)
	require.NoError(t, err)
	require.NotEmpty(t, tmpl.ParamsMade, "size_width, size_height, size_batch_size are made names")
	tmpl.Version = 1
	tmpl.CreatedAt = time.Date(2026, 12, 2, 21, 0, 0, 0, time.UTC)
	tmpl.UpdatedAt = tmpl.CreatedAt

	nested := map[string]string{"params": "Param", "params_made": "MadeName"}
	full := apiclient.TemplateInfo{Template: tmpl, ParamsSchema: tmpl.JSONSchema(), ImagesSchema: tmpl.ImagesSchema(),
		JobsURL: "http://localhost:8080/v1/templates/sized/jobs"}
	matchesSchema(t, spec, "TemplateInfo", full, nested)
	data, err := json.Marshal(full)
	require.NoError(t, err)
	require.Contains(t, string(data), `"params_made"`)
	require.Contains(t, string(data), `"workflow"`)

	listed := *tmpl
	listed.Workflow = nil
	matchesSchema(t, spec, "TemplateInfo", apiclient.TemplateInfo{Template: &listed, ParamsSchema: tmpl.JSONSchema(), ImagesSchema: tmpl.ImagesSchema()}, nested)
	matchesSchema(t, spec, "TemplateList", apiclient.TemplateList{Templates: []apiclient.TemplateInfo{full}}, nil)

	// The schema does refuse what the API never writes.
	var broken map[string]any
	require.NoError(t, json.Unmarshal(data, &broken))
	delete(broken, "params_schema")
	require.Error(t, spec.Components.Schemas["TemplateInfo"].Value.VisitJSON(broken, openapi3.EnableJSONSchema2020()))
	broken["params_schema"] = obj{}
	broken["params_made"] = []any{obj{"param": "x"}}
	require.Error(t, spec.Components.Schemas["TemplateInfo"].Value.VisitJSON(broken, openapi3.EnableJSONSchema2020()))
}

// TestErrorBodyMatchesItsSchema: the envelope writeError writes, with the violations
// of invalid_params, is an Error; a code outside errorCodes() is not.
func TestErrorBodyMatchesItsSchema(t *testing.T) {
	t.Parallel()
	spec := componentsSpec(t)
	body := ErrorBody{Error: bounded(ErrorInfo{Code: string(CodeInvalidParams), Message: "2 problems", Field: "params",
		Details: []template.Violation{{Param: "seed", Message: "must be an integer"}, {Param: "x", Message: "unknown parameter"}}})}
	matchesSchema(t, spec, "Error", body, nil)
	for _, c := range errorCodes() {
		matchesSchema(t, spec, "Error", ErrorBody{Error: ErrorInfo{Code: string(c), Message: "m"}}, nil)
	}
	require.Error(t, spec.Components.Schemas["Error"].Value.VisitJSON(
		map[string]any{"error": map[string]any{"code": "no_such_code", "message": "m"}}, openapi3.EnableJSONSchema2020()))
}
