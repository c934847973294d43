package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
)

// The /docs page is rendered on the server from the OpenAPI document: one section per
// operation (method, path, authentication, parameters, body fields, responses) and one
// per schema, with inline CSS and no script, font or image from anywhere else, so it
// works offline and behind strict firewalls.

type docField struct {
	Name        string
	Type        string
	TypeRef     string // anchor of the type's schema, if it is one
	Required    bool
	Detail      string // default, bounds, choices
	Description string
}

type docOp struct {
	Method, Path, Anchor string
	Summary, Description string
	Auth                 string
	Params               []docField
	BodyRef              string
	Body                 []docField
	TemplateParams       []docField
	TemplateParamsRef    string
	Responses            []docField
}

type docTag struct {
	Name, Description string
	Ops               []docOp
}

type docSchema struct {
	Name, Anchor, Description string
	Fields                    []docField
}

type docPage struct {
	Title, Version, Description string
	Tags                        []docTag
	Schemas                     []docSchema
}

func (s *Server) serveDocs(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.templatesForDocs(r)
	if err != nil {
		return err
	}
	page := buildDocPage(s.openAPI(r, ts))
	var buf bytes.Buffer
	if err := docsTemplate.Execute(&buf, page); err != nil {
		return fmt.Errorf("api: render docs: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// The page needs nothing from elsewhere; say so to the browser too.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "+frameAncestorsNone)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

func (s *Server) serveRoot(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{
		"name": "comfyq", "version": s.cfg.Version, "docs": "/docs", "openapi": "/openapi.json", "console": consolePath + "/",
	})
	return nil
}

var methodOrder = map[string]int{"get": 0, "post": 1, "put": 2, "patch": 3, "delete": 4}

func buildDocPage(doc obj) docPage {
	info, _ := doc["info"].(obj)
	page := docPage{Title: str(info["title"]), Version: str(info["version"]), Description: str(info["description"])}
	comps, _ := doc["components"].(obj)
	schemas, _ := comps["schemas"].(obj)
	responses, _ := comps["responses"].(obj)

	tagIndex := map[string]int{}
	for _, t := range asList(doc["tags"]) {
		to, _ := t.(obj)
		tagIndex[str(to["name"])] = len(page.Tags)
		page.Tags = append(page.Tags, docTag{Name: str(to["name"]), Description: str(to["description"])})
	}
	paths, _ := doc["paths"].(obj)
	for _, p := range sortedKeys(paths) {
		item, _ := paths[p].(obj)
		methods := sortedKeys(item)
		sort.SliceStable(methods, func(i, j int) bool { return methodOrder[methods[i]] < methodOrder[methods[j]] })
		for _, m := range methods {
			op, _ := item[m].(obj)
			d := docOp{
				Method: strings.ToUpper(m), Path: p,
				Anchor:  "op-" + anchor(str(op["operationId"])),
				Summary: str(op["summary"]), Description: str(op["description"]),
				Auth: authText(op["security"], op["x-comfyq-role"]),
			}
			for _, prm := range asList(op["parameters"]) {
				po, _ := prm.(obj)
				f := fieldOf(str(po["name"]), schemaOf(po["schema"]), schemas)
				f.Required = po["required"] == true
				f.Type += " (" + str(po["in"]) + ")"
				if desc := str(po["description"]); desc != "" {
					f.Description = desc
				}
				d.Params = append(d.Params, f)
			}
			if rb, ok := op["requestBody"].(obj); ok {
				content, _ := rb["content"].(obj)
				js, _ := content["application/json"].(obj)
				body := schemaOf(js["schema"])
				d.BodyRef = refName(body)
				resolved := resolve(body, schemas)
				d.Body = fieldsOf(resolved, schemas)
				if props, ok := resolved["properties"].(obj); ok {
					if pr := refName(schemaOf(props["params"])); strings.HasPrefix(pr, "Template_") {
						d.TemplateParamsRef = pr
						d.TemplateParams = fieldsOf(resolve(schemaOf(props["params"]), schemas), schemas)
					}
				}
			}
			rs, _ := op["responses"].(obj)
			for _, code := range sortedKeys(rs) {
				ro := schemaOf(rs[code])
				if name := refName(ro); name != "" {
					ro, _ = responses[name].(obj)
				}
				d.Responses = append(d.Responses, docField{Name: code, Description: str(ro["description"])})
			}
			tag := ""
			if tl := asList(op["tags"]); len(tl) > 0 {
				tag = str(tl[0])
			}
			i, ok := tagIndex[tag]
			if !ok {
				tagIndex[tag] = len(page.Tags)
				i = len(page.Tags)
				page.Tags = append(page.Tags, docTag{Name: tag})
			}
			page.Tags[i].Ops = append(page.Tags[i].Ops, d)
		}
	}
	for _, name := range sortedKeys(schemas) {
		sc := schemaOf(schemas[name])
		page.Schemas = append(page.Schemas, docSchema{
			Name: name, Anchor: "schema-" + anchor(name), Description: str(sc["description"]),
			Fields: fieldsOf(sc, schemas),
		})
	}
	return page
}

func fieldsOf(schema obj, schemas obj) []docField {
	props, _ := schema["properties"].(obj)
	required := map[string]bool{}
	for _, r := range asList(schema["required"]) {
		required[str(r)] = true
	}
	var out []docField
	for _, name := range sortedKeys(props) {
		f := fieldOf(name, schemaOf(props[name]), schemas)
		f.Required = required[name]
		out = append(out, f)
	}
	return out
}

func fieldOf(name string, sc obj, schemas obj) docField {
	f := docField{Name: name, Description: str(sc["description"])}
	if rn := refName(sc); rn != "" {
		f.Type, f.TypeRef = rn, "schema-"+anchor(rn)
		if f.Description == "" {
			f.Description = str(schemaOf(schemas[rn])["description"])
		}
		return f
	}
	f.Type = typeText(sc)
	if items, ok := sc["items"].(obj); ok {
		if rn := refName(items); rn != "" {
			f.Type, f.TypeRef = "array of "+rn, "schema-"+anchor(rn)
		}
	}
	if ap, ok := sc["additionalProperties"].(obj); ok {
		if rn := refName(ap); rn != "" {
			f.Type, f.TypeRef = "map of "+rn, "schema-"+anchor(rn)
		}
	}
	var details []string
	if v, ok := sc["default"]; ok {
		details = append(details, "default "+jsonText(v))
	}
	if v, ok := sc["minimum"]; ok {
		details = append(details, "min "+jsonText(v))
	}
	if v, ok := sc["maximum"]; ok {
		details = append(details, "max "+jsonText(v))
	}
	if v, ok := sc["maxLength"]; ok {
		details = append(details, "at most "+jsonText(v)+" characters")
	}
	if enum := asList(sc["enum"]); len(enum) > 0 {
		vals := make([]string, 0, len(enum))
		for i, e := range enum {
			if i == 12 {
				vals = append(vals, fmt.Sprintf("… (%d in all)", len(enum)))
				break
			}
			vals = append(vals, jsonText(e))
		}
		details = append(details, "one of "+strings.Join(vals, ", "))
	}
	if sc["x-multiline"] == true {
		details = append(details, "multi-line text")
	}
	f.Detail = strings.Join(details, "; ")
	return f
}

func typeText(sc obj) string {
	switch t := sc["type"].(type) {
	case string:
		if t == "array" {
			if items, ok := sc["items"].(obj); ok {
				if it := typeText(items); it != "" {
					return "array of " + it
				}
			}
		}
		if f := str(sc["format"]); f != "" {
			return t + " (" + f + ")"
		}
		return t
	case []string:
		return strings.Join(t, " | ")
	}
	if _, ok := sc["oneOf"]; ok {
		return "one of several shapes"
	}
	return "any"
}

func authText(security, role any) string {
	list := asList(security)
	switch {
	case list != nil && len(list) == 0:
		return "none"
	case role == "admin":
		return "admin key (Authorization: Bearer)"
	}
	return "API key (Authorization: Bearer)"
}

func schemaOf(v any) obj {
	o, _ := v.(obj)
	return o
}

func refName(sc obj) string {
	r, _ := sc["$ref"].(string)
	if i := strings.LastIndex(r, "/"); i >= 0 {
		return r[i+1:]
	}
	return ""
}

func resolve(sc obj, schemas obj) obj {
	for i := 0; i < 8; i++ {
		name := refName(sc)
		if name == "" {
			return sc
		}
		sc = schemaOf(schemas[name])
	}
	return sc
}

func asList(v any) []any {
	switch l := v.(type) {
	case []any:
		return l
	case []string:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out
	}
	return nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func jsonText(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}

func sortedKeys(m obj) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func anchor(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

var docsTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} API reference</title>
<style>
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d232a;background:#fafbfc}
main{max-width:1100px;margin:0 auto;padding:1.5rem 2rem 4rem}
nav{background:#1d232a;color:#e8ecf0;padding:.75rem 2rem}nav a{color:#9fd3ff;margin-right:1rem}
h1{margin:.2rem 0}h2{margin-top:2.5rem;border-bottom:2px solid #d8dee4;padding-bottom:.3rem}
h3{margin:0;font-size:1.05rem;font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
section.op{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:1rem 1.2rem;margin:1rem 0}
.m{display:inline-block;min-width:4.2rem;text-align:center;border-radius:4px;color:#fff;font-size:.8rem;padding:.1rem .4rem;margin-right:.5rem}
.GET{background:#1f7a4d}.POST{background:#1e5fa8}.PUT{background:#a86b1e}.DELETE{background:#b03a2e}
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.9rem}
th,td{text-align:left;border-top:1px solid #e5e9ed;padding:.3rem .5rem;vertical-align:top}
th{background:#f3f5f7}code,.t{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}
.req{color:#b03a2e;font-size:.75rem}.muted{color:#5c6670}.desc{white-space:pre-line}
</style></head><body>
<nav><strong>{{.Title}}</strong> {{.Version}} &nbsp; <a href="#operations">Operations</a><a href="#schemas">Schemas</a><a href="openapi.json">openapi.json</a><a href="console/">Console</a></nav>
<main>
<h1>{{.Title}} API reference</h1>
<p class="desc">{{.Description}}</p>
<div id="operations"></div>
{{range .Tags}}{{if .Ops}}
<h2>{{.Name}}</h2>{{if .Description}}<p class="muted">{{.Description}}</p>{{end}}
{{range .Ops}}<section class="op" id="{{.Anchor}}">
<h3><span class="m {{.Method}}">{{.Method}}</span>{{.Path}}</h3>
<p><strong>{{.Summary}}</strong> <span class="muted">· authentication: {{.Auth}}</span></p>
{{if .Description}}<p class="desc">{{.Description}}</p>{{end}}
{{if .Params}}<h4>Parameters</h4>{{template "fields" .Params}}{{end}}
{{if .TemplateParams}}<h4>Template parameters (<code>params</code>)</h4>{{template "fields" .TemplateParams}}{{end}}
{{if .Body}}<h4>Request body{{if .BodyRef}} (<a href="#schema-{{.BodyRef}}">{{.BodyRef}}</a>){{end}}</h4>{{template "fields" .Body}}{{end}}
<h4>Responses</h4><table>{{range .Responses}}<tr><td class="t">{{.Name}}</td><td>{{.Description}}</td></tr>{{end}}</table>
</section>{{end}}{{end}}{{end}}
<h2 id="schemas">Schemas</h2>
{{range .Schemas}}<section class="op" id="{{.Anchor}}"><h3>{{.Name}}</h3>{{if .Description}}<p class="desc">{{.Description}}</p>{{end}}
{{if .Fields}}{{template "fields" .Fields}}{{end}}</section>{{end}}
</main></body></html>
{{define "fields"}}<table><tr><th>name</th><th>type</th><th>constraints</th><th>description</th></tr>
{{range .}}<tr><td class="t">{{.Name}}{{if .Required}} <span class="req">required</span>{{end}}</td>
<td class="t">{{if .TypeRef}}<a href="#{{.TypeRef}}">{{.Type}}</a>{{else}}{{.Type}}{{end}}</td>
<td class="t">{{.Detail}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
`))
