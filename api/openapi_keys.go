package api

// addTenantOperations documents the key routes (keys.go), the tenant filter of
// GET /v1/jobs and the quota refusals of the submissions in the OpenAPI document.
func addTenantOperations(paths, components obj, admin []any) {
	keyID := obj{"name": "id", "in": "path", "required": true, "description": "the key's id (key_…)",
		"schema": obj{"type": "string"}}
	paths["/v1/keys"] = obj{
		"get": obj{
			"operationId": "listKeys", "x-comfyq-role": "admin", "tags": []string{"keys"}, "summary": "List API keys (admin)",
			"description": "The managed keys, oldest first, then the keys given by flag or environment (static: true). " +
				"No secret is ever listed: a key's hint is the start of its secret.",
			"security":  admin,
			"responses": merge(obj{"200": jsonResponse("the keys", ref("KeyList"))}, errorResponses("401", "403")),
		},
		"post": obj{
			"operationId": "createKey", "x-comfyq-role": "admin", "tags": []string{"keys"}, "summary": "Create an API key (admin)",
			"description": "A new key of a tenant, with its role, allowed queues and quotas. The answer holds the secret, " +
				"shown this once: the server keeps only its SHA-256.",
			"security":    admin,
			"requestBody": jsonBody(ref("KeyRequest"), ""),
			"responses": merge(obj{"201": jsonResponse("the key and its secret", ref("NewKey"))},
				errorResponses("400", "401", "403", "415")),
		},
	}
	paths["/v1/keys/{id}"] = obj{
		"get": obj{
			"operationId": "getKey", "x-comfyq-role": "admin", "tags": []string{"keys"}, "summary": "Get a managed API key (admin)",
			"security": admin, "parameters": []any{keyID},
			"responses": merge(obj{"200": jsonResponse("the key", ref("APIKey"))}, errorResponses("401", "403", "404")),
		},
		"delete": obj{
			"operationId": "revokeKey", "x-comfyq-role": "admin", "tags": []string{"keys"}, "summary": "Revoke a managed API key (admin)",
			"description": "The key stops working at once. Keys given by flag or environment are removed from the configuration instead.",
			"security":    admin, "parameters": []any{keyID},
			"responses": merge(obj{"200": jsonResponse("the revoked key", ref("APIKey"))}, errorResponses("401", "403", "404")),
		},
	}
	if list := dig(paths, "/v1/jobs", "get"); list != nil {
		params, _ := list["parameters"].([]any)
		list["parameters"] = append(params, obj{"name": "tenant", "in": "query", "schema": obj{"type": "string"},
			"description": "only this tenant's jobs (admin keys; a user key lists its own tenant's jobs only, and any other tenant here answers 403)"})
	}
	for _, op := range []obj{dig(paths, "/v1/jobs", "post"), dig(paths, "/v1/templates/{name}/jobs", "post")} {
		if op == nil {
			continue
		}
		if resp, ok := op["responses"].(obj); ok {
			resp["403"] = respRef("QueueForbidden")
			resp["429"] = respRef("TooManyRequests")
		}
	}
	if responses, ok := components["responses"].(obj); ok {
		responses["QueueForbidden"] = jsonResponse("queue_forbidden: the key may not submit to this queue", ref("Error"))
		responses["TooManyRequests"] = obj{
			"description": "rate_limited (the key's submissions per second; Retry-After says when to try again) or " +
				"too_many_jobs (the key's jobs that have not ended)",
			"headers": obj{"Retry-After": obj{"description": "seconds until the key may submit again (rate_limited)",
				"schema": obj{"type": "integer"}}},
			"content": obj{"application/json": obj{"schema": ref("Error")}},
		}
	}
}
