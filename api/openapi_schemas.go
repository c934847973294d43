package api

import (
	"encoding/json"
	"maps"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/comfyq/comfyq/api/apiclient"
	"github.com/comfyq/comfyq/job"
)

// jobSchemaNames are the component names of the job package's types where they
// differ from the Go names.
var jobSchemaNames = map[reflect.Type]string{
	reflect.TypeFor[job.Error]():  "JobError",
	reflect.TypeFor[job.Status](): "JobStatus",
	reflect.TypeFor[job.Spec]():   "JobSpec",
	reflect.TypeFor[ErrorBody]():  "Error",
}

// jobSchemaDocs adds to the generated schemas what Go types cannot say:
// descriptions, formats, enums and bounds. Keys are "Schema" for the schema
// itself and "Schema.property" for a property; every key must name a schema or
// property the types produce (TestJobSchemaDocsNameRealFields).
var jobSchemaDocs = map[string]obj{
	"Job":                     {"description": "A job's status record (the Job JSON). Absent fields are omitted, never null."},
	"Job.id":                  {"format": "uuid", "description": "the job id, a UUIDv7; also the ComfyUI prompt_id"},
	"Job.template":            {"description": "the template the job came from"},
	"Job.template_version":    {"description": "the template's version when the job was submitted"},
	"Job.attempt":             {"description": "the current attempt, from 1"},
	"Job.node":                {"description": "the ComfyUI node's URL"},
	"Job.node_name":           {"description": "the ComfyUI node's name"},
	"Job.metadata":            {"additionalProperties": true, "description": "the submission's metadata, returned as is"},
	"Job.webhooks":            {"description": "the delivery log of the job's webhook events"},
	"Job.cancel_requested":    {"description": "a cancel was asked while the job ran; it moves to canceled"},
	"Progress":                {"description": "How far a running job is."},
	"Progress.fraction":       {"minimum": 0, "maximum": 1},
	"Progress.node":           {"description": "the executing node's id"},
	"Progress.step":           {"description": "the sampler step"},
	"Output":                  {"description": "One output: a file copied to storage, or a text."},
	"Output.kind":             {"enum": []string{job.KindImage, job.KindVideo, job.KindAudio, job.KindText, job.KindFile}},
	"Output.bucket":           {"description": "the S3 bucket holding the object; absent for the file store"},
	"Output.key":              {"description": "the object's key in the bucket, the storage URL's prefix included (any S3 client opens it), or its path under the file store's root"},
	"Output.url":              {"format": "uri", "description": "a presigned or served URL, fresh on every response"},
	"Output.type":             {"enum": []string{"output", "temp"}, "description": "a saved output, or a temp preview (PreviewImage)"},
	"Output.animated":         {"description": "the node marked the image animated"},
	"Output.format":           {"description": "the format a custom node declared, e.g. video/h264-mp4"},
	"JobError":                {"description": "Why a job failed."},
	"JobError.code":           {"enum": job.Codes(), "description": "a stable code; see docs/contracts.md"},
	"JobError.node_errors":    {"description": "ComfyUI's node_errors, as it sent them"},
	"Timings":                 {"description": "Durations of the job's phases in milliseconds."},
	"Delivery":                {"description": "One webhook event's delivery."},
	"WebhookSpec":             {"description": "A job's webhook: Standard Webhooks signed POSTs of its events."},
	"JobSpec":                 {"description": "A submission: exactly one of workflow or template."},
	"Accepted":                {"description": "A queued job and where to follow it."},
	"Accepted.id":             {"format": "uuid"},
	"Accepted.status_url":     {"format": "uri", "description": "GET /v1/jobs/{id}"},
	"Accepted.events_url":     {"format": "uri", "description": "its Server-Sent Events stream"},
	"JobList":                 {"description": "A page of jobs, newest first."},
	"JobList.next_cursor":     {"description": "the cursor of the next page; absent on the last page"},
	"Error":                   {"description": "An error answer."},
	"ErrorInfo":               {"description": "A stable code, a message for humans, the offending field and structured details."},
	"ErrorInfo.code":          {"description": "a stable code: invalid_request, invalid_workflow, invalid_params, unauthorized, forbidden, not_found, method_not_allowed, conflict, too_large, unsupported_media_type, unavailable, internal"},
	"ErrorInfo.field":         {"description": "the offending field, when there is one"},
	"ErrorInfo.details":       {"description": "structured details: for invalid_params, a list of {param, message}"},
	"JobSpec.workflow":        {"type": "object", "description": "an API-format workflow, or a UI-format one (converted with object_info)"},
	"JobSpec.template":        {"description": "a registered template's name"},
	"JobSpec.params":          {"additionalProperties": true, "description": "the template's parameters"},
	"JobSpec.set":             {"additionalProperties": true, "description": "input overrides by path (\"3.inputs.steps\": 30); the node may be an id, a title or a class"},
	"JobSpec.images":          {"description": "files to upload to the node: by input path for a workflow, by image parameter for a template"},
	"JobSpec.queue":           {"description": "the queue (default \"default\")"},
	"JobSpec.timeout_s":       {"minimum": 1, "maximum": 86400, "description": "execution timeout in seconds (default 600)"},
	"JobSpec.max_attempts":    {"minimum": 1, "maximum": 25, "description": "default 4"},
	"JobSpec.metadata":        {"additionalProperties": true, "description": "stored with the job and returned as is (at most 16 KiB)"},
	"JobSpec.idempotency_key": {"maxLength": 256},
	"JobSpec.randomize_seeds": {"description": "give every constant seed a new random value"},
	"WebhookSpec.url":         {"format": "uri"},
	"WebhookSpec.events": {"description": "the events to send (default: all but job.progress)",
		"items": obj{"type": "string", "enum": []string{"job.started", "job.progress", "job.succeeded", "job.failed", "job.canceled"}}},
}

// jobSchemas generates the component schemas of the Job JSON, the submission, the
// submit answer, the job list and the error envelope from job.Job, job.Spec,
// apiclient.Accepted, apiclient.JobList and ErrorBody (and the types they hold), with
// invopop/jsonschema: properties from the json tags,
// required from the fields without omitempty. A field added to job.Job is in
// /openapi.json without anyone remembering to write it there.
func jobSchemas() obj {
	r := &jsonschema.Reflector{
		AllowAdditionalProperties: true,
		Namer: func(t reflect.Type) string {
			if n, ok := jobSchemaNames[t]; ok {
				return n
			}
			return t.Name()
		},
		Mapper: func(t reflect.Type) *jsonschema.Schema {
			if t == reflect.TypeFor[job.Status]() {
				return &jsonschema.Schema{Ref: "#/$defs/JobStatus"}
			}
			return nil
		},
	}
	all := jsonschema.Definitions{}
	for _, v := range []any{&job.Job{}, &job.Spec{}, &apiclient.Accepted{}, &apiclient.JobList{}, &ErrorBody{}} {
		maps.Copy(all, r.Reflect(v).Definitions)
	}
	data, err := json.Marshal(all)
	if err != nil {
		panic("api: job schemas: " + err.Error()) // fixed types: cannot happen at run time
	}
	// The generator refers to its own $defs; the document keeps them as components.
	data = []byte(strings.ReplaceAll(string(data), `"#/$defs/`, `"#/components/schemas/`))
	var defs obj
	if err := json.Unmarshal(data, &defs); err != nil {
		panic("api: job schemas: " + err.Error())
	}
	defs["JobStatus"] = obj{"type": "string", "enum": job.Statuses(), "description": "queued → running → uploading → succeeded | failed | canceled; canceling while a cancel waits for the node"}
	for _, sc := range defs {
		props, _ := sc.(obj)["properties"].(obj)
		for pname, p := range props {
			if p == true { // any JSON value; spelled as an empty schema for OpenAPI tools
				props[pname] = obj{}
			}
		}
	}
	for key, extra := range jobSchemaDocs {
		if target := schemaAt(defs, key); target != nil {
			for k, v := range extra {
				target[k] = v
			}
		}
	}
	return defs
}

// schemaAt returns the schema "Name" or the property "Name.prop" of defs, or nil.
func schemaAt(defs obj, key string) obj {
	name, prop, isProp := strings.Cut(key, ".")
	sc, _ := defs[name].(obj)
	if !isProp || sc == nil {
		return sc
	}
	props, _ := sc["properties"].(obj)
	p, _ := props[prop].(obj)
	return p
}
