package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/internal/nodestatus"
	"github.com/comfyq/comfyq/job"
)

// refusedPrompt posts a submission that ComfyUI would refuse and returns the
// node_errors of the answer: a 400 invalid_workflow whose details are ComfyUI's own
// {"error", "node_errors"}, with nothing stored.
func refusedPrompt(t *testing.T, b *bundle, body any) *comfy.ValidationError {
	t.Helper()
	before := b.redisState(t)
	r := b.do(t, "POST", "/v1/jobs", userKey, body)
	require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
	e := r.apiError(t)
	require.Equal(t, "invalid_workflow", e.Code)
	require.Equal(t, "workflow", e.Field)
	require.True(t, strings.HasPrefix(e.Message, "ComfyUI would refuse this prompt: "), e.Message)
	var eb struct {
		Error struct {
			Details *comfy.ValidationError `json:"details"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(r.body, &eb))
	ve := eb.Error.Details
	require.NotNil(t, ve, "%s", r.body)
	require.NotEmpty(t, ve.Err.Type, "%s", r.body)
	require.Equal(t, before, b.redisState(t), "nothing is stored")
	return ve
}

// onlyError returns the one error of node id.
func onlyError(t *testing.T, ve *comfy.ValidationError, id, class string) comfy.APIError {
	t.Helper()
	ne, ok := ve.NodeErrors[id]
	require.True(t, ok, "node %s in node_errors: %+v", id, ve.NodeErrors)
	require.Equal(t, class, ne.ClassType)
	require.NotEmpty(t, ne.Errors)
	return ne.Errors[len(ne.Errors)-1]
}

// TestSubmissionValidatedAsComfyUIWould: each case of issue 13's list is refused at
// submission with the error the node would have given, per node and input.
func TestSubmissionValidatedAsComfyUIWould(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	wf := func(s string) json.RawMessage { return jsonRaw(s) }

	// set is applied before validation.
	ve := refusedPrompt(t, b, map[string]any{"workflow": wf(imageWorkflow), "set": map[string]any{"2.inputs.images": []any{"2", 0}}})
	e := onlyError(t, ve, "2", "SaveImage")
	require.Equal(t, "dependency_cycle", e.Type)
	require.Equal(t, "2 (SaveImage) -> 2 (SaveImage)", e.Details)

	ve = refusedPrompt(t, b, map[string]any{"workflow": wf(strings.Replace(imageWorkflow, `"SaveImage"`, `"SаveImage"`, 1))})
	require.Equal(t, "missing_node_type", ve.Err.Type)
	e = onlyError(t, ve, "2", "SаveImage")
	require.Equal(t, "missing_node_type", e.Type)
	require.Contains(t, e.Details, `did you mean "SaveImage"?`)
	require.Contains(t, e.Details, "U+0430")

	ve = refusedPrompt(t, b, map[string]any{"workflow": wf(strings.Replace(imageWorkflow, `"EmptyImage"`, `"NoSuchNode"`, 1))})
	e = onlyError(t, ve, "1", "NoSuchNode")
	require.Equal(t, "Node 'NoSuchNode' not found. The custom node may not be installed.", e.Message)

	ve = refusedPrompt(t, b, map[string]any{"workflow": wf(strings.Replace(imageWorkflow, `"height": 48, `, ``, 1))})
	e = onlyError(t, ve, "1", "EmptyImage")
	require.Equal(t, "required_input_missing", e.Type)
	require.Equal(t, "height", e.ExtraInfo["input_name"])
	require.Equal(t, []string{"2"}, ve.NodeErrors["1"].DependentOutputs)

	ve = refusedPrompt(t, b, map[string]any{"workflow": wf(imageWorkflow), "set": map[string]any{"2.inputs.images": []any{"1", 2}}})
	e = onlyError(t, ve, "2", "SaveImage")
	require.Equal(t, "bad_output_slot", e.Type)
	require.Equal(t, "images", e.ExtraInfo["input_name"])

	ve = refusedPrompt(t, b, map[string]any{"workflow": wf(`{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}}`)})
	require.Equal(t, "prompt_no_outputs", ve.Err.Type)
	require.Empty(t, ve.NodeErrors)

	ve = refusedPrompt(t, b, map[string]any{"workflow": wf(samplerWorkflow), "set": map[string]any{"3.inputs.sampler_name": "eulerr"}})
	e = onlyError(t, ve, "3", "KSampler")
	require.Equal(t, "value_not_in_list", e.Type)
	require.Equal(t, "sampler_name", e.ExtraInfo["input_name"])
	require.Contains(t, e.Details, "sampler_name: 'eulerr' not in (list of length")

	for seed, typ := range map[string]string{"18446744073709551616": "value_bigger_than_max", "-1": "value_smaller_than_min"} {
		ve = refusedPrompt(t, b, map[string]any{"workflow": wf(samplerWorkflow), "set": map[string]any{"3.inputs.seed": json.Number(seed)}})
		e = onlyError(t, ve, "3", "KSampler")
		require.Equal(t, typ, e.Type, seed)
		require.Equal(t, "seed", e.ExtraInfo["input_name"])
	}
	ve = refusedPrompt(t, b, map[string]any{"workflow": wf(samplerWorkflow), "set": map[string]any{"5.inputs.width": 1e9}})
	e = onlyError(t, ve, "5", "EmptyLatentImage")
	require.Equal(t, "Value 1000000000 bigger than max of 16384", e.Message)

	// Template jobs are validated with their parameters and set applied.
	r := b.do(t, "POST", "/v1/templates", adminKey, badInputTemplate)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	ve = refusedPrompt(t, b, map[string]any{"template": "img2img", "params": map[string]any{"prompt": "a fox"}, "set": map[string]any{"3.inputs.scheduler": "sometimes"}})
	require.Equal(t, "value_not_in_list", onlyError(t, ve, "3", "KSampler").Type)

	// The same workflow, valid, is accepted; and so are the real ones.
	b.submit(t, map[string]any{"workflow": wf(samplerWorkflow)})
	for _, name := range []string{"default_embedding.api.json", "primitive_sdxl_simple.ui.json", "loadimage_img2img.api.json"} {
		b.submit(t, map[string]any{"workflow": jsonRaw(string(readFixture(t, name)))})
	}
}

// Without object_info only the structure is checked: classes and values are the
// node's to judge.
func TestSubmissionWithoutObjectInfo(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{config: func(c *api.Config) { c.ObjectInfo = nil }})
	b.submit(t, map[string]any{"workflow": jsonRaw(strings.Replace(imageWorkflow, `"EmptyImage"`, `"NoSuchNode"`, 1))})
	ve := refusedPrompt(t, b, map[string]any{"workflow": jsonRaw(imageWorkflow), "set": map[string]any{"2.inputs.images": []any{"2", 0}}})
	require.Equal(t, "dependency_cycle", onlyError(t, ve, "2", "SaveImage").Type)
}

// Limits are the server's configuration.
func TestSubmissionLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{config: func(c *api.Config) {
		c.Limits.MaxNodes, c.Limits.MaxStringBytes, c.Limits.MaxImages = 3, 10, 1
	}})
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"workflow": jsonRaw(imageWorkflow), "set": map[string]any{"2.inputs.filename_prefix": "elevenbytes"}}, "workflow"},
		{map[string]any{"workflow": jsonRaw(samplerWorkflow)}, "workflow"},
		{map[string]any{"workflow": jsonRaw(imageWorkflow), "images": map[string]any{
			"1.inputs.a": map[string]any{"url": "https://93.184.215.14/a.png"}, "1.inputs.b": map[string]any{"url": "https://93.184.215.14/b.png"}}}, "images"},
	} {
		r := b.do(t, "POST", "/v1/jobs", userKey, c.body)
		require.Equal(t, http.StatusRequestEntityTooLarge, r.status, "%s", r.body)
		e := r.apiError(t)
		require.Equal(t, string(job.CodeTooLarge), e.Code)
		require.Equal(t, c.field, e.Field)
	}
	b.submit(t, map[string]any{"workflow": jsonRaw(imageWorkflow), "set": map[string]any{"2.inputs.filename_prefix": "tenbytes.."}})
}

// With workers attached, submissions are validated against the object_info their
// nodes published, model names included: a checkpoint the node does not have is
// refused at the door.
func TestSubmissionValidatedAgainstTheNodes(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{worker: true, config: func(c *api.Config) { c.ObjectInfo = nil }})
	require.Eventually(t, func() bool {
		nodes, err := nodestatus.List(b.ctx, b.rdb)
		return err == nil && len(nodes) == 1 && nodes[0].Healthy && nodes[0].ObjectInfoSHA256 != ""
	}, 30*time.Second, 20*time.Millisecond, "the worker publishes its node's object_info")

	ve := refusedPrompt(t, b, map[string]any{"workflow": jsonRaw(samplerWorkflow), "set": map[string]any{"4.inputs.ckpt_name": "not-on-the-node.safetensors"}})
	e := onlyError(t, ve, "4", "CheckpointLoaderSimple")
	require.Equal(t, "value_not_in_list", e.Type)
	require.Contains(t, e.Details, "'not-on-the-node.safetensors' not in [")
	require.Contains(t, e.Details, "'"+simModel+"'")

	// A class the node does not know is refused although the API has no object_info
	// of its own.
	ve = refusedPrompt(t, b, map[string]any{"workflow": jsonRaw(strings.Replace(imageWorkflow, `"EmptyImage"`, `"NoSuchNode"`, 1))})
	require.Equal(t, "missing_node_type", ve.Err.Type)

	// What the node has runs.
	acc := b.submit(t, map[string]any{"workflow": jsonRaw(samplerWorkflow)})
	require.Equal(t, job.StatusSucceeded, b.waitJob(t, acc.ID).Status)
}
