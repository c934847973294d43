package template

import (
	"encoding/json"

	"testing"

	"github.com/stretchr/testify/require"
)

func TestDiscoverSamplerHeuristic(t *testing.T) {
	t.Parallel()
	wf := loadWorkflow(t, "default_embedding.api.json")
	params := Discover(wf, loadInfo(t), "")
	require.Equal(t, []string{"prompt", "negative_prompt", "seed", "steps", "cfg", "width", "height", "batch_size"}, names(params))
	p := paramsByName(t, params)

	prompt := p["prompt"]
	require.Equal(t, []string{"6.inputs.text"}, prompt.Targets)
	require.Equal(t, TypeString, prompt.Type)
	require.True(t, prompt.Multiline)
	require.False(t, prompt.Required)
	require.Equal(t, "photograph in the style of embedding:SDA768.pt girl with blonde hair\nlandscape scenery view", prompt.Default)
	require.Contains(t, prompt.Description, "Positive prompt")
	require.Equal(t, []string{"7.inputs.text"}, p["negative_prompt"].Targets)
	require.Equal(t, "bad hands", p["negative_prompt"].Default)

	seed := p["seed"]
	require.Equal(t, []string{"3.inputs.seed"}, seed.Targets)
	require.Equal(t, TypeInteger, seed.Type)
	require.Equal(t, num("193694018275622"), seed.Default)
	require.Equal(t, num("0"), seed.ExactMinimum())
	require.Equal(t, num("18446744073709551615"), seed.ExactMaximum(), "the seed's maximum stays exact")
	require.Equal(t, "The random seed used for creating the noise.", seed.Description)

	steps := p["steps"]
	require.Equal(t, TypeInteger, steps.Type)
	require.Equal(t, 1.0, *steps.Minimum)
	require.Equal(t, 10000.0, *steps.Maximum)
	require.Equal(t, num("20"), steps.Default)

	cfg := p["cfg"]
	require.Equal(t, TypeNumber, cfg.Type)
	require.Equal(t, []string{"3.inputs.cfg"}, cfg.Targets)
	require.Equal(t, 0.0, *cfg.Minimum)
	require.Equal(t, 100.0, *cfg.Maximum)
	require.Equal(t, num("8.0"), cfg.Default)

	for _, name := range []string{"width", "height"} {
		require.Equal(t, []string{"5.inputs." + name}, p[name].Targets)
		require.Equal(t, TypeInteger, p[name].Type)
		require.Equal(t, num("768"), p[name].Default)
		require.Equal(t, num("16"), p[name].ExactMinimum())
		require.Equal(t, num("16384"), p[name].ExactMaximum())
	}
	require.Equal(t, num("1"), p["batch_size"].Default)
	require.Equal(t, num("4096"), p["batch_size"].ExactMaximum())
}

func TestDiscoverWithoutObjectInfo(t *testing.T) {
	t.Parallel()
	wf := loadWorkflow(t, "default_embedding.api.json")
	p := paramsByName(t, Discover(wf, nil, ""))
	require.Equal(t, TypeString, p["prompt"].Type)
	require.False(t, p["prompt"].Multiline)
	require.Equal(t, TypeInteger, p["seed"].Type)
	require.Nil(t, p["seed"].Maximum)
	require.Equal(t, TypeNumber, p["cfg"].Type, "8.0 is a number")
	require.Equal(t, TypeInteger, p["width"].Type)
	require.Equal(t, "KSampler.seed of node 3", p["seed"].Description)
}

func TestDiscoverLoadImage(t *testing.T) {
	t.Parallel()
	wf := loadWorkflow(t, "loadimage_img2img.api.json")
	for _, withInfo := range []bool{true, false} {
		info := loadInfo(t)
		if !withInfo {
			info = nil
		}
		params := Discover(wf, info, "")
		require.Equal(t, []string{"prompt", "negative_prompt", "seed", "steps", "cfg", "image"}, names(params),
			"img2img has no empty latent (with object_info: %v)", withInfo)
		img := paramsByName(t, params)["image"]
		require.Equal(t, TypeImage, img.Type)
		require.Equal(t, []string{"10.inputs.image"}, img.Targets)
		require.Equal(t, "example.png", img.Default)
		require.Empty(t, img.Enum, "a node's file list is no constraint on uploads")
	}
}

func TestDiscoverSeveralImagesAndSamplerCustom(t *testing.T) {
	t.Parallel()
	wf := loadWorkflow(t, "bypass_multi_output_ltxv.api.json")
	p := paramsByName(t, Discover(wf, loadInfo(t), ""))
	// SamplerCustom's conditioning goes through LTXVConditioning and LTXVAddGuide.
	require.Equal(t, []string{"6.inputs.text"}, p["prompt"].Targets)
	require.Equal(t, []string{"7.inputs.text"}, p["negative_prompt"].Targets)
	require.Equal(t, []string{"72.inputs.noise_seed"}, p["seed"].Targets)
	require.Equal(t, []string{"78.inputs.image"}, p["image_78"].Targets)
	require.Equal(t, []string{"85.inputs.image"}, p["image_85"].Targets)
	require.Equal(t, TypeImage, p["image_85"].Type)
	_, ok := p["image"]
	require.False(t, ok)
}

func TestDiscoverTiesSamplersSharingAValue(t *testing.T) {
	t.Parallel()
	// SDXL base + refiner: one PrimitiveNode fed both prompts in the UI, so the API
	// prompt has the same text twice; the seeds differ.
	p := paramsByName(t, Discover(loadWorkflow(t, "primitive_sdxl_simple.api.json"), loadInfo(t), ""))
	require.Equal(t, []string{"6.inputs.text", "15.inputs.text"}, p["prompt"].Targets)
	require.Equal(t, []string{"7.inputs.text", "16.inputs.text"}, p["negative_prompt"].Targets)
	require.Equal(t, []string{"10.inputs.noise_seed"}, p["seed"].Targets)
	require.Equal(t, []string{"10.inputs.steps", "11.inputs.steps"}, p["steps"].Targets)

	// Four KSamplers compared on one seed.
	p = paramsByName(t, Discover(loadWorkflow(t, "primitive_seed_compare_samplers.api.json"), loadInfo(t), ""))
	require.Equal(t, []string{"3.inputs.seed", "17.inputs.seed", "21.inputs.seed", "28.inputs.seed"}, p["seed"].Targets)
	require.Equal(t, []string{"6.inputs.text"}, p["prompt"].Targets)
	require.Equal(t, []string{"5.inputs.width"}, p["width"].Targets)
}

const titledWorkflow = `{
 "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5.safetensors"}},
 "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}, "_meta": {"title": "Input: prompt"}},
 "16": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}, "_meta": {"title": "Input: prompt"}},
 "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
 "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}, "_meta": {"title": "Input: size"}},
 "10": {"class_type": "LoadImage", "inputs": {"image": "cat.png", "upload": "image"}, "_meta": {"title": "Input: photo"}},
 "11": {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}},
 "3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
        "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["11", 0]},
        "_meta": {"title": "Input: sampler"}},
 "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
 "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}}
}`

func TestDiscoverTitles(t *testing.T) {
	t.Parallel()
	wf := parseWF(t, titledWorkflow)
	params := Discover(wf, loadInfo(t), "")
	require.Equal(t, []string{
		"sampler_seed", "sampler_steps", "sampler_cfg", "sampler_sampler_name", "sampler_scheduler", "sampler_denoise",
		"size_width", "size_height", "size_batch_size",
		"prompt", "photo",
	}, names(params), "titled nodes in id order, inputs in object_info order; no heuristic")
	p := paramsByName(t, params)
	require.Equal(t, []string{"6.inputs.text", "16.inputs.text"}, p["prompt"].Targets, "same title, same type: one parameter")
	require.Equal(t, TypeImage, p["photo"].Type)
	require.Equal(t, []string{"10.inputs.image"}, p["photo"].Targets, "the upload button is no parameter")
	require.Equal(t, TypeNumber, p["sampler_cfg"].Type, "object_info says FLOAT even though the value is 8")
	sampler := p["sampler_sampler_name"]
	require.Equal(t, TypeString, sampler.Type)
	require.Contains(t, sampler.Enum, "euler")
	require.Contains(t, sampler.Enum, "dpmpp_2m")
	require.Equal(t, "euler", sampler.Default)

	// A custom prefix; nothing carries it, so the heuristic applies.
	params = Discover(wf, loadInfo(t), "Param/")
	require.Equal(t, "prompt", params[0].Name)
	require.Equal(t, []string{"6.inputs.text"}, params[0].Targets)
}

func TestDiscoverTitleNamesAnInput(t *testing.T) {
	t.Parallel()
	wf := parseWF(t, `{
 "1": {"class_type": "EmptyImage", "inputs": {"width": 512, "height": 512, "batch_size": 1, "color": 0}, "_meta": {"title": "Input: color"}},
 "2": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 255}, "_meta": {"title": "Input: Width"}},
 "3": {"class_type": "EmptyImage", "inputs": {"width": ["9", 0], "height": 8, "batch_size": 1, "color": 7}, "_meta": {"title": "Input: width"}},
 "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}, "_meta": {"title": "Input: size"}},
 "9": {"class_type": "PrimitiveInt", "inputs": {"value": 8}}
}`)
	params, made := discover(wf, loadInfo(t), "")
	require.Equal(t, []string{
		"color", "Width",
		"width_height", "width_batch_size", "width_color",
		"size_width", "size_height", "size_batch_size",
	}, names(params))
	p := paramsByName(t, params)
	require.Equal(t, []string{"1.inputs.color"}, p["color"].Targets, "the title names the input: it alone is the parameter")
	require.Equal(t, TypeInteger, p["color"].Type)
	require.Equal(t, json.Number("16777215"), p["color"].ExactMaximum(), "typed by the real object_info")
	require.Equal(t, []string{"2.inputs.width"}, p["Width"].Targets, "the name matches ignoring case, and keeps the title's spelling")
	require.Equal(t, []string{"3.inputs.height"}, p["width_height"].Targets, "the named input is a link: every constant input is a parameter")

	require.Equal(t, []MadeName{
		{Param: "width_height", Node: "3", Input: "height", Title: "Input: width"},
		{Param: "width_batch_size", Node: "3", Input: "batch_size", Title: "Input: width"},
		{Param: "width_color", Node: "3", Input: "color", Title: "Input: width"},
		{Param: "size_width", Node: "4", Input: "width", Title: "Input: size"},
		{Param: "size_height", Node: "4", Input: "height", Title: "Input: size"},
		{Param: "size_batch_size", Node: "4", Input: "batch_size", Title: "Input: size"},
	}, made, "the names no title gives by itself")

	tmpl, err := compile(Definition{Name: "x"}, wf, loadInfo(t))
	require.NoError(t, err)
	require.Equal(t, made, tmpl.ParamsMade, "the template carries them to the registration response")
	tmpl, err = compile(Definition{Name: "x", Params: []ParamSpec{{Name: "c", Targets: []string{"1.inputs.color"}}}}, wf, loadInfo(t))
	require.NoError(t, err)
	require.Empty(t, tmpl.ParamsMade, "declared parameters are named by the user")
}

func TestDiscoverTitleNames(t *testing.T) {
	t.Parallel()
	wf := parseWF(t, `{
 "1": {"class_type": "PrimitiveInt", "inputs": {"value": 3}, "_meta": {"title": "Input: Batch Count!"}},
 "2": {"class_type": "PrimitiveString", "inputs": {"value": "x"}, "_meta": {"title": "Input: Batch Count!"}},
 "3": {"class_type": "Custom", "inputs": {"on": true, "ratio": 0.5, "list": {"__value__": [1]}}, "_meta": {"title": "Input:  "}}
}`)
	p := paramsByName(t, Discover(wf, nil, ""))
	require.Equal(t, TypeInteger, p["Batch_Count"].Type)
	require.Equal(t, TypeString, p["Batch_Count_2"].Type, "same name, other type: suffixed with the node id")
	require.Equal(t, TypeBoolean, p["custom_on"].Type, "an empty name falls back to the class")
	require.Equal(t, TypeNumber, p["custom_ratio"].Type)
	require.Len(t, p, 4, "list values are no parameters")
}

func TestDiscoverNamesAreUnique(t *testing.T) {
	t.Parallel()
	// "Input: a" with inputs b and c gives a_b and a_c, which collide with the nodes
	// titled "Input: a_b"; a string and an integer titled the same are kept apart.
	wf := parseWF(t, `{
 "1": {"class_type": "X", "inputs": {"b": 1, "c": 2}, "_meta": {"title": "Input: a"}},
 "2": {"class_type": "X", "inputs": {"v": "s"}, "_meta": {"title": "Input: a_b"}},
 "3": {"class_type": "X", "inputs": {"v": true}, "_meta": {"title": "Input: a_b"}},
 "4": {"class_type": "X", "inputs": {"v": 1.5}, "_meta": {"title": "Input: a_b"}}
}`)
	params := Discover(wf, nil, "")
	require.Len(t, paramsByName(t, params), len(params))
	require.Equal(t, []string{"a_b", "a_c", "a_b_2", "a_b_3", "a_b_4"}, names(params))
	_, made := discover(wf, nil, "")
	require.Equal(t, []string{"a_b", "a_c", "a_b_2", "a_b_3", "a_b_4"}, madeNames(made), "suffixed names are made names too")
	_, err := compile(Definition{Name: "x"}, wf, nil)
	require.NoError(t, err)

	require.Equal(t, []string{"x", "x_3", "x_2", "x_4"}, names(uniqueNames([]Param{{Name: "x"}, {Name: "x"}, {Name: "x_2"}, {Name: "x"}})))
}

func madeNames(made []MadeName) []string {
	out := make([]string, 0, len(made))
	for _, m := range made {
		out = append(out, m.Param)
	}
	return out
}
