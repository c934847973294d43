package validate_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/validate"
	"github.com/comfyq/comfyq/internal/fixtures"
)

// FuzzPrompt validates arbitrary API-format prompts against the object_info of
// ComfyUI 0.3.64 and without it: never a panic; the answer is nil, a *LimitError or a
// *comfy.ValidationError in ComfyUI's shape whose node errors name nodes of the
// prompt; the same prompt gets the same answer. The real workflows and the shapes of
// the unit tests seed it.
func FuzzPrompt(f *testing.F) {
	files, _ := filepath.Glob(fixtures.Path(fixtures.Workflows, "*.api.json"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		base,
		strings.Replace(base, `["1", 0]`, `["2", 0]`, 1),
		strings.Replace(base, `["1", 0]`, `["1", 7]`, 1),
		strings.Replace(base, `["1", 0]`, `[1, 0]`, 1),
		strings.Replace(base, `["1", 0]`, `["9", -1]`, 1),
		strings.Replace(base, `"EmptyImage"`, `"ЕmptyImage"`, 1),
		strings.Replace(base, `"width": 64`, `"width": 1e999`, 1),
		strings.Replace(base, `"width": 64`, `"width": {"__value__": [1, 2]}`, 1),
		strings.Replace(base, `"width": 64`, `"width": "-0x10"`, 1),
		`{}`, `{"1": null}`, `{"1": {"class_type": "SaveImage"}}`,
		`{"1": {"class_type": "KSampler", "inputs": {"seed": "18446744073709551616", "cfg": "nan", "steps": true}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}`,
	} {
		f.Add([]byte(s))
	}
	info := objectInfo(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		wf, err := comfy.ParseWorkflow(data)
		if err != nil {
			return
		}
		for _, in := range []comfy.ObjectInfo{nil, info} {
			opts := validate.Options{Limits: validate.Limits{MaxNodes: 200, MaxStringBytes: 4096}}
			first := check(t, wf, validate.Prompt(wf, in, opts))
			second := check(t, wf, validate.Prompt(wf, in, opts))
			if !bytes.Equal(first, second) {
				t.Fatalf("two answers to one prompt:\n%s\n%s", first, second)
			}
		}
	})
}

// check verifies one answer and returns its JSON.
func check(t *testing.T, wf comfy.Workflow, err error) []byte {
	t.Helper()
	if err == nil {
		return nil
	}
	var le *validate.LimitError
	if errors.As(err, &le) {
		if le.Max <= 0 || le.Error() == "" {
			t.Fatalf("limit error without its limit: %+v", le)
		}
		return []byte(le.Error())
	}
	var ve *comfy.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("unexpected error type %T: %v", err, err)
	}
	if ve.Err.Type == "" || ve.Err.Message == "" {
		t.Fatalf("no top-level error: %+v", ve)
	}
	for id, ne := range ve.NodeErrors {
		if _, ok := wf[id]; !ok {
			t.Fatalf("node_errors name node %q, which is not in the prompt", id)
		}
		if len(ne.Errors) == 0 || ne.DependentOutputs == nil {
			t.Fatalf("node %q: empty errors or null dependent_outputs: %+v", id, ne)
		}
		for _, e := range ne.Errors {
			if e.Type == "" || e.Message == "" || e.ExtraInfo == nil {
				t.Fatalf("node %q: incomplete error %+v", id, e)
			}
		}
	}
	if validate.Summary(ve) == "" {
		t.Fatal("empty summary")
	}
	data, jerr := json.Marshal(ve)
	if jerr != nil {
		t.Fatalf("the error does not encode: %v", jerr)
	}
	return data
}
