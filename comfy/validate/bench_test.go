package validate_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/validate"
	"github.com/comfyq/comfyq/internal/fixtures"
)

// BenchmarkPrompt measures validation beside parsing the same prompt, which every
// submission does anyway: the ratio is what validation adds.
func BenchmarkPrompt(b *testing.B) {
	info := objectInfo(b)
	chain := func(n int) []byte {
		var s strings.Builder
		s.WriteString(`{"0": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}`)
		for i := 1; i < n; i++ {
			fmt.Fprintf(&s, `, "%d": {"class_type": "ImageInvert", "inputs": {"image": ["%d", 0]}}`, i, i-1)
		}
		fmt.Fprintf(&s, `, "out": {"class_type": "SaveImage", "inputs": {"images": ["%d", 0], "filename_prefix": "x"}}}`, n-1)
		return []byte(s.String())
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"sdxl_simple", fixtures.ReadWorkflow(b, "primitive_sdxl_simple.api.json")},
		{"chain_5000", chain(4999)},
	} {
		b.Run(c.name+"/parse", func(b *testing.B) {
			for b.Loop() {
				if _, err := comfy.ParseWorkflow(c.data); err != nil {
					b.Fatal(err)
				}
			}
		})
		wf, err := comfy.ParseWorkflow(c.data)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/validate", func(b *testing.B) {
			for b.Loop() {
				if err := validate.Prompt(wf, info, validate.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
