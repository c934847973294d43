package template_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/template"
)

const exampleWorkflow = `{
 "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5.safetensors"}},
 "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
 "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
 "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
 "3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20, "cfg": 8.0, "sampler_name": "euler",
       "scheduler": "normal", "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
       "latent_image": ["5", 0]}},
 "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
 "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}}
}`

// Discover finds the parameters of a plain txt2img workflow by the sampler heuristic.
// Without object_info the types come from the workflow's values.
func ExampleDiscover() {
	wf, err := comfy.ParseWorkflow([]byte(exampleWorkflow))
	if err != nil {
		panic(err)
	}
	for _, p := range template.Discover(wf, nil, "") {
		fmt.Printf("%-16s %-8s %v default %v\n", p.Name, p.Type, p.Targets, p.Default)
	}
	// Output:
	// prompt           string   [6.inputs.text] default a cat
	// negative_prompt  string   [7.inputs.text] default blurry
	// seed             integer  [3.inputs.seed] default 42
	// steps            integer  [3.inputs.steps] default 20
	// cfg              number   [3.inputs.cfg] default 8.0
	// width            integer  [5.inputs.width] default 512
	// height           integer  [5.inputs.height] default 512
	// batch_size       integer  [5.inputs.batch_size] default 1
}

// Apply checks every parameter at once and reports all problems in one error.
func ExampleTemplate_Apply() {
	wf, _ := comfy.ParseWorkflow([]byte(exampleWorkflow))
	t := &template.Template{Name: "txt2img", Workflow: wf, Params: template.Discover(wf, nil, "")}

	out, err := t.Apply(map[string]any{"prompt": "a red fox", "seed": json.Number("18446744073709551615")})
	if err != nil {
		panic(err)
	}
	fmt.Println(out["6"].Inputs["text"], out["3"].Inputs["seed"])

	_, err = t.Apply(map[string]any{"prompt": 7, "steps": 2.5, "style": "noir"})
	var se *job.SpecError
	if errors.As(err, &se) {
		fmt.Println(se.Code)
		for _, v := range se.Details.([]template.Violation) {
			fmt.Printf("%s: %s\n", v.Param, v.Message)
		}
	}
	// Output:
	// a red fox 18446744073709551615
	// invalid_params
	// prompt: must be a string, not the number 7
	// steps: must be an integer, not 2.5
	// style: unknown parameter (known: batch_size, cfg, height, negative_prompt, prompt, seed, steps, width)
}

// JSONSchema describes the params object of a submission, ready for an OpenAPI 3.1
// document.
func ExampleTemplate_JSONSchema() {
	wf, _ := comfy.ParseWorkflow([]byte(exampleWorkflow))
	t := &template.Template{Name: "txt2img", Workflow: wf, Params: template.Discover(wf, nil, "")[2:3]}
	out, _ := json.MarshalIndent(t.JSONSchema(), "", "  ")
	fmt.Println(string(out))
	// Output:
	// {
	//   "additionalProperties": false,
	//   "properties": {
	//     "seed": {
	//       "default": 42,
	//       "description": "KSampler.seed of node 3",
	//       "type": "integer"
	//     }
	//   },
	//   "title": "txt2img parameters",
	//   "type": "object"
	// }
}
