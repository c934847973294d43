package api

import "github.com/comfyq/comfyq/template"

func errorComponents() obj {
	resp := func(desc string) obj { return jsonResponse(desc, ref("Error")) }
	return obj{
		"BadRequest":           resp("invalid_request, invalid_workflow (details holds ComfyUI's {error, node_errors} when the node would refuse the prompt), invalid_params (details lists every violation) or another submission code"),
		"Unauthorized":         resp("unauthorized: no API key, or an unknown one"),
		"Forbidden":            resp("forbidden: the route needs an admin key"),
		"NotFound":             resp("not_found"),
		"Conflict":             resp("conflict: the job already ended, or the template exists"),
		"TooLarge":             resp("too_large: the body, an image, or the workflow (nodes, a string value, input files) is over its limit"),
		"IdempotencyKeyReuse":  resp("idempotency_key_reuse: the Idempotency-Key names a job submitted with another body"),
		"UnsupportedMediaType": resp("unsupported_media_type: the body must be application/json"),
		"Unavailable":          resp("unavailable: Redis, storage or object_info cannot be reached"),
		"Internal":             resp("internal: an unexpected error; the message carries a request id to find it in the server's log"),
	}
}

// componentSchemas are the fixed schemas, all generated from the Go types the API
// reads and writes (openapi_schemas.go) but ImageSource, whose "exactly one of url,
// base64, key" the template package spells.
func componentSchemas() obj {
	schemas := generatedSchemas()
	schemas["ImageSource"] = template.ImageSourceSchema()
	return schemas
}
