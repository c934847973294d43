package api

import (
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/comfyq/comfyq/template"
)

// obj is a JSON object of the OpenAPI document.
type obj = map[string]any

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func respRef(name string) obj { return obj{"$ref": "#/components/responses/" + name} }

func typed(typ, desc string) obj {
	o := obj{"type": typ}
	if desc != "" {
		o["description"] = desc
	}
	return o
}

func object(desc string, props obj, required ...string) obj {
	o := obj{"type": "object", "properties": props}
	if desc != "" {
		o["description"] = desc
	}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func arrayOf(items obj, desc string) obj {
	o := obj{"type": "array", "items": items}
	if desc != "" {
		o["description"] = desc
	}
	return o
}

func jsonBody(schema obj, desc string) obj {
	o := obj{"required": true, "content": obj{"application/json": obj{"schema": schema}}}
	if desc != "" {
		o["description"] = desc
	}
	return o
}

func jsonResponse(desc string, schema obj) obj {
	return obj{"description": desc, "content": obj{"application/json": obj{"schema": schema}}}
}

// errorResponses are the error answers an operation can give, by status.
func errorResponses(codes ...string) obj {
	names := map[string]string{
		"400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound",
		"409": "Conflict", "413": "TooLarge", "415": "UnsupportedMediaType", "503": "Unavailable",
	}
	out := obj{"500": respRef("Internal")}
	for _, c := range codes {
		out[c] = respRef(names[c])
	}
	return out
}

func merge(a, b obj) obj {
	out := obj{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

var (
	userSecurity  = []any{obj{"bearerAuth": []any{}}}
	adminSecurity = []any{obj{"bearerAuth": []any{}}}
	noSecurity    = []any{}
)

func idParam() obj {
	return obj{"name": "id", "in": "path", "required": true, "description": "the job id (a UUIDv7)",
		"schema": obj{"type": "string", "format": "uuid"}}
}

func nameParam() obj {
	return obj{"name": "name", "in": "path", "required": true, "description": "the template's name",
		"schema": obj{"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}}
}

// openAPI builds the OpenAPI 3.1 document: every route, and one operation per template
// with the template's parameter schema.
func (s *Server) openAPI(r *http.Request, templates []*template.Template) obj {
	security := userSecurity
	admin := adminSecurity
	if s.cfg.NoAuth {
		security, admin = noSecurity, noSecurity
	}
	metricsSecurity := security
	if s.cfg.PublicMetrics {
		metricsSecurity = noSecurity
	}
	schemas := componentSchemas()
	paths := obj{
		"/": obj{"get": obj{
			"operationId": "root", "tags": []string{"operations"}, "summary": "Where the documentation is",
			"security": noSecurity,
			"responses": obj{"200": jsonResponse("links to /docs and /openapi.json",
				object("", obj{"name": typed("string", ""), "version": typed("string", ""), "docs": typed("string", ""), "openapi": typed("string", "")}))},
		}},
		"/healthz": obj{"get": obj{
			"operationId": "healthz", "tags": []string{"operations"}, "summary": "Liveness",
			"description": "Answers 200 while the process serves requests.",
			"security":    noSecurity,
			"responses":   obj{"200": jsonResponse("the process is alive", ref("Health"))},
		}},
		"/readyz": obj{"get": obj{
			"operationId": "readyz", "tags": []string{"operations"}, "summary": "Readiness",
			"description": "Answers 200 when Redis and the storage answer, 503 otherwise.",
			"security":    noSecurity,
			"responses": obj{
				"200": jsonResponse("ready", ref("Health")),
				"503": jsonResponse("Redis or the storage is unreachable", ref("Health")),
			},
		}},
		"/metrics": obj{"get": obj{
			"operationId": "metrics", "tags": []string{"operations"}, "summary": "Prometheus metrics",
			"description": "Jobs by state and queue, queue depth and latency, execution and upload durations, node health, webhook deliveries, in the Prometheus text format.",
			"security":    metricsSecurity,
			"responses": merge(obj{"200": obj{"description": "the metrics",
				"content": obj{"text/plain": obj{"schema": obj{"type": "string"}}}}}, errorResponses("401")),
		}},
		"/openapi.json": obj{"get": obj{
			"operationId": "openapi", "tags": []string{"operations"}, "summary": "This OpenAPI document",
			"security": noSecurity,
			"responses": obj{"200": obj{"description": "the OpenAPI 3.1 document",
				"content": obj{"application/json": obj{"schema": obj{"type": "object"}}}}},
		}},
		"/docs": obj{"get": obj{
			"operationId": "docs", "tags": []string{"operations"}, "summary": "This reference as a web page",
			"security": noSecurity,
			"responses": obj{"200": obj{"description": "an HTML page",
				"content": obj{"text/html": obj{"schema": obj{"type": "string"}}}}},
		}},
		"/v1/jobs": obj{
			"post": obj{
				"operationId": "createJob", "tags": []string{"jobs"}, "summary": "Submit a job",
				"description": "Submits a workflow (API or UI format) or a template with its parameters. " +
					"Nothing is enqueued when the submission is refused. A retried submission with the same " +
					"Idempotency-Key returns the same job.",
				"security": security,
				"parameters": []any{obj{"name": "Idempotency-Key", "in": "header", "required": false,
					"description": "makes a retried submission return the same job (at most 256 bytes)",
					"schema":      obj{"type": "string", "maxLength": 256}}},
				"requestBody": jsonBody(ref("JobSpec"), "the submission"),
				"responses": merge(obj{"202": obj{
					"description": "accepted: the job is queued",
					"headers":     obj{"Location": obj{"description": "the status URL", "schema": obj{"type": "string"}}},
					"content":     obj{"application/json": obj{"schema": ref("Accepted")}},
				}}, errorResponses("400", "401", "413", "415")),
			},
			"get": obj{
				"operationId": "listJobs", "tags": []string{"jobs"}, "summary": "List jobs",
				"description": "Jobs newest first, filtered by status and queue, in pages: pass next_cursor as cursor for the next page.",
				"security":    security,
				"parameters": []any{
					obj{"name": "status", "in": "query", "schema": ref("JobStatus")},
					obj{"name": "queue", "in": "query", "schema": obj{"type": "string"}},
					obj{"name": "limit", "in": "query", "schema": obj{"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
					obj{"name": "cursor", "in": "query", "schema": obj{"type": "string"}},
				},
				"responses": merge(obj{"200": jsonResponse("a page of jobs", ref("JobList"))}, errorResponses("400", "401")),
			},
		},
		"/v1/jobs/{id}": obj{"get": obj{
			"operationId": "getJob", "tags": []string{"jobs"}, "summary": "Get a job's status",
			"description": "The Job JSON, with fresh output URLs (presigned, or served by this API for a file store).",
			"security":    security, "parameters": []any{idParam()},
			"responses": merge(obj{"200": jsonResponse("the job", ref("Job"))}, errorResponses("401", "404")),
		}},
		"/v1/jobs/{id}/events": obj{"get": obj{
			"operationId": "jobEvents", "tags": []string{"jobs"}, "summary": "Follow a job (Server-Sent Events)",
			"description": "A text/event-stream: the job's current state first, then every status and progress change " +
				"(event: status | progress, data: the Job JSON), ending after a terminal state. Comment lines are " +
				"sent every 15 s while nothing happens. Any API replica can serve any job's stream.",
			"security": security, "parameters": []any{idParam()},
			"responses": merge(obj{"200": obj{"description": "the event stream",
				"content": obj{"text/event-stream": obj{"schema": obj{"type": "string"}}}}}, errorResponses("401", "404", "503")),
		}},
		"/v1/jobs/{id}/cancel": obj{"post": obj{
			"operationId": "cancelJob", "tags": []string{"jobs"}, "summary": "Cancel a job",
			"description": "A queued job never runs; a running one is interrupted on its node and ends canceled " +
				"(cancel_requested is set until then). A job that already ended answers 409 with the job in details.job.",
			"security": security, "parameters": []any{idParam()},
			"responses": merge(obj{"200": jsonResponse("the job after the cancel", ref("Job"))}, errorResponses("401", "404", "409")),
		}},
		"/v1/jobs/{id}/webhooks/replay": obj{"post": obj{
			"operationId": "replayWebhooks", "tags": []string{"jobs"}, "summary": "Send a finished job's webhook again",
			"description": "Re-sends the terminal event (job.succeeded, job.failed or job.canceled) of a finished job to " +
				"its webhook and the matching global subscriptions, as new messages (new webhook-id). Answers 202 with the " +
				"deliveries enqueued; 409 when the job has not finished or has no webhook subscription.",
			"security": security, "parameters": []any{idParam()},
			"responses": merge(obj{"202": jsonResponse("the deliveries enqueued", obj{"type": "object",
				"properties": obj{"deliveries": obj{"type": "array", "items": obj{"type": "object"}}}})},
				errorResponses("401", "404", "409")),
		}},
		"/v1/files/{key}": obj{"get": obj{
			"operationId": "getFile", "tags": []string{"jobs"}, "summary": "Download an output file",
			"description": "Serves an object of the store, for stores without URLs of their own (a file store). The key may hold slashes.",
			"security":    security,
			"parameters": []any{obj{"name": "key", "in": "path", "required": true,
				"description": "the object key, e.g. jobs/{id}/9/ComfyUI_00001_.png", "schema": obj{"type": "string"}}},
			"responses": merge(obj{"200": obj{"description": "the file",
				"content": obj{"application/octet-stream": obj{"schema": obj{"type": "string", "contentMediaType": "application/octet-stream"}}}}},
				errorResponses("401", "404")),
		}},
		"/v1/templates": obj{
			"get": obj{
				"operationId": "listTemplates", "tags": []string{"templates"}, "summary": "List templates",
				"security":  security,
				"responses": merge(obj{"200": jsonResponse("the templates, without their workflows", ref("TemplateList"))}, errorResponses("401")),
			},
			"post": obj{
				"operationId": "createTemplate", "x-comfyq-role": "admin", "tags": []string{"templates"}, "summary": "Register a template (admin)",
				"description": "Registers a workflow (API or UI format) under a name, with its parameters declared or found " +
					"by convention (nodes titled \"Input: <name>\", else the sampler heuristic). 409 if the name exists.",
				"security":    admin,
				"requestBody": jsonBody(ref("TemplateDefinition"), ""),
				"responses": merge(obj{"201": jsonResponse("the template", ref("TemplateInfo"))},
					errorResponses("400", "401", "403", "409", "413", "415", "503")),
			},
		},
		"/v1/templates/{name}": obj{
			"get": obj{
				"operationId": "getTemplate", "tags": []string{"templates"}, "summary": "Get a template",
				"security": security, "parameters": []any{nameParam()},
				"responses": merge(obj{"200": jsonResponse("the template", ref("TemplateInfo"))}, errorResponses("401", "404")),
			},
			"put": obj{
				"operationId": "putTemplate", "x-comfyq-role": "admin", "tags": []string{"templates"}, "summary": "Create or replace a template (admin)",
				"description": "The version grows by one with every change; jobs record the version they used.",
				"security":    admin, "parameters": []any{nameParam()},
				"requestBody": jsonBody(ref("TemplateDefinition"), ""),
				"responses": merge(obj{
					"200": jsonResponse("the template, replaced", ref("TemplateInfo")),
					"201": jsonResponse("the template, created", ref("TemplateInfo")),
				}, errorResponses("400", "401", "403", "413", "415", "503")),
			},
			"delete": obj{
				"operationId": "deleteTemplate", "x-comfyq-role": "admin", "tags": []string{"templates"}, "summary": "Delete a template (admin)",
				"security": admin, "parameters": []any{nameParam()},
				"responses": merge(obj{"204": obj{"description": "deleted"}}, errorResponses("401", "403", "404")),
			},
		},
		"/v1/templates/{name}/jobs": obj{"post": obj{
			"operationId": "submitTemplate", "tags": []string{"templates"}, "summary": "Submit a job from any template",
			"description": "The parameters are checked against the template's schema; every violation is reported at once " +
				"(400 invalid_params, details: [{param, message}]). Each template also has its own typed operation below.",
			"security": security, "parameters": []any{nameParam(), idempotencyHeader()},
			"requestBody": jsonBody(ref("TemplateJobRequest"), ""),
			"responses":   merge(obj{"202": jsonResponse("accepted", ref("Accepted"))}, errorResponses("400", "401", "404", "413", "415")),
		}},
		"/monitoring/": obj{"get": obj{
			"operationId": "monitoring", "x-comfyq-role": "admin", "tags": []string{"operations"}, "summary": "The asynqmon dashboard (admin)",
			"description": "Queues, tasks and servers in a browser. The browser asks for the admin key (HTTP Basic: any user name, the key as password).",
			"security":    dashboardSecurity(s.cfg.NoAuth),
			"responses": merge(obj{"200": obj{"description": "the dashboard",
				"content": obj{"text/html": obj{"schema": obj{"type": "string"}}}}}, errorResponses("401", "403")),
		}},
	}

	var tags []any
	tags = append(tags,
		obj{"name": "jobs", "description": "Submit, follow, list and cancel jobs."},
		obj{"name": "templates", "description": "Workflows registered as typed endpoints."},
	)
	opIDs := map[string]bool{}
	for _, t := range templates {
		base := "Template_" + t.Name
		schemas[base+"_Params"] = t.JSONSchema()
		schemas[base+"_Images"] = t.ImagesSchema()
		req := templateRequestSchema(ref(base+"_Params"), ref(base+"_Images"))
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
			"responses":   merge(obj{"202": jsonResponse("accepted", ref("Accepted"))}, errorResponses("400", "401", "404", "413", "415")),
		}}
		tags = append(tags, obj{"name": "template: " + t.Name, "description": t.Description})
	}
	tags = append(tags, obj{"name": "operations", "description": "Health, metrics, documentation and the dashboard."})

	doc := obj{
		"openapi": "3.1.0",
		"info": obj{
			"title":   "comfyq",
			"version": s.cfg.Version,
			"description": "comfyq turns ComfyUI workflows into a durable job-queue API: submit a workflow or a " +
				"registered template, follow the job by polling or Server-Sent Events, and find the outputs in storage.\n\n" +
				"Authentication: \"Authorization: Bearer KEY\". Template management and the dashboard need an admin key. " +
				"Errors are {\"error\": {\"code\", \"message\", \"field\", \"details\"}} with a 4xx or 5xx status.",
		},
		"servers":  []any{obj{"url": s.baseURL(r)}},
		"tags":     tags,
		"security": security,
		"paths":    paths,
		"components": obj{
			"schemas":   schemas,
			"responses": errorComponents(),
			"securitySchemes": obj{
				"bearerAuth": obj{"type": "http", "scheme": "bearer", "description": "an API key (COMFYQ_API_KEYS) or an admin key (COMFYQ_ADMIN_KEYS)"},
				"basicAuth":  obj{"type": "http", "scheme": "basic", "description": "for the dashboard in a browser: any user name, an admin key as the password"},
			},
		},
	}
	return doc
}

func dashboardSecurity(noAuth bool) []any {
	if noAuth {
		return noSecurity
	}
	return []any{obj{"basicAuth": []any{}}, obj{"bearerAuth": []any{}}}
}

func idempotencyHeader() obj {
	return obj{"name": "Idempotency-Key", "in": "header", "required": false,
		"description": "makes a retried submission return the same job", "schema": obj{"type": "string", "maxLength": 256}}
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

func templateRequestSchema(params, images obj) obj {
	return object("A submission of a template: its parameters and images, and the options of any job.", obj{
		"params":          params,
		"images":          images,
		"set":             obj{"type": "object", "description": "input overrides by path (\"3.inputs.steps\": 30), applied after the parameters", "additionalProperties": true},
		"queue":           typed("string", "the queue (default \"default\")"),
		"timeout_s":       obj{"type": "integer", "minimum": 1, "maximum": 86400, "description": "execution timeout on the node in seconds (default 600)"},
		"max_attempts":    obj{"type": "integer", "minimum": 1, "maximum": 25, "description": "attempts before the job fails (default 4)"},
		"webhook":         ref("WebhookSpec"),
		"metadata":        obj{"type": "object", "description": "stored with the job and returned as is (at most 16 KiB)", "additionalProperties": true},
		"idempotency_key": obj{"type": "string", "maxLength": 256},
		"randomize_seeds": typed("boolean", "give every constant seed a new random value"),
	})
}

// componentSchemas are the fixed schemas: the Job JSON, submissions, templates, errors.
func componentSchemas() obj {
	dateTime := obj{"type": "string", "format": "date-time"}
	anyObject := obj{"type": "object", "additionalProperties": true}
	return obj{
		"JobStatus": obj{"type": "string", "enum": []string{"queued", "running", "uploading", "canceling", "succeeded", "failed", "canceled"}},
		"Job": object("A job's status record.", obj{
			"id":               obj{"type": "string", "format": "uuid"},
			"status":           ref("JobStatus"),
			"queue":            typed("string", ""),
			"template":         typed("string", "the template the job came from"),
			"template_version": typed("integer", "the template's version when the job was submitted"),
			"attempt":          typed("integer", ""),
			"max_attempts":     typed("integer", ""),
			"progress":         ref("Progress"),
			"outputs":          arrayOf(ref("Output"), ""),
			"error":            ref("JobError"),
			"node":             typed("string", "the ComfyUI node's URL"),
			"node_name":        typed("string", ""),
			"metadata":         anyObject,
			"created_at":       dateTime,
			"started_at":       dateTime,
			"finished_at":      dateTime,
			"timings":          ref("Timings"),
			"webhook":          ref("WebhookSpec"),
			"webhooks":         arrayOf(ref("Delivery"), "the delivery log of the job's webhook events"),
			"cancel_requested": typed("boolean", ""),
		}, "id", "status", "queue", "attempt", "max_attempts", "created_at"),
		"Progress": object("How far a running job is.", obj{
			"fraction":    obj{"type": "number", "minimum": 0, "maximum": 1},
			"node":        typed("string", "the executing node's id"),
			"node_class":  typed("string", ""),
			"step":        typed("integer", "the sampler step"),
			"steps":       typed("integer", ""),
			"nodes_done":  typed("integer", ""),
			"nodes_total": typed("integer", ""),
		}, "fraction", "nodes_done", "nodes_total"),
		"Output": object("One output: a file copied to storage, or a text.", obj{
			"node_id":      typed("string", ""),
			"kind":         obj{"type": "string", "enum": []string{"image", "video", "audio", "text", "file"}},
			"filename":     typed("string", ""),
			"key":          typed("string", "the object key in storage"),
			"url":          obj{"type": "string", "format": "uri", "description": "a presigned or served URL, fresh on every response"},
			"size":         typed("integer", ""),
			"sha256":       typed("string", ""),
			"content_type": typed("string", ""),
			"text":         typed("string", ""),
		}, "node_id", "kind"),
		"JobError": object("Why a job failed.", obj{
			"code":           obj{"type": "string", "description": "invalid_workflow, validation_failed, execution_error, timeout, canceled, node_unavailable, invalid_input, upload_failed, internal"},
			"message":        typed("string", ""),
			"node_id":        typed("string", ""),
			"node_class":     typed("string", ""),
			"exception_type": typed("string", ""),
			"node_errors":    obj{"description": "ComfyUI's node_errors, as it sent them"},
			"traceback":      arrayOf(typed("string", ""), ""),
			"retryable":      typed("boolean", ""),
		}, "code", "message"),
		"Timings": object("Durations of the job's phases in milliseconds.", obj{
			"queued_ms": typed("integer", ""), "execution_ms": typed("integer", ""),
			"upload_ms": typed("integer", ""), "total_ms": typed("integer", ""),
		}),
		"Delivery": object("One webhook event's delivery.", obj{
			"id": typed("string", ""), "event": typed("string", ""), "url": typed("string", ""),
			"attempts": typed("integer", ""), "status_code": typed("integer", ""), "last_error": typed("string", ""),
			"delivered_at": dateTime, "created_at": dateTime,
		}, "id", "event", "url", "attempts", "created_at"),
		"WebhookSpec": object("A job's webhook: Standard Webhooks signed POSTs of its events.", obj{
			"url": obj{"type": "string", "format": "uri"},
			"events": arrayOf(obj{"type": "string", "enum": []string{"job.started", "job.progress", "job.succeeded", "job.failed", "job.canceled"}},
				"the events to send (default: all but job.progress)"),
		}, "url"),
		"ImageSource": template.ImageSourceSchema(),
		"JobSpec": object("A submission: exactly one of workflow or template.", obj{
			"workflow":        obj{"type": "object", "description": "an API-format workflow, or a UI-format one (converted with object_info)"},
			"template":        typed("string", "a registered template's name"),
			"params":          obj{"type": "object", "description": "the template's parameters", "additionalProperties": true},
			"set":             obj{"type": "object", "description": "input overrides by path (\"3.inputs.steps\": 30); the node may be an id, a title or a class", "additionalProperties": true},
			"images":          obj{"type": "object", "description": "files to upload to the node: by input path for a workflow, by image parameter for a template", "additionalProperties": ref("ImageSource")},
			"queue":           typed("string", "the queue (default \"default\")"),
			"timeout_s":       obj{"type": "integer", "minimum": 1, "maximum": 86400, "description": "execution timeout in seconds (default 600)"},
			"max_attempts":    obj{"type": "integer", "minimum": 1, "maximum": 25, "description": "default 4"},
			"webhook":         ref("WebhookSpec"),
			"metadata":        obj{"type": "object", "description": "stored with the job and returned as is (at most 16 KiB)", "additionalProperties": true},
			"idempotency_key": obj{"type": "string", "maxLength": 256},
			"randomize_seeds": typed("boolean", "give every constant seed a new random value"),
		}),
		"Accepted": object("A queued job and where to follow it.", obj{
			"id":         obj{"type": "string", "format": "uuid"},
			"status":     ref("JobStatus"),
			"queue":      typed("string", ""),
			"status_url": obj{"type": "string", "format": "uri"},
			"events_url": obj{"type": "string", "format": "uri"},
		}, "id", "status", "status_url", "events_url"),
		"JobList": object("A page of jobs, newest first.", obj{
			"jobs":        arrayOf(ref("Job"), ""),
			"next_cursor": typed("string", "the cursor of the next page; absent on the last page"),
		}, "jobs"),
		"Error": object("An error answer.", obj{
			"error": object("", obj{
				"code":    typed("string", "a stable code: invalid_request, invalid_workflow, invalid_params, unauthorized, forbidden, not_found, method_not_allowed, conflict, too_large, unsupported_media_type, unavailable, internal"),
				"message": typed("string", "for humans"),
				"field":   typed("string", "the offending field, when there is one"),
				"details": obj{"description": "structured details: for invalid_params, a list of {param, message}"},
			}, "code", "message"),
		}, "error"),
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
	}
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.templatesForDocs(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.openAPI(r, ts))
	return nil
}
