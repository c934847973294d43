package api

import (
	"encoding/json"
	"maps"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"
)

// v2SchemaRoots are the Go types of the Comfy API v2 bodies; their schemas are
// generated, as /v1's are (openapi_schemas.go).
var v2SchemaRoots = []any{
	&V2Job{}, &V2Asset{}, &V2StatusEvent{}, &V2LogEvent{}, &V2PreviewEvent{}, &V2JobWorkflow{}, &v2JobRequest{}, &fromHashRequest{},
}

var v2SchemaNames = map[reflect.Type]string{
	reflect.TypeFor[v2JobRequest]():    "V2JobRequest",
	reflect.TypeFor[fromHashRequest](): "V2FromHashRequest",
}

// v2Schemas generates the v2 component schemas. A pointer field is nullable (OpenAPI
// 3.1: its type also admits null), as the contract's nullable fields are.
func v2Schemas() obj {
	r := &jsonschema.Reflector{
		AllowAdditionalProperties: true,
		Namer: func(t reflect.Type) string {
			if n, ok := v2SchemaNames[t]; ok {
				return n
			}
			return t.Name()
		},
		Mapper: func(t reflect.Type) *jsonschema.Schema {
			if t == reflect.TypeFor[json.RawMessage]() {
				return &jsonschema.Schema{Type: "object"}
			}
			return nil
		},
	}
	all := jsonschema.Definitions{}
	types := map[string]reflect.Type{}
	for _, v := range v2SchemaRoots {
		maps.Copy(all, r.Reflect(v).Definitions)
	}
	for _, t := range []reflect.Type{reflect.TypeFor[V2Job](), reflect.TypeFor[V2Progress](), reflect.TypeFor[V2Output](),
		reflect.TypeFor[V2JobError](), reflect.TypeFor[V2Asset](), reflect.TypeFor[V2StatusEvent]()} {
		types[t.Name()] = t
	}
	data, err := json.Marshal(all)
	if err != nil {
		panic("api: v2 schemas: " + err.Error()) // fixed types
	}
	data = []byte(strings.ReplaceAll(string(data), `"#/$defs/`, `"#/components/schemas/`))
	var defs obj
	if err := json.Unmarshal(data, &defs); err != nil {
		panic("api: v2 schemas: " + err.Error())
	}
	for name, t := range types {
		sc, _ := defs[name].(obj)
		props, _ := sc["properties"].(obj)
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			p, _ := props[tag].(obj)
			if f.Type.Kind() != reflect.Pointer || p == nil {
				continue
			}
			switch {
			case p["$ref"] != nil:
				props[tag] = obj{"anyOf": []any{obj{"$ref": p["$ref"]}, obj{"type": "null"}}}
			case p["type"] != nil:
				p["type"] = []any{p["type"], "null"}
			}
		}
	}
	for _, sc := range defs {
		emptyForTrue(sc.(obj))
	}
	if sc, _ := defs["V2Job"].(obj); sc != nil {
		props := sc["properties"].(obj)
		props["status"] = obj{"type": "string", "enum": []string{"queued", "running", "succeeded", "canceling", "canceled", "failed", "expired"},
			"description": "the v2 lifecycle: comfyq's uploading shows as running; expired is never shown (an expired job is a 404)"}
	}
	defs["V2Error"] = obj{"type": "object", "required": []string{"error"}, "description": "The error envelope of /api/v2 (the same as /v1's).",
		"properties": obj{"error": obj{"type": "object", "required": []string{"code", "message"}, "properties": obj{
			"code":    obj{"type": "string", "enum": enumOf(v2Codes())},
			"message": obj{"type": "string"},
			"details": obj{"type": []any{"object", "null"}, "additionalProperties": true,
				"description": "invalid_workflow: {node_errors: {node id: [{field, reason, message, type, details, class_type}]}, comfyui: ComfyUI's own {error, node_errors} when the validator refused the graph}; missing_asset: {node_id, input, asset_id}"},
		}}}}
	return defs
}

func v2ErrorResponse(desc string) obj { return jsonResponse(desc, ref("V2Error")) }

func v2Errors(extra obj) obj {
	out := obj{
		"401": v2ErrorResponse("unauthorized"),
		"403": v2ErrorResponse("forbidden"),
		"500": v2ErrorResponse("internal"),
	}
	maps.Copy(out, extra)
	return out
}

// addComfyV2Operations documents the Comfy API v2 (comfyv2*.go) in the OpenAPI
// document, under the tag comfy-api-v2.
func addComfyV2Operations(paths, schemas obj, security []any) {
	maps.Copy(schemas, v2Schemas())
	tags := []string{"comfy-api-v2"}
	jobID := obj{"name": "id", "in": "path", "required": true, "schema": obj{"type": "string", "format": "uuid"},
		"description": "the job id: the same as on /v1"}
	assetID := obj{"name": "id", "in": "path", "required": true, "schema": obj{"type": "string", "format": "uuid"}}
	idem := obj{"name": "Idempotency-Key", "in": "header", "required": false, "schema": obj{"type": "string", "maxLength": maxIdempotencyKey},
		"description": "Stripe semantics: same key and body replays (Idempotency-Replayed: true); another body is 422 idempotency_key_reuse; " +
			"while the first is in flight 409 idempotency_conflict with Retry-After; keys expire after 24 h"}
	notFound := obj{"404": v2ErrorResponse("not_found")}
	paths[v2Prefix+"/jobs"] = obj{"post": obj{
		"operationId": "v2PostJobs", "tags": tags, "summary": "Submit an API-format workflow (Comfy API v2)",
		"description": "Validated synchronously: structure, node classes and required inputs (object_info), core/ASSET references. " +
			"extra_data.api_key_comfy_org is forwarded to the node's extra_data, sealed in the queue (never stored readable, logged or returned).",
		"security": security, "parameters": []any{idem},
		"requestBody": jsonBody(ref("V2JobRequest"), ""),
		"responses": v2Errors(obj{
			"201": jsonResponse("the job, queued (or replayed: Idempotency-Replayed: true)", ref("V2Job")),
			"400": v2ErrorResponse("invalid_request"),
			"409": v2ErrorResponse("idempotency_conflict (Retry-After)"),
			"413": v2ErrorResponse("too_large"),
			"415": v2ErrorResponse("unsupported_media_type"),
			"422": v2ErrorResponse("invalid_workflow (details.node_errors), workflow_format_ui, missing_asset, idempotency_key_reuse"),
			"429": v2ErrorResponse("queue_full (Retry-After)"),
		}),
	}}
	paths[v2Prefix+"/jobs/{id}"] = obj{"get": obj{
		"operationId": "v2GetJob", "tags": tags, "summary": "A job (Comfy API v2)",
		"description": "outputs fill as each output is committed to storage; every file output is an asset.",
		"security":    security, "parameters": []any{jobID},
		"responses": v2Errors(merge(obj{"200": jsonResponse("the job", ref("V2Job"))}, notFound)),
	}}
	paths[v2Prefix+"/jobs/{id}/workflow"] = obj{"get": obj{
		"operationId": "v2GetJobWorkflow", "tags": tags, "summary": "The workflow of a v2 job, as submitted",
		"security": security, "parameters": []any{jobID},
		"responses": v2Errors(merge(obj{"200": jsonResponse("the workflow", ref("V2JobWorkflow"))}, notFound)),
	}}
	paths[v2Prefix+"/jobs/{id}/cancel"] = obj{"post": obj{
		"operationId": "v2CancelJob", "tags": tags, "summary": "Cancel a job (idempotent)",
		"description": "Answers the job: canceling until the node confirms, canceled, or the terminal state it already had.",
		"security":    security, "parameters": []any{jobID},
		"responses": v2Errors(merge(obj{"200": jsonResponse("the job", ref("V2Job"))}, notFound)),
	}}
	paths[v2Prefix+"/jobs/{id}/events"] = obj{"get": obj{
		"operationId": "v2GetJobEvents", "tags": tags, "summary": "Live events (SSE)",
		"description": "On connect: the latest preview, progress and the status. Then status on each transition (and queue_position change), " +
			"progress about twice a second, the latest preview (base64, about one a second while running), output as each output is committed, log lines; the stream ends after the terminal status. " +
			"Events carry no id (no replay). Any API replica serves any job.",
		"security": security, "parameters": []any{jobID},
		"x-sse-events": obj{
			v2EventStatus: ref("V2StatusEvent"), v2EventProgress: ref("V2Progress"), v2EventOutput: ref("V2Output"),
			v2EventLog: ref("V2LogEvent"), v2EventPreview: ref("V2PreviewEvent"),
		},
		"responses": v2Errors(merge(obj{"200": obj{"description": "the event stream",
			"content": obj{"text/event-stream": obj{"schema": obj{"type": "string"}}}}}, notFound)),
	}}
	paths[v2Prefix+"/assets"] = obj{"post": obj{
		"operationId": "v2PostAssets", "tags": tags, "summary": "Upload an asset (multipart)",
		"description": "Fields content_type, file_path, optional expected_hash and tags, then file (last). The file is streamed into " +
			"storage and hashed (blake3) on the way; bytes already stored are kept once.",
		"security": security, "parameters": []any{idem},
		"requestBody": obj{"required": true, "content": obj{"multipart/form-data": obj{"schema": obj{"type": "object",
			"required": []string{"file", "content_type", "file_path"},
			"properties": obj{"file": obj{"type": "string", "format": "binary"}, "content_type": obj{"type": "string"},
				"file_path": obj{"type": "string"}, "expected_hash": obj{"type": "string", "pattern": blakeHash.String()},
				"tags": obj{"type": "array", "items": obj{"type": "string"}}}}}}},
		"responses": v2Errors(obj{
			"201": jsonResponse("a new blob, a new asset", ref("V2Asset")),
			"200": jsonResponse("bytes already stored: a new asset over the existing blob", ref("V2Asset")),
			"400": v2ErrorResponse("invalid_request"),
			"409": v2ErrorResponse("hash_mismatch: nothing is stored"),
			"422": v2ErrorResponse("idempotency_key_reuse"),
			"413": v2ErrorResponse("too_large"),
			"415": v2ErrorResponse("unsupported_media_type"),
		}),
	}}
	paths[v2Prefix+"/assets/from-hash"] = obj{"post": obj{
		"operationId": "v2AssetFromHash", "tags": tags, "summary": "Mint an asset over bytes you uploaded before",
		"security": security, "requestBody": jsonBody(ref("V2FromHashRequest"), ""),
		"responses": v2Errors(obj{
			"201": jsonResponse("the new asset", ref("V2Asset")),
			"400": v2ErrorResponse("invalid_request"),
			"404": v2ErrorResponse("blob_not_found: no such blob, or not one of yours (the same answer)"),
		}),
	}}
	paths[v2Prefix+"/assets/by-hash/{hash}"] = obj{"head": obj{
		"operationId": "v2HeadAssetByHash", "tags": tags, "summary": "Whether you may mint from a blob",
		"security": security, "parameters": []any{obj{"name": "hash", "in": "path", "required": true,
			"schema": obj{"type": "string", "pattern": blakeHash.String()}}},
		"responses": obj{"200": obj{"description": "yes"}, "404": obj{"description": "no such blob, or not yours"},
			"400": obj{"description": "not a blake3:<hex> hash"}, "401": obj{"description": "unauthorized"}},
	}}
	paths[v2Prefix+"/assets/{id}"] = obj{
		"get": obj{
			"operationId": "v2GetAsset", "tags": tags, "summary": "An asset, with a fresh short-lived url",
			"security": security, "parameters": []any{assetID},
			"responses": v2Errors(merge(obj{"200": jsonResponse("the asset", ref("V2Asset"))}, notFound)),
		},
		"delete": obj{
			"operationId": "v2DeleteAsset", "tags": tags, "summary": "Delete an asset",
			"description": "The blob goes with its last asset. An output's asset is only hidden: the file stays the job's output on /v1.",
			"security":    security, "parameters": []any{assetID},
			"responses": v2Errors(merge(obj{"204": obj{"description": "deleted"}}, notFound)),
		},
	}
	paths[v2Prefix+"/assets/{id}/content"] = obj{"get": obj{
		"operationId": "v2GetAssetContent", "tags": tags, "summary": "An asset's bytes",
		"description": "302 to a presigned URL where the store has them (S3); else the bytes, with one Range (206, or 416).",
		"security":    security, "parameters": []any{assetID, obj{"name": "Range", "in": "header", "schema": obj{"type": "string"}}},
		"responses": v2Errors(merge(obj{
			"200": obj{"description": "the content", "content": obj{"application/octet-stream": obj{"schema": obj{"type": "string", "format": "binary"}}}},
			"206": obj{"description": "the range asked for"},
			"302": obj{"description": "to a fresh presigned URL"},
			"416": v2ErrorResponse("range_not_satisfiable"),
		}, notFound)),
	}}
}
