package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/job"
)

// fuzzTemplate has a parameter of every type, with bounds and choices.
func fuzzTemplate(tb testing.TB) *Template {
	wf := loadWorkflow(tb, "default_embedding.api.json")
	wf["20"] = &comfy.Node{ClassType: "SaveAnimatedWEBP", Inputs: map[string]any{
		"images": []any{"8", json.Number("0")}, "filename_prefix": "anim", "fps": json.Number("6.0"),
		"lossless": false, "quality": json.Number("80"), "method": "default"}}
	tmpl, err := compile(Definition{Name: "fuzz", Params: []ParamSpec{
		{Name: "prompt", Targets: []string{"6.inputs.text"}, Required: ptrBool(true)},
		{Name: "seed", Targets: []string{"KSampler.inputs.seed"}},
		{Name: "cfg", Targets: []string{"3.inputs.cfg"}},
		{Name: "sampler", Targets: []string{"3.inputs.sampler_name"}},
		{Name: "lossless", Targets: []string{"SaveAnimatedWEBP.inputs.lossless"}},
		{Name: "size", Targets: []string{"5.inputs.width", "5.inputs.height"}},
		{Name: "photo", Targets: []string{"4.inputs.ckpt_name"}, Type: TypeImage},
	}}, wf, loadInfo(tb))
	if err != nil {
		tb.Fatal(err)
	}
	if p, _ := tmpl.Param("lossless"); p.Type != TypeBoolean {
		tb.Fatalf("lossless is %s", p.Type)
	}
	return tmpl
}

// FuzzApply submits random parameter objects: Apply never panics, never changes the
// template, and either fails with invalid_params listing violations or returns a
// workflow that encodes and parses again.
func FuzzApply(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"prompt": "a fox", "seed": 18446744073709551615, "cfg": 7.5, "sampler": "euler", "lossless": true, "size": 1024}`,
		`{"prompt": 1, "seed": 18446744073709551616, "cfg": 1e400, "sampler": "x", "lossless": "yes", "size": 7.5}`,
		`{"seed": -1e-400, "cfg": -0, "size": 1e2, "photo": {"url": "x"}, "other": null}`,
		`{"prompt": "", "seed": 123456789012345678901234567890e-10, "size": [1], "cfg": {"a": 1}}`,
		`{"prompt": "x", "seed": 1.00000000000000000000000000000000001, "size": 16384.0000}`,
		`"not an object"`,
	} {
		f.Add([]byte(seed))
	}
	tmpl := fuzzTemplate(f)
	before, err := json.Marshal(tmpl)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var params map[string]any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if dec.Decode(&params) != nil {
			// Not an object: try the raw text as the value of every parameter.
			params = map[string]any{}
			for _, p := range tmpl.Params {
				params[p.Name] = string(data)
			}
		}
		// Also as plain float64s, as encoding/json gives them without UseNumber.
		var floats map[string]any
		_ = json.Unmarshal(data, &floats)
		for _, ps := range []map[string]any{params, floats} {
			wf, err := tmpl.Apply(ps)
			if err != nil {
				var se *job.SpecError
				if !errors.As(err, &se) || se.Code != CodeInvalidParams {
					t.Fatalf("error is not invalid_params: %v", err)
				}
				if v, ok := se.Details.([]Violation); !ok || len(v) == 0 {
					t.Fatalf("no violations listed: %#v", se.Details)
				}
				continue
			}
			out, err := json.Marshal(wf)
			if err != nil {
				t.Fatalf("applied workflow does not encode: %v", err)
			}
			if _, err := comfy.ParseWorkflow(out); err != nil {
				t.Fatalf("applied workflow does not parse: %v\n%s", err, out)
			}
		}
		after, err := json.Marshal(tmpl)
		if err != nil || !bytes.Equal(before, after) {
			t.Fatalf("Apply changed the template")
		}
	})
}

// FuzzCompile registers random API-format workflows (without Redis): discovery never
// panics and every discovered target is a resolved node-id path whose node exists.
func FuzzCompile(f *testing.F) {
	for _, name := range []string{"default_embedding.api.json", "loadimage_img2img.api.json", "bypass_multi_output_ltxv.api.json"} {
		f.Add(readFixture(f, name), "")
	}
	f.Add([]byte(titledWorkflow), "Input: ")
	f.Add([]byte(`{"1": {"class_type": "KSampler", "inputs": {"positive": ["1", 0], "seed": "x"}, "_meta": {"title": "Input: "}}}`), "")
	info := loadInfo(f)
	f.Fuzz(func(t *testing.T, data []byte, prefix string) {
		wf, err := comfy.ParseWorkflow(data)
		if err != nil || wf.Validate() != nil {
			return
		}
		for _, oi := range []comfy.ObjectInfo{info, nil} {
			tmpl, err := compile(Definition{Name: "fuzz", Workflow: data, TitlePrefix: prefix}, wf, oi)
			if err != nil {
				// Discovered parameters always make a valid template.
				t.Fatalf("discovery gave an invalid template: %v", err)
			}
			for _, p := range tmpl.Params {
				if !paramNameRE.MatchString(p.Name) || !validType(p.Type) || len(p.Targets) == 0 {
					t.Fatalf("bad parameter %+v", p)
				}
				for _, target := range p.Targets {
					id, _, err := comfy.SplitPath(target)
					if err != nil || wf[id] == nil {
						t.Fatalf("target %q of %s does not name a node id", target, p.Name)
					}
				}
			}
			_, _ = tmpl.Apply(nil)
			_ = tmpl.JSONSchema()
			_ = tmpl.ImagesSchema()
			if _, err := json.Marshal(tmpl); err != nil {
				t.Fatalf("template does not encode: %v", err)
			}
		}
	})
}
