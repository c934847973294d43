package validate_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/validate"
)

// base is a small valid prompt: EmptyImage → SaveImage.
const base = `{
 "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0}},
 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}
}`

func parse(t *testing.T, s string) comfy.Workflow {
	t.Helper()
	wf, err := comfy.ParseWorkflow([]byte(s))
	require.NoError(t, err)
	return wf
}

// edit returns base with path set to the JSON value.
func edit(t *testing.T, path, value string) comfy.Workflow {
	t.Helper()
	wf := parse(t, base)
	var v any
	require.NoError(t, json.Unmarshal([]byte(value), &v))
	if l, ok := v.([]any); ok && len(l) == 2 {
		if f, ok := l[1].(float64); ok {
			l[1] = json.Number(strings.TrimSuffix(strings.TrimSuffix(json.Number(jsonText(f)).String(), ".0"), "e+00"))
		}
	}
	require.NoError(t, wf.Set(path, numbers(v)))
	return wf
}

func jsonText(f float64) string {
	data, _ := json.Marshal(f)
	return string(data)
}

// numbers turns float64s into json.Number, as the decoders of comfyq do.
func numbers(v any) any {
	switch x := v.(type) {
	case float64:
		return json.Number(jsonText(x))
	case []any:
		for i := range x {
			x[i] = numbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = numbers(x[k])
		}
	}
	return v
}

func refused(t *testing.T, err error) *comfy.ValidationError {
	t.Helper()
	var ve *comfy.ValidationError
	require.True(t, errors.As(err, &ve), "want a *comfy.ValidationError, got %v", err)
	data, err := json.Marshal(ve)
	require.NoError(t, err)
	// ComfyUI's shape: {"error": {type, message, details, extra_info}, "node_errors":
	// {id: {errors, dependent_outputs, class_type}}}.
	var shape struct {
		Error      map[string]json.RawMessage `json:"error"`
		NodeErrors map[string]map[string]json.RawMessage
	}
	require.NoError(t, json.Unmarshal(data, &shape))
	for _, k := range []string{"type", "message", "details", "extra_info"} {
		require.Contains(t, shape.Error, k, "%s", data)
	}
	for id, ne := range shape.NodeErrors {
		for _, k := range []string{"errors", "dependent_outputs", "class_type"} {
			require.Contains(t, ne, k, "node %s: %s", id, data)
		}
		require.NotEqual(t, "null", string(ne["dependent_outputs"]), "%s", data)
	}
	return ve
}

// nodeError returns the only error of node id.
func nodeError(t *testing.T, ve *comfy.ValidationError, id string) comfy.APIError {
	t.Helper()
	ne, ok := ve.NodeErrors[id]
	require.True(t, ok, "no node_errors for %s: %v", id, ve)
	require.Len(t, ne.Errors, 1, "%v", ve)
	return ne.Errors[0]
}

func TestValidPrompt(t *testing.T) {
	t.Parallel()
	info := objectInfo(t)
	require.NoError(t, validate.Prompt(parse(t, base), info, validate.Options{}))
	require.NoError(t, validate.Prompt(parse(t, base), nil, validate.Options{}))
}

func TestRefusedAsComfyUIWould(t *testing.T) {
	t.Parallel()
	info := objectInfo(t)
	cases := []struct {
		name      string
		wf        func(t *testing.T) comfy.Workflow
		node      string // the node with the error
		typ       string // its type
		input     string // extra_info.input_name, when the error has one
		contains  string // in the message or details
		promptTyp string // the top-level error's type (default prompt_outputs_failed_validation)
		others    int    // other errors of the node
	}{
		{name: "unknown class", wf: func(t *testing.T) comfy.Workflow {
			return parse(t, strings.Replace(base, `"EmptyImage"`, `"NoSuchNode"`, 1))
		}, node: "1", typ: "missing_node_type", contains: "Node 'NoSuchNode' not found", promptTyp: "missing_node_type"},
		{name: "Cyrillic look-alike class", wf: func(t *testing.T) comfy.Workflow {
			return parse(t, strings.Replace(base, `"SaveImage"`, `"Ѕаvе\u0406mage"`, 1))
		}, node: "2", typ: "missing_node_type", contains: `did you mean "SaveImage"?`, promptTyp: "missing_node_type"},
		{name: "class in another case", wf: func(t *testing.T) comfy.Workflow {
			return parse(t, strings.Replace(base, `"SaveImage"`, `"saveimage"`, 1))
		}, node: "2", typ: "missing_node_type", contains: `did you mean "SaveImage"?`, promptTyp: "missing_node_type"},
		{name: "missing class_type", wf: func(t *testing.T) comfy.Workflow {
			return parse(t, strings.Replace(base, `"class_type": "EmptyImage", `, ``, 1))
		}, node: "1", typ: "missing_node_type", contains: "has no class_type", promptTyp: "missing_node_type"},
		{name: "missing required input", wf: func(t *testing.T) comfy.Workflow {
			wf := parse(t, base)
			delete(wf["1"].Inputs, "height")
			return wf
		}, node: "1", typ: "required_input_missing", input: "height"},
		{name: "output slot that does not exist", wf: func(t *testing.T) comfy.Workflow {
			return edit(t, "2.inputs.images", `["1", 3]`)
		}, node: "2", typ: validate.TypeBadOutputSlot, input: "images", contains: "has 1 output, slots 0 to 0; the link names slot 3"},
		{name: "negative output slot", wf: func(t *testing.T) comfy.Workflow {
			return edit(t, "2.inputs.images", `["1", -1]`)
		}, node: "2", typ: validate.TypeBadOutputSlot, input: "images"},
		{name: "no output node", wf: func(t *testing.T) comfy.Workflow {
			wf := parse(t, base)
			delete(wf, "2")
			return wf
		}, promptTyp: "prompt_no_outputs"},
		{name: "value outside a choice list", wf: func(t *testing.T) comfy.Workflow {
			return parse(t, `{
 "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0}},
 "3": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "bicubicc", "width": 8, "height": 8, "crop": "disabled"}},
 "2": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "x"}}}`)
		}, node: "3", typ: "value_not_in_list", input: "upscale_method", contains: "upscale_method: 'bicubicc' not in ['nearest-exact', 'bilinear', 'area', 'bicubic', 'lanczos']"},
		{name: "seed 2^64", wf: func(t *testing.T) comfy.Workflow {
			return sampler(t, "18446744073709551616")
		}, node: "3", typ: "value_bigger_than_max", input: "seed", contains: "Value 18446744073709551616 bigger than max of 18446744073709551615"},
		{name: "seed -1", wf: func(t *testing.T) comfy.Workflow {
			return sampler(t, "-1")
		}, node: "3", typ: "value_smaller_than_min", input: "seed", contains: "Value -1 smaller than min of 0"},
		{name: "width 1e9", wf: func(t *testing.T) comfy.Workflow {
			return edit(t, "1.inputs.width", `1e9`)
		}, node: "1", typ: "value_bigger_than_max", input: "width", contains: "Value 1000000000 bigger than max of 16384"},
		{name: "INT that is no number", wf: func(t *testing.T) comfy.Workflow {
			return edit(t, "1.inputs.width", `"wide"`)
		}, node: "1", typ: "invalid_input_type", input: "width", contains: "Failed to convert an input value to a INT value"},
		{name: "INT that is null", wf: func(t *testing.T) comfy.Workflow {
			return edit(t, "1.inputs.width", `null`)
		}, node: "1", typ: "invalid_input_type", input: "width"},
		{name: "self-loop", wf: func(t *testing.T) comfy.Workflow {
			return edit(t, "2.inputs.images", `["2", 0]`)
		}, node: "2", typ: "dependency_cycle", contains: "2 (SaveImage) -> 2 (SaveImage)", others: 1},
		{name: "self-loop of a node with outputs", wf: func(t *testing.T) comfy.Workflow {
			wf := parse(t, base)
			wf["1"] = &comfy.Node{ClassType: "ImageInvert", Inputs: map[string]any{"image": []any{"1", json.Number("0")}}}
			return wf
		}, node: "1", typ: "dependency_cycle", contains: "1 (ImageInvert) -> 1 (ImageInvert)"},
		{name: "dangling link", wf: func(t *testing.T) comfy.Workflow {
			return edit(t, "2.inputs.images", `["9", 0]`)
		}, node: "2", typ: validate.TypeLinkToMissingNode, input: "images", contains: `node "9" is not in the prompt`},
		{name: "link with a numeric node id", wf: func(t *testing.T) comfy.Workflow {
			return edit(t, "2.inputs.images", `[1, 0]`)
		}, node: "2", typ: "bad_linked_input", input: "images", contains: `write ["1", 0]`},
		{name: "link with a float node id", wf: func(t *testing.T) comfy.Workflow {
			return parse(t, strings.Replace(base, `["1", 0]`, `[1.0, 0]`, 1))
		}, node: "2", typ: "bad_linked_input", input: "images"},
		{name: "list of three", wf: func(t *testing.T) comfy.Workflow {
			return parse(t, strings.Replace(base, `["1", 0]`, `["1", 0, 0]`, 1))
		}, node: "2", typ: "bad_linked_input", input: "images"},
		{name: "return type mismatch", wf: func(t *testing.T) comfy.Workflow {
			return parse(t, `{
 "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
 "2": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "x"}}}`)
		}, node: "2", typ: "return_type_mismatch", input: "images", contains: "images, received_type(LATENT) mismatch input_type(IMAGE)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ve := refused(t, validate.Prompt(c.wf(t), info, validate.Options{}))
			want := c.promptTyp
			if want == "" {
				want = "prompt_outputs_failed_validation"
			}
			require.Equal(t, want, ve.Err.Type, "%v", ve)
			if c.node == "" {
				require.Empty(t, ve.NodeErrors)
				return
			}
			errs := ve.NodeErrors[c.node].Errors
			require.Len(t, errs, 1+c.others, "%v", ve)
			e := errs[len(errs)-1]
			require.Equal(t, c.typ, e.Type, "%v", ve)
			if c.input != "" {
				require.Equal(t, c.input, e.ExtraInfo["input_name"], "%v", ve)
			}
			require.Contains(t, e.Message+" "+e.Details, c.contains)
		})
	}
}

func sampler(t *testing.T, seed string) comfy.Workflow {
	t.Helper()
	return parse(t, `{
 "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "any.safetensors"}},
 "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
 "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["4", 1]}},
 "3": {"class_type": "KSampler", "inputs": {"seed": `+seed+`, "steps": 8, "cfg": 7, "sampler_name": "euler", "scheduler": "normal",
       "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["6", 0], "latent_image": ["5", 0]}},
 "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
 "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "fox"}}}`)
}

// Every problem comes back at once, each on its node, with the outputs it blocks.
func TestEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	wf := sampler(t, "-1")
	wf["1"] = &comfy.Node{ClassType: "NoSuchNode", Inputs: map[string]any{}}
	delete(wf["5"].Inputs, "width")
	wf["8"].Inputs["vae"] = []any{"4", json.Number("7")}
	ve := refused(t, validate.Prompt(wf, objectInfo(t), validate.Options{}))
	require.Equal(t, "missing_node_type", ve.Err.Type)
	require.Equal(t, "missing_node_type", nodeError(t, ve, "1").Type)
	require.Equal(t, "value_smaller_than_min", nodeError(t, ve, "3").Type)
	require.Equal(t, "required_input_missing", nodeError(t, ve, "5").Type)
	require.Equal(t, validate.TypeBadOutputSlot, nodeError(t, ve, "8").Type)
	require.Equal(t, []string{"9"}, ve.NodeErrors["3"].DependentOutputs)
	require.Equal(t, []string{}, ve.NodeErrors["1"].DependentOutputs)
}

// A node no output depends on is not validated (as in ComfyUI), but its class must
// exist and its links must hold.
func TestOnlyWhatOutputsNeed(t *testing.T) {
	t.Parallel()
	wf := parse(t, base)
	wf["7"] = &comfy.Node{ClassType: "EmptyImage", Inputs: map[string]any{"width": json.Number("-5")}}
	require.NoError(t, validate.Prompt(wf, objectInfo(t), validate.Options{}))
	wf["7"].Inputs["x"] = []any{"7", json.Number("0")}
	ve := refused(t, validate.Prompt(wf, objectInfo(t), validate.Options{}))
	require.Equal(t, "dependency_cycle", nodeError(t, ve, "7").Type)
}

func TestCycle(t *testing.T) {
	t.Parallel()
	wf := parse(t, `{
 "1": {"class_type": "ImageInvert", "inputs": {"image": ["3", 0]}},
 "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
 "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
 "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "x"}}}`)
	for _, info := range []comfy.ObjectInfo{nil, objectInfo(t)} {
		ve := refused(t, validate.Prompt(wf, info, validate.Options{}))
		for _, id := range []string{"1", "2", "3"} {
			e := nodeError(t, ve, id)
			require.Equal(t, "dependency_cycle", e.Type)
			require.Contains(t, e.Details, "->")
		}
		require.NotContains(t, ve.NodeErrors, "4")
	}
}

// Inputs the worker fills in (uploaded images) count as present.
func TestProvidedInputs(t *testing.T) {
	t.Parallel()
	wf := parse(t, `{
 "1": {"class_type": "LoadImage", "inputs": {}},
 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}`)
	info := objectInfo(t)
	ve := refused(t, validate.Prompt(wf, info, validate.Options{}))
	require.Equal(t, "required_input_missing", nodeError(t, ve, "1").Type)
	require.NoError(t, validate.Prompt(wf, info, validate.Options{Provided: []string{"1.inputs.image"}}))
	// An uploadable choice is the node's own check (a file on the node), not the list's.
	wf["1"].Inputs["image"] = "mine.png"
	require.NoError(t, validate.Prompt(wf, info, validate.Options{}))
}

// Model lists are checked only when asked (when the object_info knows every node's
// models).
func TestModelLists(t *testing.T) {
	t.Parallel()
	wf := sampler(t, "7")
	info := objectInfo(t)
	require.NoError(t, validate.Prompt(wf, info, validate.Options{}))
	ve := refused(t, validate.Prompt(wf, info, validate.Options{Models: true}))
	e := nodeError(t, ve, "4")
	require.Equal(t, "value_not_in_list", e.Type)
	require.Equal(t, "ckpt_name: 'any.safetensors' not in []", e.Details)
}

func TestLimits(t *testing.T) {
	t.Parallel()
	info := objectInfo(t)
	var le *validate.LimitError
	err := validate.Prompt(parse(t, base), info, validate.Options{Limits: validate.Limits{MaxNodes: 1}})
	require.True(t, errors.As(err, &le), "%v", err)
	require.Equal(t, validate.LimitNodes, le.Limit)
	require.Equal(t, 2, le.Got)

	wf := edit(t, "2.inputs.filename_prefix", `"`+strings.Repeat("a", 100)+`"`)
	err = validate.Prompt(wf, info, validate.Options{Limits: validate.Limits{MaxStringBytes: 99}})
	require.True(t, errors.As(err, &le), "%v", err)
	require.Equal(t, validate.LimitStringBytes, le.Limit)
	require.Equal(t, "2", le.NodeID)
	require.Equal(t, "filename_prefix", le.Input)
	require.NoError(t, validate.Prompt(wf, info, validate.Options{Limits: validate.Limits{MaxStringBytes: 100}}))

	wf = edit(t, "2.inputs.extra", `{"a": [[{"b": 1}]]}`)
	err = validate.Prompt(wf, info, validate.Options{Limits: validate.Limits{MaxDepth: 3}})
	require.True(t, errors.As(err, &le), "%v", err)
	require.Equal(t, validate.LimitDepth, le.Limit)
	require.NoError(t, validate.Prompt(wf, info, validate.Options{Limits: validate.Limits{MaxDepth: 4}}))
	// Negative: no limit.
	require.NoError(t, validate.Prompt(parse(t, base), info, validate.Options{Limits: validate.Limits{MaxNodes: -1}}))
}

// A cycle through thousands of nodes gives each node a bounded error.
func TestLongCycleIsBounded(t *testing.T) {
	t.Parallel()
	wf := comfy.Workflow{}
	const n = 3000
	for i := range n {
		wf[fmt.Sprint(i)] = &comfy.Node{ClassType: "ImageInvert", Inputs: map[string]any{"image": []any{fmt.Sprint((i + 1) % n), json.Number("0")}}}
	}
	ve := refused(t, validate.Prompt(wf, objectInfo(t), validate.Options{}))
	require.Len(t, ve.NodeErrors, n)
	data, err := json.Marshal(ve)
	require.NoError(t, err)
	require.Less(t, len(data), n*2000, "about a kilobyte per node")
	e := nodeError(t, ve, "0")
	require.Contains(t, e.Details, "(3000 nodes in all)")
}

func TestTrim(t *testing.T) {
	t.Parallel()
	wf := comfy.Workflow{}
	for i := range 500 {
		wf[fmt.Sprint(i)] = &comfy.Node{ClassType: "NoSuchNode", Inputs: map[string]any{}}
	}
	ve := refused(t, validate.Prompt(wf, objectInfo(t), validate.Options{}))
	require.Len(t, ve.NodeErrors, 500)
	require.Same(t, ve, validate.Trim(ve, 1<<30))
	trimmed := validate.Trim(ve, 16<<10)
	data, err := json.Marshal(trimmed)
	require.NoError(t, err)
	require.LessOrEqual(t, len(data), 16<<10)
	require.NotEmpty(t, trimmed.NodeErrors)
	require.Contains(t, trimmed.NodeErrors, "0", "the first nodes are kept")
	require.Equal(t, 500-len(trimmed.NodeErrors), trimmed.Err.ExtraInfo["node_errors_left_out"])
	require.Len(t, ve.NodeErrors, 500, "the original is unchanged")
	require.LessOrEqual(t, strings.Count(ve.Err.Details, "\n"), 20)
}
