package api

// addConsoleOperations documents the routes of console.go, and the template filter of
// GET /v1/jobs, in the OpenAPI document (a separate file while openapi.go is being
// reorganised).
func addConsoleOperations(paths, schemas obj, security []any) {
	if props := dig(paths, "/", "get", "responses", "200", "content", "application/json", "schema", "properties"); props != nil {
		props["console"] = typed("string", "the web console")
	}
	if list := dig(paths, "/v1/jobs", "get"); list != nil {
		params, _ := list["parameters"].([]any)
		list["parameters"] = append(params, obj{"name": "template", "in": "query", "schema": obj{"type": "string"},
			"description": "only jobs of this template"})
	}
	paths["/v1/whoami"] = obj{"get": obj{
		"operationId": "whoami", "tags": []string{"operations"}, "summary": "The role of the presented key",
		"description": "Tells a client (the console) whether its key is a user or an admin key, to offer admin actions only to admins.",
		"security":    security,
		"responses":   merge(obj{"200": jsonResponse("the key's role", ref("Whoami"))}, errorResponses("401")),
	}}
	paths["/v1/nodes"] = obj{"get": obj{
		"operationId": "listNodes", "tags": []string{"operations"}, "summary": "ComfyUI nodes",
		"description": "Every ComfyUI node a running worker drives, from the status records the workers write every 5 s " +
			"(a node leaves the list 30 s after its last heartbeat, at once when its worker stops).",
		"security":  security,
		"responses": merge(obj{"200": jsonResponse("the nodes, by name", ref("NodeList"))}, errorResponses("401")),
	}}
	paths["/v1/jobs/{id}/workflow"] = obj{"get": obj{
		"operationId": "getJobWorkflow", "tags": []string{"jobs"}, "summary": "A job's workflow",
		"description": "The API-format prompt the worker submits to ComfyUI, read from the job's queue task: available while " +
			"the job is queued or running and after it failed; 404 once a succeeded job's task is deleted.",
		"security": security, "parameters": []any{idParam()},
		"responses": merge(obj{"200": jsonResponse("the workflow", ref("JobWorkflow"))}, errorResponses("401", "404")),
	}}
	paths["/console/"] = obj{"get": obj{
		"operationId": "console", "tags": []string{"operations"}, "summary": "The web console",
		"description": "Pages that show jobs and their outputs, submit templates and show the nodes. The pages are public; " +
			"they ask for an API key and send it with every API call.",
		"security": noSecurity,
		"responses": obj{"200": obj{"description": "an HTML page",
			"content": obj{"text/html": obj{"schema": obj{"type": "string"}}}}},
	}}

	dateTime := obj{"type": "string", "format": "date-time"}
	schemas["Whoami"] = object("The role of the presented key.", obj{
		"role": obj{"type": "string", "enum": []string{"user", "admin"}, "description": "admin when the server runs without authentication"},
		"auth": typed("boolean", "false when the server runs without authentication"),
	}, "role", "auth")
	schemas["NodeList"] = object("", obj{"nodes": arrayOf(ref("NodeStatus"), "")}, "nodes")
	schemas["NodeStatus"] = object("A ComfyUI node as its worker last reported it.", obj{
		"name":            typed("string", "the node's name in the worker's configuration"),
		"url":             typed("string", "the node's ComfyUI URL (Job.node)"),
		"healthy":         typed("boolean", "false while the node fails its health probe and takes no jobs"),
		"comfyui_version": typed("string", "from /system_stats"),
		"depth":           typed("integer", "pipelining depth: jobs the node may hold at once"),
		"queue_running":   typed("integer", "prompts executing in the node's own queue"),
		"queue_pending":   typed("integer", "prompts waiting in the node's own queue"),
		"jobs":            arrayOf(typed("string", ""), "ids of the comfyq jobs the node holds"),
		"busy":            obj{"type": "number", "minimum": 0, "maximum": 1, "description": "fraction of busy_window_s during which the node held a job"},
		"busy_window_s":   typed("integer", "seconds the busy fraction covers (up to 300)"),
		"worker":          typed("string", "host/pid of the worker"),
		"updated_at":      dateTime,
	}, "name", "url", "healthy", "depth", "jobs", "busy", "updated_at")
	schemas["JobWorkflow"] = object("A job's workflow as the worker submits it.", obj{
		"id":         typed("string", ""),
		"prompt":     obj{"type": "object", "description": "the API-format workflow"},
		"images":     obj{"type": "object", "additionalProperties": ref("ImageSource"), "description": "input path → source (base64 left out)"},
		"task_state": typed("string", "asynq's state of the task: pending, active, retry, archived, …"),
	}, "id", "prompt", "task_state")
}

// dig returns the object at the path of keys in o, or nil.
func dig(o obj, keys ...string) obj {
	for _, k := range keys {
		next, ok := o[k].(obj)
		if !ok {
			return nil
		}
		o = next
	}
	return o
}

// arrayOf is an array schema of items.
func arrayOf(items obj, desc string) obj {
	o := obj{"type": "array", "items": items}
	if desc != "" {
		o["description"] = desc
	}
	return o
}
