package validate_test

import (
	"errors"
	"fmt"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/validate"
)

// A set override that makes SaveImage read its own output is refused before the
// prompt is queued, with the errors ComfyUI would have given.
func ExamplePrompt() {
	wf, _ := comfy.ParseWorkflow([]byte(`{
	  "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
	  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}`))
	_ = wf.Set("2.inputs.images", comfy.Link{NodeID: "2", Output: 0})

	err := validate.Prompt(wf, nil, validate.Options{}) // nil: structure only
	var ve *comfy.ValidationError
	if errors.As(err, &ve) {
		for _, e := range ve.NodeErrors["2"].Errors {
			fmt.Println(e.Type+":", e.Details)
		}
	}
	// Output:
	// dependency_cycle: 2 (SaveImage) -> 2 (SaveImage)
}
