package comfysim_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

func setup038(t *testing.T, opts comfysim.Options) *bundle {
	t.Helper()
	opts.ComfyUIVersion = comfysim.Version0381
	return setup(t, opts)
}

func TestVersionOptions(t *testing.T) {
	t.Parallel()
	_, err := comfysim.New(comfysim.Options{ComfyUIVersion: "0.4.0"})
	require.ErrorIs(t, err, comfysim.ErrInvalidOptions)
	b := setup(t, comfysim.Options{})
	require.Equal(t, comfysim.Version0364, b.sim.Version(), "the zero value keeps 0.3.64")
	require.Equal(t, comfysim.Version0381, comfysim.NewestVersion)
}

func TestVersion038SystemStatsAndFeatures(t *testing.T) {
	t.Parallel()
	b := setup038(t, comfysim.Options{})
	code, st := b.get(t, "/system_stats")
	require.Equal(t, http.StatusOK, code)
	sys := st["system"].(map[string]any)
	require.Equal(t, "0.38.1", sys["comfyui_version"])
	require.Equal(t, "linux", sys["os"])
	require.Contains(t, sys, "comfy_package_versions")
	require.Equal(t, "local-git", sys["deploy_environment"])

	_, _, body := httpDo(t, http.MethodGet, b.base+"/features", nil)
	require.JSONEq(t, `{"supports_preview_metadata": true, "supports_model_type_tags": true, "max_upload_size": 104857600.0,
		"extension": {"manager": {"supports_v4": true}}, "node_replacements": true, "assets": false}`, string(body))
}

func TestVersion038ObjectInfoFields(t *testing.T) {
	t.Parallel()
	b := setup038(t, comfysim.Options{})
	_, info := b.get(t, "/object_info/SaveImage")
	e := info["SaveImage"].(map[string]any)
	require.Equal(t, false, e["is_input_list"])
	require.Equal(t, false, e["has_intermediate_output"])
	require.Equal(t, []any{}, e["search_aliases"])
	_, info = b.get(t, "/object_info/SaveVideo")
	e = info["SaveVideo"].(map[string]any)
	require.Contains(t, e, "dev_only")
	require.Contains(t, e, "price_badge")

	old := setup(t, comfysim.Options{})
	_, info = old.get(t, "/object_info/SaveImage")
	require.NotContains(t, info["SaveImage"], "is_input_list")
}

func TestVersion038PromptID(t *testing.T) {
	t.Parallel()
	b := setup038(t, comfysim.Options{})
	want := `{"error": {"type": "invalid_prompt_id", "message": "prompt_id must be a valid UUID", "details": "prompt_id must be a UUID string in canonical lowercase hyphenated form; omit it to let the server generate one", "extra_info": {}}, "node_errors": {}}`
	id := uuid.NewString()
	for _, bad := range []any{"abc", "{" + id + "}", "A" + id[1:], 42, "urn:uuid:" + id} {
		code, _, body := httpDo(t, http.MethodPost, b.base+"/prompt",
			map[string]any{"prompt": emptyImageSave("x"), "prompt_id": bad})
		require.Equal(t, http.StatusBadRequest, code, "%v", bad)
		require.Equal(t, want, string(body), "%v", bad)
	}
	got := b.queue(t, map[string]any{"prompt": emptyImageSave("x"), "prompt_id": id})
	require.Equal(t, id, got)
	got = b.queue(t, map[string]any{"prompt": emptyImageSave("x"), "prompt_id": nil})
	require.NoError(t, uuid.Validate(got), "null lets the server mint one")

	code, resp := b.post(t, "/prompt", map[string]any{"prompt": map[string]any{
		"1": map[string]any{"class_type": "NoSuchNode", "inputs": map[string]any{}, "_meta": map[string]any{"title": "Mine"}}}})
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, map[string]any{"type": "missing_node_type", "message": "Node 'Mine' not found. The custom node may not be installed.",
		"details": "Node ID '#1'", "extra_info": map[string]any{"node_id": "1", "class_type": "NoSuchNode", "node_title": "Mine"}}, resp["error"])

	old := setup(t, comfysim.Options{})
	require.Equal(t, "abc", old.queue(t, map[string]any{"prompt": emptyImageSave("x"), "prompt_id": "abc"}))
}

func TestVersion038SensitiveKeys(t *testing.T) {
	t.Parallel()
	b := setup038(t, comfysim.Options{StepDelay: 20 * time.Millisecond})
	running := b.queue(t, map[string]any{"prompt": txt2img(1, 100)})
	b.waitRunning(t, running) // so that the next one stays pending, however slow the machine
	req := map[string]any{"prompt": emptyImageSave("s"), "client_id": "c1",
		"extra_data": map[string]any{"auth_token_comfy_org": "secret", "keep": 1}}
	req["prompt_id"] = uuid.NewString()
	id := b.queue(t, req)
	_, q := b.get(t, "/queue")
	pending := q["queue_pending"].([]any)
	require.Len(t, pending, 1)
	item := pending[0].([]any)
	require.Len(t, item, 5, "the sixth element is stripped")
	extra := item[3].(map[string]any)
	require.NotContains(t, extra, "auth_token_comfy_org")
	require.Equal(t, "c1", extra["client_id"])
	require.Contains(t, extra, "create_time")
	code, _ := b.post(t, "/api/jobs/"+running+"/cancel", nil)
	require.Equal(t, http.StatusOK, code)
	waitExecuted(t, b, 2)
	h := b.history(t, id)
	require.NotContains(t, h["prompt"].([]any)[3], "auth_token_comfy_org")
}

func TestVersion038Jobs(t *testing.T) {
	t.Parallel()
	b := setup038(t, comfysim.Options{StepDelay: 20 * time.Millisecond})
	done := b.queue(t, map[string]any{"prompt": emptyImageSave("j"), "extra_data": map[string]any{
		"extra_pnginfo": map[string]any{"workflow": map[string]any{"id": "wf-1"}}}})
	waitExecuted(t, b, 1)
	running := b.queue(t, map[string]any{"prompt": txt2img(1, 500)})
	pending := b.queue(t, map[string]any{"prompt": emptyImageSave("p")})

	require.Eventually(t, func() bool {
		_, j := b.get(t, "/api/jobs/"+running)
		return j["status"] == "in_progress"
	}, waitTimeout, 5*time.Millisecond)

	code, j := b.get(t, "/api/jobs/"+done)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "completed", j["status"])
	require.Equal(t, "wf-1", j["workflow_id"])
	require.Equal(t, jsonNum(1), j["outputs_count"])
	require.Equal(t, "output", j["preview_output"].(map[string]any)["type"])
	require.Contains(t, j, "execution_status")
	_, j = b.get(t, "/api/jobs/"+pending)
	require.Equal(t, "pending", j["status"])
	code, j = b.get(t, "/api/jobs/"+uuid.NewString())
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "Job not found", j["error"])

	_, list := b.get(t, "/api/jobs?status=pending,in_progress&sort_order=asc")
	require.Len(t, list["jobs"], 2)
	require.Equal(t, running, list["jobs"].([]any)[0].(map[string]any)["id"])
	_, list = b.get(t, "/api/jobs?limit=1&offset=1")
	require.Len(t, list["jobs"], 1)
	require.Equal(t, map[string]any{"offset": jsonNum(1), "limit": jsonNum(1), "total": jsonNum(3), "has_more": true}, list["pagination"])
	_, all := b.get(t, "/api/jobs")
	require.Equal(t, all["jobs"].([]any)[1], list["jobs"].([]any)[0])
	require.Equal(t, done, all["jobs"].([]any)[2].(map[string]any)["id"], "newest first")
	_, list = b.get(t, "/api/jobs?workflow_id=wf-1")
	require.Len(t, list["jobs"], 1)
	for q, want := range map[string]string{
		"status=bogus":  "Invalid status value(s): bogus. Valid values: pending, in_progress, completed, failed, cancelled",
		"sort_by=name":  "sort_by must be 'created_at' or 'execution_duration'",
		"sort_order=up": "sort_order must be 'asc' or 'desc'",
		"limit=0":       "limit must be a positive integer",
		"limit=x":       "limit must be an integer",
		"offset=x":      "offset must be an integer",
	} {
		status, e := b.get(t, "/api/jobs?"+q)
		require.Equal(t, http.StatusBadRequest, status, q)
		require.Equal(t, want, e["error"], q)
	}

	// Cancel: pending is dequeued, running interrupted, finished a no-op.
	_, c := b.post(t, "/api/jobs/"+pending+"/cancel", nil)
	require.Equal(t, true, c["cancelled"])
	_, c = b.post(t, "/api/jobs/"+done+"/cancel", nil)
	require.Equal(t, false, c["cancelled"])
	code, c = b.post(t, "/api/jobs/cancel", map[string]any{"job_ids": []any{running, 7}})
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, []any{"7"}, c["invalid_ids"])
	_, c = b.post(t, "/api/jobs/cancel", map[string]any{"job_ids": []any{running, done}})
	require.Equal(t, true, c["cancelled"])
	waitExecuted(t, b, 2)
	_, j = b.get(t, "/api/jobs/"+running)
	require.Equal(t, "cancelled", j["status"])
	code, _ = b.get(t, "/api/jobs/"+pending)
	require.Equal(t, http.StatusNotFound, code, "a dequeued job is gone")

	code, _, _ = httpDo(t, http.MethodGet, b.base+"/jobs", nil)
	require.Equal(t, http.StatusNotFound, code, "the jobs routes live under /api only")
	code, _, _ = httpDo(t, http.MethodGet, b.base+"/api/api/jobs", nil)
	require.Equal(t, http.StatusOK, code)
	old := setup(t, comfysim.Options{})
	code, _, _ = httpDo(t, http.MethodGet, old.base+"/api/jobs", nil)
	require.Equal(t, http.StatusNotFound, code, "0.3.64 has no jobs API")
}

// TestVersion038CancelFinishedIsNoOp is the atomicity of
// interrupt_if_running: cancelling a prompt that has just finished does not
// interrupt the one that started after it.
func TestVersion038CancelFinishedIsNoOp(t *testing.T) {
	t.Parallel()
	b := setup038(t, comfysim.Options{StepDelay: 5 * time.Millisecond})
	first := b.queue(t, map[string]any{"prompt": emptyImageSave("a")})
	second := b.queue(t, map[string]any{"prompt": txt2img(2, 40)})
	waitExecuted(t, b, 1)
	_, c := b.post(t, "/api/jobs/"+first+"/cancel", nil)
	require.Equal(t, false, c["cancelled"])
	waitExecuted(t, b, 2)
	require.Equal(t, "success", b.history(t, second)["status"].(map[string]any)["status_str"])
}

func jsonNum(n int) any { return json.Number(strconv.Itoa(n)) }
