package api

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/comfyq/comfyq/api/apiclient"
	"github.com/comfyq/comfyq/apikey"
	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/template"
)

// schemaRoots are the Go values the API reads and writes; their types, and the types
// they hold, are the document's component schemas.
var schemaRoots = []any{
	&job.Job{}, &job.Spec{},
	&apiclient.Accepted{}, &apiclient.JobList{},
	&apiclient.TemplateInfo{}, &apiclient.TemplateList{}, &apiclient.TemplateJobRequest{},
	&template.Definition{},
	&ErrorBody{}, &Health{},
	&apiclient.KeyRequest{}, &apiclient.NewKey{}, &apiclient.KeyList{},
}

// schemaNames are the component names of the types whose Go names would be ambiguous
// or read badly in the document.
var schemaNames = map[reflect.Type]string{
	reflect.TypeFor[job.Error]():           "JobError",
	reflect.TypeFor[job.Status]():          "JobStatus",
	reflect.TypeFor[job.Spec]():            "JobSpec",
	reflect.TypeFor[template.Definition](): "TemplateDefinition",
	reflect.TypeFor[ErrorBody]():           "Error",
	reflect.TypeFor[apikey.Key]():          "APIKey",
	reflect.TypeFor[apikey.Quota]():        "KeyQuota",
}

// schemaOptional are the properties a type's custom MarshalJSON leaves out, although
// their json tags have no omitempty, or that a request may leave out: they are not
// required. Keys name schemas as in schemaDocs.
var schemaOptional = map[string][]string{
	// MarshalJSON leaves the workflow out of lists, and jobs_url out when it is empty.
	"TemplateInfo": {"workflow", "jobs_url"},
	// PUT /v1/templates/{name} takes the name from the path.
	"TemplateDefinition": {"name"},
}

func enumOf[S ~string](values []S) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

// submissionOptionDocs describe the options job.Spec and apiclient.TemplateJobRequest
// share; they apply to both schemas.
var submissionOptionDocs = map[string]obj{
	"set":             {"additionalProperties": true, "description": "input overrides by path (\"3.inputs.steps\": 30), applied after a template's parameters; the node may be an id, a title or a class"},
	"queue":           {"description": "the queue (default \"default\")"},
	"timeout_s":       {"minimum": 1, "maximum": 86400, "description": "execution timeout on the node in seconds (default 600)"},
	"max_attempts":    {"minimum": 1, "maximum": 25, "description": "attempts before the job fails (default 4)"},
	"metadata":        {"additionalProperties": true, "description": "stored with the job and returned as is (at most 16 KiB)"},
	"idempotency_key": {"maxLength": 256},
	"randomize_seeds": {"description": "give every constant seed a new random value"},
}

// schemaDocs adds to the generated schemas what Go types cannot say: descriptions,
// formats, enums and bounds. Keys are "Schema" for the schema itself and
// "Schema.property" for a property; every key must name a schema or property the
// types produce (TestSchemaDocsNameRealFields). Enums come from the lists next to
// the constants (job.Statuses, job.Codes, errorCodes, …), never written here.
var schemaDocs = map[string]obj{
	"Job":                    {"description": "A job's status record (the Job JSON). Absent fields are omitted, never null."},
	"Job.id":                 {"format": "uuid", "description": "the job id, a UUIDv7; also the ComfyUI prompt_id"},
	"Job.template":           {"description": "the template the job came from"},
	"Job.template_version":   {"description": "the template's version when the job was submitted"},
	"Job.attempt":            {"description": "the current attempt, from 1"},
	"Job.node":               {"description": "the ComfyUI node's URL"},
	"Job.node_name":          {"description": "the ComfyUI node's name"},
	"Job.metadata":           {"additionalProperties": true, "description": "the submission's metadata, returned as is"},
	"Job.webhooks":           {"description": "the delivery log of the job's webhook events"},
	"Job.cancel_requested":   {"description": "a cancel was asked while the job ran; it moves to canceled"},
	"Job.tenant":             {"description": "the tenant of the key that submitted the job: only its keys (and admin keys) see the job"},
	"APIKey":                 {"description": "An API key's record; never its secret."},
	"APIKey.role":            {"enum": []string{"user", "admin"}},
	"APIKey.hint":            {"description": "the start of the secret, to tell keys apart"},
	"APIKey.static":          {"description": "a key given by flag or environment: not stored, not revocable here"},
	"KeyQuota":               {"description": "What one key may submit; absent or 0 is no limit."},
	"KeyQuota.max_in_flight": {"minimum": 0, "description": "jobs of the key that have not ended (queued or running); more answer 429 too_many_jobs"},
	"KeyQuota.rate":          {"minimum": 0, "description": "submissions per second, sustained (a token bucket); more answer 429 rate_limited with Retry-After"},
	"KeyQuota.burst":         {"minimum": 0, "description": "submissions at once (the bucket's size; default: rate rounded up)"},
	"KeyRequest":             {"description": "A new managed API key."},
	"KeyRequest.role":        {"enum": []string{"user", "admin"}, "description": "user (default) or admin"},
	"KeyRequest.queues":      {"description": "the queues the key may submit to; absent: any (never the internal comfyq_* queues)"},
	"NewKey":                 {"description": "A new key and its secret, shown this once."},
	"NewKey.secret":          {"description": "the secret to send as \"Authorization: Bearer SECRET\"; the server keeps only its SHA-256"},
	"KeyList":                {"description": "The API keys: managed first, then static."},
	"Progress":               {"description": "How far a running job is."},
	"Progress.fraction":      {"minimum": 0, "maximum": 1},
	"Progress.node":          {"description": "the executing node's id"},
	"Progress.step":          {"description": "the sampler step"},
	"Output":                 {"description": "One output: a file copied to storage, or a text."},
	"Output.kind":            {"enum": job.Kinds()},
	"Output.bucket":          {"description": "the S3 bucket holding the object; absent for the file store"},
	"Output.key":             {"description": "the object's key in the bucket, the storage URL's prefix included (any S3 client opens it), or its path under the file store's root"},
	"Output.url":             {"format": "uri", "description": "a presigned or served URL, fresh on every response"},
	"JobError":               {"description": "Why a job failed."},
	"JobError.code":          {"enum": enumOf(job.Codes()), "description": "a stable code; codes are added, never renamed"},
	"JobError.node_errors":   {"description": "ComfyUI's node_errors, as it sent them"},
	"Timings":                {"description": "Durations of the job's phases in milliseconds."},
	"Delivery":               {"description": "One webhook event's delivery."},
	"WebhookSpec":            {"description": "A job's webhook: Standard Webhooks signed POSTs of its events."},
	"WebhookSpec.url":        {"format": "uri"},
	"WebhookSpec.events": {"description": "the events to send (default: all but job.progress)",
		"items": obj{"type": "string", "enum": job.WebhookEvents()}},
	"JobSpec":          {"description": "A submission: exactly one of workflow or template."},
	"JobSpec.workflow": {"type": "object", "description": "an API-format workflow, or a UI-format one (converted with object_info)"},
	"JobSpec.template": {"description": "a registered template's name"},
	"JobSpec.params":   {"additionalProperties": true, "description": "the template's parameters"},
	"JobSpec.images":   {"description": "files to upload to the node: by input path for a workflow, by image parameter for a template"},

	"Accepted":            {"description": "A queued job and where to follow it."},
	"Accepted.id":         {"format": "uuid"},
	"Accepted.status_url": {"format": "uri", "description": "GET /v1/jobs/{id}"},
	"Accepted.events_url": {"format": "uri", "description": "its Server-Sent Events stream"},
	"JobList":             {"description": "A page of jobs, newest first."},
	"JobList.next_cursor": {"description": "the cursor of the next page; absent on the last page"},

	"Error":             {"description": "An error answer."},
	"ErrorInfo":         {"description": "What went wrong."},
	"ErrorInfo.code":    {"enum": enumOf(errorCodes()), "description": "a stable code; codes are added, never renamed"},
	"ErrorInfo.message": {"description": "for humans"},
	"ErrorInfo.field":   {"description": "the offending field, when there is one"},
	"ErrorInfo.details": {"description": "structured details: for invalid_params, a list of {param, message}"},
	"Health":            {"description": "The body of /healthz and /readyz."},
	"Health.status":     {"enum": []string{"ok", "unavailable"}},

	"Param":                           {"description": "A template parameter."},
	"Param.targets":                   {"description": "input paths, node.inputs.name"},
	"Param.type":                      {"enum": template.Types()},
	"Param.default":                   {"description": "the value used when the parameter is not given"},
	"Param.enum":                      {"description": "the allowed values"},
	"ParamSpec":                       {"description": "A parameter declared explicitly; only name and targets are required."},
	"ParamSpec.targets":               {"description": "input paths; the node may be an id, a unique title or a unique class"},
	"ParamSpec.type":                  {"enum": template.Types()},
	"ParamSpec.required":              {"description": "overrides \"required when there is no default\""},
	"MadeName":                        {"description": "A discovered parameter whose name no node title gives by itself: the title's inputs were suffixed, or two nodes wanted the name."},
	"MadeName.param":                  {"description": "the parameter's name, to submit"},
	"MadeName.node":                   {"description": "the node id of the (first) input it sets"},
	"MadeName.input":                  {"description": "the input's name"},
	"MadeName.title":                  {"description": "the node's title"},
	"TemplateDefinition":              {"description": "A template to register."},
	"TemplateDefinition.name":         {"pattern": "^[a-z0-9][a-z0-9_-]{0,63}$", "description": "required for POST; taken from the path for PUT"},
	"TemplateDefinition.workflow":     {"type": "object", "description": "an API-format or UI-format workflow"},
	"TemplateDefinition.params":       {"description": "explicit parameters; when absent they are found by convention"},
	"TemplateDefinition.title_prefix": {"description": "the title prefix of input nodes (default \"Input: \")"},
	"TemplateInfo":                    {"description": "A registered template."},
	"TemplateInfo.version":            {"description": "grows by one with every change"},
	"TemplateInfo.workflow":           {"description": "the API-format workflow (absent in lists)"},
	"TemplateInfo.params_made":        {"description": "the discovered parameters whose names were made up (absent when every title named its parameter)"},
	"TemplateInfo.params_schema":      {"description": "the JSON Schema of the params object"},
	"TemplateInfo.images_schema":      {"description": "the JSON Schema of the images object"},
	"TemplateInfo.jobs_url":           {"format": "uri", "description": "POST here to submit a job"},
	"TemplateList":                    {"description": "The registered templates, without their workflows."},
	"TemplateJobRequest":              {"description": "A submission of a template: its parameters and images, and the options of any job."},
	"TemplateJobRequest.params":       {"additionalProperties": true, "description": "the template's parameters"},
	"TemplateJobRequest.images":       {"description": "files for the template's image parameters"},
}

// allSchemaDocs are schemaDocs with the shared submission options of JobSpec and
// TemplateJobRequest.
func allSchemaDocs() map[string]obj {
	out := maps.Clone(schemaDocs)
	for prop, doc := range submissionOptionDocs {
		out["JobSpec."+prop] = doc
		out["TemplateJobRequest."+prop] = doc
	}
	return out
}

// generatedSchemas generates the component schemas from schemaRoots with
// invopop/jsonschema: properties from the json tags, required from the fields without
// omitempty. A field added to job.Job or template.Template is in /openapi.json without
// anyone remembering to write it there.
func generatedSchemas() obj {
	named := map[string]reflect.Type{}
	r := &jsonschema.Reflector{
		AllowAdditionalProperties: true,
		Namer: func(t reflect.Type) string {
			n, ok := schemaNames[t]
			if !ok {
				n = t.Name()
			}
			if prev, seen := named[n]; n != "" && seen && prev != t {
				panic("api: schemas: " + prev.String() + " and " + t.String() + " are both " + n) // fixed types: a test finds it
			}
			named[n] = t
			return n
		},
		Mapper: func(t reflect.Type) *jsonschema.Schema {
			switch t {
			case reflect.TypeFor[job.Status]():
				return &jsonschema.Schema{Ref: "#/$defs/JobStatus"}
			case reflect.TypeFor[comfy.Workflow]():
				// An API-format workflow: node id → node; the node's fields are ComfyUI's.
				return &jsonschema.Schema{Type: "object"}
			}
			return nil
		},
	}
	all := jsonschema.Definitions{}
	for _, v := range schemaRoots {
		maps.Copy(all, r.Reflect(v).Definitions)
	}
	data, err := json.Marshal(all)
	if err != nil {
		panic("api: schemas: " + err.Error()) // fixed types: cannot happen at run time
	}
	// The generator refers to its own $defs; the document keeps them as components.
	data = []byte(strings.ReplaceAll(string(data), `"#/$defs/`, `"#/components/schemas/`))
	var defs obj
	if err := json.Unmarshal(data, &defs); err != nil {
		panic("api: schemas: " + err.Error())
	}
	var terminal []string
	for _, s := range job.Statuses() {
		if s.Terminal() {
			terminal = append(terminal, string(s))
		}
	}
	defs["JobStatus"] = obj{"type": "string", "enum": enumOf(job.Statuses()),
		"description": "a job's state, in lifecycle order; terminal: " + strings.Join(terminal, ", ")}
	for _, sc := range defs {
		emptyForTrue(sc.(obj))
	}
	for name, props := range schemaOptional {
		if sc, _ := defs[name].(obj); sc != nil {
			req, _ := sc["required"].([]any)
			req = slices.DeleteFunc(req, func(p any) bool { return slices.Contains(props, p.(string)) })
			sc["required"] = req
			if len(req) == 0 {
				delete(sc, "required")
			}
		}
	}
	for key, extra := range allSchemaDocs() {
		if target := schemaAt(defs, key); target != nil {
			maps.Copy(target, extra)
		}
	}
	return defs
}

// emptyForTrue spells the schema true (any JSON value) as an empty schema where a
// property or an array's items take it: OpenAPI tools want schema objects there.
func emptyForTrue(sc obj) {
	if sc["items"] == true {
		sc["items"] = obj{}
	} else if items, ok := sc["items"].(obj); ok {
		emptyForTrue(items)
	}
	props, _ := sc["properties"].(obj)
	for name, p := range props {
		if p == true {
			props[name] = obj{}
		} else if po, ok := p.(obj); ok {
			emptyForTrue(po)
		}
	}
	if ap, ok := sc["additionalProperties"].(obj); ok {
		emptyForTrue(ap)
	}
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
