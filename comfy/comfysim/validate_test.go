package comfysim_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

// postRaw posts a body and returns status and raw response.
func (b *bundle) postRaw(t *testing.T, path string, body any) (int, string) {
	t.Helper()
	code, _, data := httpDo(t, http.MethodPost, b.base+path, body)
	return code, string(data)
}

func TestPromptErrorsTopLevel(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	tests := []struct {
		name string
		body any
		want string
	}{
		{"no prompt", map[string]any{"client_id": "x"},
			`{"error": {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": {}}, "node_errors": {}}`},
		{"unknown class", map[string]any{"prompt": map[string]any{"1": map[string]any{"class_type": "NoSuchNode", "inputs": map[string]any{}}}},
			`{"error": {"type": "invalid_prompt", "message": "Cannot execute because node NoSuchNode does not exist.", "details": "Node ID '#1'", "extra_info": {}}, "node_errors": {}}`},
		{"missing class_type", map[string]any{"prompt": map[string]any{"7": map[string]any{"inputs": map[string]any{}}}},
			`{"error": {"type": "invalid_prompt", "message": "Cannot execute because a node is missing the class_type property.", "details": "Node ID '#7'", "extra_info": {}}, "node_errors": {}}`},
		{"no outputs", map[string]any{"prompt": map[string]any{"1": map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{}}}},
			`{"error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}, "node_errors": {}}`},
		{"empty partial targets", map[string]any{"prompt": emptyImageSave("x"), "partial_execution_targets": []any{}},
			`{"error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}, "node_errors": {}}`},
		{"partial targets naming no output node", map[string]any{"prompt": emptyImageSave("x"), "partial_execution_targets": []any{"1"}},
			`{"error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}, "node_errors": {}}`},
	}
	for _, tc := range tests {
		code, body := b.postRaw(t, "/prompt", tc.body)
		require.Equal(t, http.StatusBadRequest, code, tc.name)
		require.Equal(t, tc.want, body, tc.name)
	}

	// Malformed JSON is a handler exception: aiohttp's 500.
	code, body := b.postRaw(t, "/prompt", "{not json")
	require.Equal(t, http.StatusInternalServerError, code)
	require.Equal(t, "500 Internal Server Error\n\nServer got itself in trouble", body)
}

// nodeErrors posts a prompt expected to fail validation and returns the
// decoded answer.
func (b *bundle) rejected(t *testing.T, prompt map[string]any) (map[string]any, string) {
	t.Helper()
	code, raw := b.postRaw(t, "/prompt", map[string]any{"prompt": prompt})
	require.Equal(t, http.StatusBadRequest, code, raw)
	return decode(t, []byte(raw)), raw
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestPromptNodeErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	save := func(images any) map[string]any {
		return map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": images, "filename_prefix": "x"}}
	}
	empty := func(w any) map[string]any {
		return map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": w, "height": 64, "batch_size": 1, "color": 0}}
	}

	t.Run("value_smaller_than_min", func(t *testing.T) {
		resp, raw := b.rejected(t, map[string]any{"1": empty(0), "2": save([]any{"1", 0})})
		require.Contains(t, raw, `"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}}`)
		require.JSONEq(t, `{"1": {"errors": [{"type": "value_smaller_than_min", "message": "Value 0 smaller than min of 1", "details": "width",
			"extra_info": {"input_name": "width", "input_config": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}], "received_value": 0}}],
			"dependent_outputs": ["2"], "class_type": "EmptyImage"}}`, jsonOf(t, resp["node_errors"]))
	})
	t.Run("value_bigger_than_max", func(t *testing.T) {
		p := txt2img(1, 10001)
		resp, _ := b.rejected(t, p)
		e := resp["node_errors"].(map[string]any)["3"].(map[string]any)["errors"].([]any)[0].(map[string]any)
		require.Equal(t, "value_bigger_than_max", e["type"])
		require.Equal(t, "Value 10001 bigger than max of 10000", e["message"])
	})
	t.Run("value_not_in_list long", func(t *testing.T) {
		p := txt2img(1, 2)
		p["3"].(map[string]any)["inputs"].(map[string]any)["sampler_name"] = "nope"
		resp, raw := b.rejected(t, p)
		require.Contains(t, raw, `{"type": "value_not_in_list", "message": "Value not in list", "details": "sampler_name: 'nope' not in (list of length 42)", "extra_info": {"input_name": "sampler_name", "input_config": null, "received_value": "nope"}}`)
		require.Equal(t, []any{"9"}, resp["node_errors"].(map[string]any)["3"].(map[string]any)["dependent_outputs"])
	})
	t.Run("value_not_in_list short", func(t *testing.T) {
		p := txt2img(1, 2)
		p["4"].(map[string]any)["inputs"].(map[string]any)["ckpt_name"] = "x.safetensors"
		_, raw := b.rejected(t, p)
		require.Contains(t, raw, `"details": "ckpt_name: 'x.safetensors' not in ['sim-v1-5.safetensors']", "extra_info": {"input_name": "ckpt_name", "input_config": [["sim-v1-5.safetensors"], {"tooltip": "The name of the checkpoint (model) to load."}], "received_value": "x.safetensors"}`)
	})
	t.Run("invalid_input_type", func(t *testing.T) {
		_, raw := b.rejected(t, map[string]any{"1": empty("abc"), "2": save([]any{"1", 0})})
		require.Contains(t, raw, `{"type": "invalid_input_type", "message": "Failed to convert an input value to a INT value", "details": "width, abc, invalid literal for int() with base 10: 'abc'", "extra_info": {"input_name": "width", "input_config": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}], "received_value": "abc", "exception_message": "invalid literal for int() with base 10: 'abc'"}}`)
	})
	t.Run("required_input_missing", func(t *testing.T) {
		_, raw := b.rejected(t, map[string]any{"1": empty(64), "2": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"1", 0}}}})
		require.Contains(t, raw, `"details": "Required input is missing: filename_prefix"`)
		require.Contains(t, raw, `"node_errors": {"2": {"errors": [{"type": "required_input_missing", "message": "Required input is missing", "details": "filename_prefix", "extra_info": {"input_name": "filename_prefix"}}], "dependent_outputs": ["2"], "class_type": "SaveImage"}}`)
	})
	t.Run("bad_linked_input", func(t *testing.T) {
		_, raw := b.rejected(t, map[string]any{"1": empty(64), "2": save([]any{"1"})})
		require.Contains(t, raw, `{"type": "bad_linked_input", "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]", "details": "images", "extra_info": {"input_name": "images", "input_config": ["IMAGE", {"tooltip": "The images to save."}], "received_value": ["1"]}}`)
	})
	t.Run("return_type_mismatch", func(t *testing.T) {
		_, raw := b.rejected(t, map[string]any{
			"1": map[string]any{"class_type": "CheckpointLoaderSimple", "inputs": map[string]any{"ckpt_name": "sim-v1-5.safetensors"}},
			"2": save([]any{"1", 0}),
		})
		require.Contains(t, raw, `{"type": "return_type_mismatch", "message": "Return type mismatch between linked nodes", "details": "images, received_type(MODEL) mismatch input_type(IMAGE)", "extra_info": {"input_name": "images", "input_config": ["IMAGE", {"tooltip": "The images to save."}], "received_type": "MODEL", "linked_node": ["1", 0]}}`)
	})
	t.Run("link to a missing node from the output", func(t *testing.T) {
		resp, _ := b.rejected(t, map[string]any{"2": save([]any{"99", 0})})
		e := resp["node_errors"].(map[string]any)["2"].(map[string]any)["errors"].([]any)[0].(map[string]any)
		require.Equal(t, "exception_during_validation", e["type"])
		require.Equal(t, "'99'", e["details"])
		require.Equal(t, "KeyError", e["extra_info"].(map[string]any)["exception_type"])
	})
	t.Run("exception_during_inner_validation", func(t *testing.T) {
		resp, _ := b.rejected(t, map[string]any{
			"3": map[string]any{"class_type": "ImageInvert", "inputs": map[string]any{"image": []any{"99", 0}}},
			"2": save([]any{"3", 0}),
		})
		ne := resp["node_errors"].(map[string]any)
		require.NotContains(t, ne, "2", "a node invalid only through its inputs is not listed")
		e := ne["3"].(map[string]any)["errors"].([]any)[0].(map[string]any)
		require.Equal(t, "exception_during_inner_validation", e["type"])
		require.Equal(t, "Exception when validating inner node", e["message"])
		require.Equal(t, "'99'", e["details"])
		ei := e["extra_info"].(map[string]any)
		require.Equal(t, "images", ei["input_name"])
		require.Equal(t, "KeyError", ei["exception_type"])
		require.Equal(t, []any{"3", json.Number("0")}, ei["linked_node"])
		require.NotEmpty(t, ei["traceback"])
	})
	t.Run("numeric link id", func(t *testing.T) {
		resp, _ := b.rejected(t, map[string]any{"1": empty(64), "2": save([]any{1, 0})})
		e := resp["node_errors"].(map[string]any)["2"].(map[string]any)["errors"].([]any)[0].(map[string]any)
		require.Equal(t, "exception_during_validation", e["type"])
		require.Equal(t, "1", e["details"])
	})
	t.Run("custom_validation_failed", func(t *testing.T) {
		_, raw := b.rejected(t, map[string]any{
			"1": map[string]any{"class_type": "LoadImage", "inputs": map[string]any{"image": "missing.png"}},
			"2": save([]any{"1", 0}),
		})
		require.Contains(t, raw, `"details": ""`)
		require.Contains(t, raw, `{"1": {"errors": [{"type": "custom_validation_failed", "message": "Custom validation failed for node", "details": "image - Invalid image file: missing.png", "extra_info": {"input_name": "image"}}], "dependent_outputs": ["2"], "class_type": "LoadImage"}}`)
	})
	t.Run("dependent_outputs", func(t *testing.T) {
		resp, _ := b.rejected(t, map[string]any{"1": empty(0), "2": save([]any{"1", 0}), "3": save([]any{"1", 0})})
		require.Equal(t, []any{"2", "3"}, resp["node_errors"].(map[string]any)["1"].(map[string]any)["dependent_outputs"])
	})
}

// TestPartiallyValidPrompt: a prompt with one good output is queued with
// only that output, node_errors reporting the bad one.
func TestPartiallyValidPrompt(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	prompt := emptyImageSave("good")
	prompt["3"] = map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 0, "height": 64, "batch_size": 1, "color": 0}}
	prompt["4"] = map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"3", 0}, "filename_prefix": "bad"}}
	code, raw := b.postRaw(t, "/prompt", map[string]any{"prompt": prompt, "client_id": "c"})
	require.Equal(t, http.StatusOK, code)
	resp := decode(t, []byte(raw))
	require.Contains(t, resp["node_errors"], "3")
	id := resp["prompt_id"].(string)
	h := waitHistory(t, b, id)
	require.Equal(t, []any{"2"}, h["prompt"].([]any)[4])
	require.Contains(t, h["outputs"], "2")
	require.NotContains(t, h["outputs"], "4")
}

// TestValidationConvertsInPlace: constants are converted as ComfyUI does and
// the converted prompt is what /queue and /history show; 2^64-1 seeds stay
// exact.
func TestValidationConvertsInPlace(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	p := txt2img(json.Number("18446744073709551615"), 1)
	in := p["3"].(map[string]any)["inputs"].(map[string]any)
	in["steps"] = "1"
	in["cfg"] = 7
	p["6"].(map[string]any)["inputs"].(map[string]any)["text"] = 12
	p["5"].(map[string]any)["inputs"].(map[string]any)["width"] = 64.9
	code, raw := b.postRaw(t, "/prompt", map[string]any{"prompt": p, "number": 3})
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, raw, `"number": 3.0`)
	id := decode(t, []byte(raw))["prompt_id"].(string)
	h := waitHistory(t, b, id)
	_, _, hist := httpDo(t, http.MethodGet, b.base+"/history/"+id, nil)
	require.Contains(t, string(hist), `"seed": 18446744073709551615`)
	require.Contains(t, string(hist), `"steps": 1}`)
	require.Contains(t, string(hist), `"cfg": 7.0`)
	require.Contains(t, string(hist), `"denoise": 1.0`)
	require.Contains(t, string(hist), `"text": "12"`)
	require.Contains(t, string(hist), `"width": 64}`)
	require.Contains(t, string(hist), `"prompt": [3.0, "`+id+`"`)
	require.Equal(t, "success", h["status"].(map[string]any)["status_str"])
}

// waitHistory polls /history/{id} until the entry exists.
func waitHistory(t *testing.T, b *bundle, id string) map[string]any {
	t.Helper()
	var h map[string]any
	require.Eventually(t, func() bool { h = b.history(t, id); return h != nil }, waitTimeout, pollInterval)
	return h
}
