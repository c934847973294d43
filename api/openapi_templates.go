package api

import (
	"maps"
	"sort"
	"strconv"
	"strings"

	"github.com/comfyq/comfyq/template"
)

// templateOperations adds each template's own operation to paths, with its
// parameter and image schemas (built from the template's parameters) to schemas,
// and returns a tag per template.
func templateOperations(templates []*template.Template, schemas, paths obj, security []any) []any {
	var tags []any
	opIDs := map[string]bool{}
	for _, t := range templates {
		base := "Template_" + t.Name
		schemas[base+"_Params"] = t.JSONSchema()
		schemas[base+"_Images"] = t.ImagesSchema()
		req := templateRequestSchema(schemas, ref(base+"_Params"), ref(base+"_Images"))
		req["title"] = t.Name + " job"
		schemas[base+"_Job"] = req
		id := "submit_" + strings.ReplaceAll(t.Name, "-", "_")
		for opIDs[id] {
			id += "_"
		}
		opIDs[id] = true
		desc := t.Description
		if desc != "" {
			desc += "\n\n"
		}
		desc += "Submits a job from template " + t.Name + " (version " + strconv.Itoa(t.Version) + "). " + paramSummary(t)
		paths["/v1/templates/"+t.Name+"/jobs"] = obj{"post": obj{
			"operationId": id, "tags": []string{"template: " + t.Name},
			"summary": "Run " + t.Name, "description": desc,
			"security": security, "parameters": []any{idempotencyHeader()},
			"requestBody": jsonBody(ref(base+"_Job"), ""),
			"responses":   merge(obj{"202": jsonResponse("accepted", ref("Accepted"))}, errorResponses("400", "401", "404", "413", "415", "422")),
		}}
		tags = append(tags, obj{"name": "template: " + t.Name, "description": t.Description})
	}
	return tags
}

func paramSummary(t *template.Template) string {
	var names, images []string
	for _, p := range t.Params {
		if p.Type == template.TypeImage {
			images = append(images, p.Name)
		} else {
			names = append(names, p.Name)
		}
	}
	sort.Strings(names)
	sort.Strings(images)
	out := "Parameters: none."
	if len(names) > 0 {
		out = "Parameters: " + strings.Join(names, ", ") + "."
	}
	if len(images) > 0 {
		out += " Images: " + strings.Join(images, ", ") + "."
	}
	return out
}

// templateRequestSchema is the generated TemplateJobRequest with the template's own
// params and images schemas.
func templateRequestSchema(schemas, params, images obj) obj {
	req := maps.Clone(schemas["TemplateJobRequest"].(obj))
	props := maps.Clone(req["properties"].(obj))
	props["params"] = params
	props["images"] = images
	req["properties"] = props
	return req
}
