package template

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
)

// txt2img compiles the default_embedding workflow with discovered parameters plus the
// explicit ones the tests need.
func txt2img(tb testing.TB, specs ...ParamSpec) *Template {
	tb.Helper()
	wf := loadWorkflow(tb, "default_embedding.api.json")
	def := Definition{Name: "txt2img", Params: specs}
	tmpl, err := compile(def, wf, loadInfo(tb))
	require.NoError(tb, err)
	return tmpl
}

func asSpecError(tb testing.TB, err error) *job.SpecError {
	tb.Helper()
	var se *job.SpecError
	require.ErrorAs(tb, err, &se)
	require.ErrorIs(tb, err, job.ErrInvalidSpec)
	return se
}

func TestApplySetsTargetsExactly(t *testing.T) {
	t.Parallel()
	tmpl := txt2img(t)
	before, err := json.Marshal(tmpl)
	require.NoError(t, err)

	wf, err := tmpl.Apply(map[string]any{
		"prompt": "a red fox",
		"seed":   json.Number("18446744073709551615"),
		"steps":  30,         // a Go int
		"cfg":    6.5,        // a Go float64
		"width":  1024.0,     // integral float for an integer
		"height": num("5e2"), // integral in exponent form
	})
	require.NoError(t, err)
	require.Equal(t, "a red fox", wf["6"].Inputs["text"])
	require.Equal(t, "bad hands", wf["7"].Inputs["text"], "missing optional params keep their default")
	require.Equal(t, num("18446744073709551615"), wf["3"].Inputs["seed"])
	require.Equal(t, num("30"), wf["3"].Inputs["steps"])
	require.Equal(t, num("6.5"), wf["3"].Inputs["cfg"])
	require.Equal(t, num("1024"), wf["5"].Inputs["width"])
	require.Equal(t, num("500"), wf["5"].Inputs["height"])

	data, err := json.Marshal(wf)
	require.NoError(t, err)
	require.Contains(t, string(data), `"seed":18446744073709551615`)

	after, err := json.Marshal(tmpl)
	require.NoError(t, err)
	require.JSONEq(t, string(before), string(after), "Apply never changes the template")

	// No params at all: the workflow as registered.
	wf, err = tmpl.Apply(nil)
	require.NoError(t, err)
	require.Equal(t, num("193694018275622"), wf["3"].Inputs["seed"])
}

func TestApplyCollectsEveryViolation(t *testing.T) {
	t.Parallel()
	tmpl := txt2img(t)
	_, err := tmpl.Apply(map[string]any{
		"prompt":  42,
		"seed":    num("18446744073709551616"),
		"steps":   0,
		"cfg":     101.5,
		"width":   17.5,
		"bogus":   true,
		"height":  nil,
		"unknown": "x",
	})
	se := asSpecError(t, err)
	require.Equal(t, CodeInvalidParams, se.Code)
	require.Equal(t, "params", se.Field)
	v, ok := se.Details.([]Violation)
	require.True(t, ok, "details are []Violation, got %T", se.Details)
	got := map[string]string{}
	var order []string
	for _, x := range v {
		got[x.Param] = x.Message
		order = append(order, x.Param)
	}
	require.Equal(t, []string{"bogus", "cfg", "height", "prompt", "seed", "steps", "unknown", "width"}, order)
	require.Equal(t, "must be a string, not the number 42", got["prompt"])
	require.Equal(t, "18446744073709551616 is above the maximum 18446744073709551615", got["seed"])
	require.Equal(t, "0 is below the minimum 1", got["steps"])
	require.Equal(t, "101.5 is above the maximum 100.0", got["cfg"])
	require.Equal(t, "must be an integer, not 17.5", got["width"])
	require.Equal(t, "must be an integer, not null", got["height"])
	require.Contains(t, got["bogus"], "unknown parameter (known: batch_size, cfg, height, negative_prompt, prompt, seed, steps, width)")
	require.Regexp(t, `^8 problems: bogus: unknown parameter .*; cfg: 101.5 is above the maximum 100\.0; height: `, se.Message)
}

func TestApplyExplicitParams(t *testing.T) {
	t.Parallel()
	yes := true
	tmpl := txt2img(t,
		ParamSpec{Name: "subject", Targets: []string{"6.inputs.text"}, Required: &yes},
		ParamSpec{Name: "sampler", Targets: []string{"KSampler.inputs.sampler_name"}},
		ParamSpec{Name: "scheduler", Targets: []string{"3.inputs.scheduler"}, Enum: []any{"normal", "karras"}},
		ParamSpec{Name: "both_texts", Targets: []string{"6.inputs.text", "7.inputs.text"}, Default: "shared"},
		ParamSpec{Name: "denoise", Targets: []string{"KSampler.inputs.denoise"}, Minimum: ptr(0.5)},
		ParamSpec{Name: "image", Targets: []string{"4.inputs.ckpt_name"}, Type: TypeImage},
	)
	p := paramsByName(t, tmpl.Params)
	require.True(t, p["subject"].Required)
	require.Nil(t, p["subject"].Default)
	require.Equal(t, []string{"3.inputs.sampler_name"}, p["sampler"].Targets, "class selector resolved to the id")
	require.Contains(t, p["sampler"].Enum, "uni_pc_bh2")
	require.Equal(t, []any{"normal", "karras"}, p["scheduler"].Enum)
	require.Equal(t, 0.5, *p["denoise"].Minimum)
	require.Equal(t, 1.0, *p["denoise"].Maximum, "the bound not given comes from object_info")

	_, err := tmpl.Apply(map[string]any{"sampler": "nope", "scheduler": "simple", "denoise": 0.1, "image": "x.png"})
	v := asSpecError(t, err).Details.([]Violation)
	require.Len(t, v, 5)
	require.Equal(t, Violation{Param: "denoise", Message: "0.1 is below the minimum 0.5"}, v[0])
	require.Contains(t, v[1].Message, "is an image parameter: give it in images")
	require.Contains(t, v[2].Message, `must be one of "euler", "euler_cfg_pp"`)
	require.Contains(t, v[2].Message, "choices)")
	require.Equal(t, Violation{Param: "scheduler", Message: `must be one of "normal", "karras"`}, v[3])
	require.Equal(t, Violation{Param: "subject", Message: "is required"}, v[4])

	wf, err := tmpl.Apply(map[string]any{"subject": "a fox", "sampler": "euler"})
	require.NoError(t, err)
	// both_texts' default is applied after subject (declaration order).
	require.Equal(t, "shared", wf["6"].Inputs["text"])
	require.Equal(t, "shared", wf["7"].Inputs["text"])
	require.Equal(t, "euler", wf["3"].Inputs["sampler_name"])
	require.Equal(t, map[string][]string{"image": {"4.inputs.ckpt_name"}}, tmpl.ImageTargets())
}

func ptr(f float64) *float64 { return &f }

func TestCompileRejectsBadParamSpecs(t *testing.T) {
	t.Parallel()
	wf := loadWorkflow(t, "default_embedding.api.json")
	for name, spec := range map[string]ParamSpec{
		"ambiguous class":  {Name: "text", Targets: []string{"CLIPTextEncode.inputs.text"}},
		"no such node":     {Name: "x", Targets: []string{"99.inputs.text"}},
		"bad path":         {Name: "x", Targets: []string{"3.seed"}},
		"link":             {Name: "model", Targets: []string{"3.inputs.model"}},
		"no targets":       {Name: "x"},
		"bad name":         {Name: "a b", Targets: []string{"3.inputs.seed"}},
		"bad type":         {Name: "x", Targets: []string{"3.inputs.seed"}, Type: "float"},
		"bad default":      {Name: "x", Targets: []string{"3.inputs.steps"}, Default: "many"},
		"default too big":  {Name: "x", Targets: []string{"3.inputs.steps"}, Default: 10001},
		"min above max":    {Name: "x", Targets: []string{"3.inputs.steps"}, Minimum: ptr(5), Maximum: ptr(4)},
		"unknown input":    {Name: "x", Targets: []string{"3.inputs.nope"}},
		"twice":            {Name: "x", Targets: []string{"3.inputs.seed", "KSampler.inputs.seed"}},
		"enum not allowed": {Name: "x", Targets: []string{"3.inputs.steps"}, Enum: []any{"a"}},
	} {
		_, err := compile(Definition{Name: "t", Params: []ParamSpec{spec}}, wf, loadInfo(t))
		se := asSpecError(t, err)
		require.Equal(t, CodeInvalidTemplate, se.Code, name)
		require.Contains(t, se.Field, "params", name)
		t.Logf("%s: %v", name, err)
	}
	_, err := compile(Definition{Name: "t", Params: []ParamSpec{
		{Name: "x", Targets: []string{"3.inputs.seed"}}, {Name: "x", Targets: []string{"3.inputs.steps"}},
	}}, wf, loadInfo(t))
	require.ErrorContains(t, err, "declared twice")
}

func TestJSONSchema(t *testing.T) {
	t.Parallel()
	tmpl := txt2img(t, ParamSpec{Name: "prompt", Targets: []string{"6.inputs.text"}, Required: ptrBool(true)},
		ParamSpec{Name: "seed", Targets: []string{"3.inputs.seed"}},
		ParamSpec{Name: "sampler", Targets: []string{"3.inputs.sampler_name"}},
		ParamSpec{Name: "photo", Targets: []string{"4.inputs.ckpt_name"}, Type: TypeImage})
	tmpl.Description = "text to image"
	schema := tmpl.JSONSchema()
	data, err := json.Marshal(schema)
	require.NoError(t, err)
	require.Contains(t, string(data), `"maximum":18446744073709551615`, "bounds are exact in the schema")

	// Structure of a JSON Schema object schema.
	var s struct {
		Type                 string                    `json:"type"`
		Properties           map[string]map[string]any `json:"properties"`
		Required             []string                  `json:"required"`
		AdditionalProperties *bool                     `json:"additionalProperties"`
		Description          string                    `json:"description"`
	}
	require.NoError(t, json.Unmarshal(data, &s))
	require.Equal(t, "object", s.Type)
	require.Equal(t, "text to image", s.Description)
	require.NotNil(t, s.AdditionalProperties)
	require.False(t, *s.AdditionalProperties)
	require.Equal(t, []string{"prompt"}, s.Required)
	require.Len(t, s.Properties, 3, "image parameters are not in params")
	require.Equal(t, "string", s.Properties["prompt"]["type"])
	require.Equal(t, true, s.Properties["prompt"]["x-multiline"])
	require.Equal(t, "integer", s.Properties["seed"]["type"])
	require.Equal(t, 193694018275622.0, s.Properties["seed"]["default"])
	require.Equal(t, 0.0, s.Properties["seed"]["minimum"])
	require.Contains(t, s.Properties["sampler"]["enum"], "euler")
	for name, p := range s.Properties {
		for k := range p {
			require.Contains(t, []string{"type", "default", "minimum", "maximum", "enum", "description", "x-multiline"}, k, name)
		}
		require.Contains(t, []any{"string", "integer", "number", "boolean"}, p["type"])
	}
	for _, r := range s.Required {
		require.Contains(t, s.Properties, r)
	}

	images := tmpl.ImagesSchema()
	data, err = json.Marshal(images)
	require.NoError(t, err)
	var is struct {
		Type       string `json:"type"`
		Properties map[string]struct {
			Type       string         `json:"type"`
			Properties map[string]any `json:"properties"`
			OneOf      []any          `json:"oneOf"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(data, &is))
	require.Equal(t, "object", is.Type)
	require.Len(t, is.Properties, 1)
	require.Equal(t, "object", is.Properties["photo"].Type)
	require.Len(t, is.Properties["photo"].OneOf, 3)
	for _, k := range []string{"url", "base64", "key", "filename"} {
		require.Contains(t, is.Properties["photo"].Properties, k)
	}

	// The template round-trips through JSON with its schema unchanged.
	raw, err := json.Marshal(tmpl)
	require.NoError(t, err)
	var back Template
	require.NoError(t, json.Unmarshal(raw, &back))
	again, err := json.Marshal(back.JSONSchema())
	require.NoError(t, err)
	first, err := json.Marshal(schema)
	require.NoError(t, err)
	require.JSONEq(t, string(first), string(again))
	require.Equal(t, num("18446744073709551615"), back.Params[1].ExactMaximum())
	require.Equal(t, num("193694018275622"), back.Params[1].Default)

	// Every default satisfies the schema's own constraints: Apply accepts it.
	params := map[string]any{}
	for name, p := range s.Properties {
		if d, ok := p["default"]; ok {
			params[name] = d
		}
	}
	params["prompt"] = "x"
	_, err = back.Apply(params)
	require.NoError(t, err)
}

func ptrBool(b bool) *bool { return &b }

func TestParamJSONKeepsExactBounds(t *testing.T) {
	t.Parallel()
	var p Param
	require.NoError(t, json.Unmarshal([]byte(`{"name":"seed","targets":["3.inputs.seed"],"type":"integer","default":18446744073709551615,"minimum":0,"maximum":18446744073709551615}`), &p))
	require.Equal(t, num("18446744073709551615"), p.Default)
	require.Equal(t, 1.8446744073709552e19, *p.Maximum)
	out, err := json.Marshal(p)
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"seed","targets":["3.inputs.seed"],"type":"integer","default":18446744073709551615,"minimum":0,"maximum":18446744073709551615}`, string(out))
	require.Contains(t, string(out), `"maximum":18446744073709551615`)

	// Changing the float drops the stale exact text.
	*p.Maximum = 10
	require.Equal(t, num("10"), p.ExactMaximum())
	_, msg := p.check(11)
	require.Equal(t, "11 is above the maximum 10", msg)

	var spec ParamSpec
	require.NoError(t, json.Unmarshal([]byte(`{"name":"seed","targets":["KSampler.inputs.seed"],"maximum":18446744073709551614,"default":5}`), &spec))
	out, err = json.Marshal(spec)
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"seed","targets":["KSampler.inputs.seed"],"maximum":18446744073709551614,"default":5}`, string(out))
	tmpl := txt2img(t, spec)
	_, err = tmpl.Apply(map[string]any{"seed": num("18446744073709551615")})
	require.ErrorContains(t, err, "above the maximum 18446744073709551614")

	require.Error(t, json.Unmarshal([]byte(`{"name":"x","maximum":"big"}`), &p))
}
