package api

import "github.com/comfyq/comfyq/template"

func errorComponents() obj {
	resp := func(desc string) obj { return jsonResponse(desc, ref("Error")) }
	return obj{
		"BadRequest":           resp("invalid_request, invalid_workflow, invalid_params (details lists every violation) or another submission code"),
		"Unauthorized":         resp("unauthorized: no API key, or an unknown one"),
		"Forbidden":            resp("forbidden: the route needs an admin key"),
		"NotFound":             resp("not_found"),
		"Conflict":             resp("conflict: the job already ended, or the template exists"),
		"TooLarge":             resp("too_large: the body or an image is over its limit"),
		"UnsupportedMediaType": resp("unsupported_media_type: the body must be application/json"),
		"Unavailable":          resp("unavailable: Redis, storage or object_info cannot be reached"),
		"Internal":             resp("internal: an unexpected error; the message carries a request id to find it in the server's log"),
	}
}

// componentSchemas are the fixed schemas: the Job JSON (generated from the job
// package's types), submissions, templates, errors.
func componentSchemas() obj {
	dateTime := obj{"type": "string", "format": "date-time"}
	// ImageSource replaces the generated one: it says "exactly one of url, base64, key".
	return merge(jobSchemas(), obj{
		"ImageSource": template.ImageSourceSchema(),
		"Health": object("", obj{
			"status":  obj{"type": "string", "enum": []string{"ok", "unavailable"}},
			"version": typed("string", ""),
			"checks":  obj{"type": "object", "additionalProperties": obj{"type": "string"}},
		}, "status"),
		"Param": object("A template parameter.", obj{
			"name":        typed("string", ""),
			"targets":     arrayOf(typed("string", ""), "input paths, node.inputs.name"),
			"type":        obj{"type": "string", "enum": []string{"string", "integer", "number", "boolean", "image"}},
			"default":     obj{"description": "the value used when the parameter is not given"},
			"minimum":     typed("number", ""),
			"maximum":     typed("number", ""),
			"enum":        arrayOf(obj{}, "the allowed values"),
			"description": typed("string", ""),
			"required":    typed("boolean", ""),
			"multiline":   typed("boolean", ""),
		}, "name", "targets", "type"),
		"ParamSpec": object("A parameter declared explicitly; only name and targets are required.", obj{
			"name":        typed("string", ""),
			"targets":     arrayOf(typed("string", ""), "input paths; the node may be an id, a unique title or a unique class"),
			"type":        obj{"type": "string", "enum": []string{"string", "integer", "number", "boolean", "image"}},
			"description": typed("string", ""),
			"default":     obj{},
			"minimum":     typed("number", ""),
			"maximum":     typed("number", ""),
			"enum":        arrayOf(obj{}, ""),
			"required":    typed("boolean", ""),
		}, "name", "targets"),
		"TemplateDefinition": object("A template to register.", obj{
			"name":         obj{"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$", "description": "required for POST; taken from the path for PUT"},
			"description":  typed("string", ""),
			"workflow":     obj{"type": "object", "description": "an API-format or UI-format workflow"},
			"params":       arrayOf(ref("ParamSpec"), "explicit parameters; when absent they are found by convention"),
			"title_prefix": typed("string", "the title prefix of input nodes (default \"Input: \")"),
		}, "workflow"),
		"TemplateInfo": object("A registered template.", obj{
			"name":          typed("string", ""),
			"description":   typed("string", ""),
			"version":       typed("integer", "grows by one with every change"),
			"workflow":      obj{"type": "object", "description": "the API-format workflow (absent in lists)"},
			"params":        arrayOf(ref("Param"), ""),
			"created_at":    dateTime,
			"updated_at":    dateTime,
			"params_schema": obj{"type": "object", "description": "the JSON Schema of the params object"},
			"images_schema": obj{"type": "object", "description": "the JSON Schema of the images object"},
			"jobs_url":      obj{"type": "string", "format": "uri"},
		}, "name", "version", "params"),
		"TemplateList": object("", obj{"templates": arrayOf(ref("TemplateInfo"), "")}, "templates"),
		"TemplateJobRequest": templateRequestSchema(
			obj{"type": "object", "description": "the template's parameters", "additionalProperties": true},
			obj{"type": "object", "description": "files for the template's image parameters", "additionalProperties": ref("ImageSource")},
		),
	})
}
