package api

import (
	"cmp"
	"net/http"

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
		"409": "Conflict", "413": "TooLarge", "415": "UnsupportedMediaType", "422": "IdempotencyKeyReuse", "503": "Unavailable",
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

// openAPI builds the OpenAPI 3.1 document: every route (here), the components
// (openapi_components.go, the Job JSON generated in openapi_schemas.go), and one
// operation per template with its parameter schema (openapi_templates.go).
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
					"headers":     obj{"Location": obj{"description": "the status URL (relative to the API's root unless the server has a public URL)", "schema": obj{"type": "string"}}},
					"content":     obj{"application/json": obj{"schema": ref("Accepted")}},
				}}, errorResponses("400", "401", "413", "415", "422")),
			},
			"get": obj{
				"operationId": "listJobs", "tags": []string{"jobs"}, "summary": "List jobs",
				"description": "Jobs newest first, filtered by any combination of status, queue and template (each combination has an index of its own: a page costs the same whatever the number of jobs), in pages: pass next_cursor as cursor for the next page.",
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
			"responses":   merge(obj{"202": jsonResponse("accepted", ref("Accepted"))}, errorResponses("400", "401", "404", "413", "415", "422")),
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
		obj{"name": "keys", "description": "API keys of tenants, their queues and quotas (admin)."},
	)
	tags = append(tags, templateOperations(templates, schemas, paths, security)...)
	tags = append(tags, obj{"name": "operations", "description": "Health, metrics, documentation and the dashboard."})
	addConsoleOperations(paths, schemas, security)
	addComfyV2Operations(paths, schemas, security)
	tags = append(tags, obj{"name": "comfy-api-v2", "description": "The Comfy API v2 (Comfy Cloud's contract) for the official SDKs; the same jobs as /v1."})

	components := obj{
		"schemas":   schemas,
		"responses": errorComponents(),
		"securitySchemes": obj{
			"bearerAuth": obj{"type": "http", "scheme": "bearer", "description": "an API key: managed (comfyq keys create), or given by COMFYQ_API_KEYS / COMFYQ_ADMIN_KEYS"},
			"basicAuth":  obj{"type": "http", "scheme": "basic", "description": "for the dashboard in a browser: any user name, an admin key as the password"},
		},
	}
	addTenantOperations(paths, components, admin)

	doc := obj{
		"openapi": "3.1.0",
		"info": obj{
			"title":   "comfyq",
			"version": s.cfg.Version,
			"description": "comfyq turns ComfyUI workflows into a durable job-queue API: submit a workflow or a " +
				"registered template, follow the job by polling or Server-Sent Events, and find the outputs in storage.\n\n" +
				"Authentication: \"Authorization: Bearer KEY\". Template management and the dashboard need an admin key. " +
				"A key belongs to a tenant: a user key sees, cancels and downloads only its tenant's jobs (another tenant's " +
				"job answers 404, as a missing one), an admin key everyone's. " +
				"Errors are {\"error\": {\"code\", \"message\", \"field\", \"details\"}} with a 4xx or 5xx status.",
		},
		"servers":    []any{obj{"url": cmp.Or(s.baseURL(r), "/")}},
		"tags":       tags,
		"security":   security,
		"paths":      paths,
		"components": components,
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

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.templatesForDocs(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.openAPI(r, ts))
	return nil
}
