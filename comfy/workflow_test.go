package comfy

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/fixtures"
)

func fixtureDir() string { return fixtures.Dir() }

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir(), name))
	require.NoError(t, err, "fixtures live in the repository's testdata directory")
	return b
}

func TestParseWorkflowFixtures(t *testing.T) {
	t.Parallel()
	api, globErr := filepath.Glob(filepath.Join(fixtureDir(), "workflows", "*.api.json"))
	require.NoError(t, globErr)
	require.NotEmpty(t, api)
	for _, path := range api {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			wf, err := ParseWorkflow(data)
			require.NoError(t, err)
			require.NoError(t, wf.Validate())
			require.False(t, IsUIFormat(data))
			out, err := json.Marshal(wf)
			require.NoError(t, err)
			require.JSONEq(t, string(data), string(out), "round trip keeps every value")
		})
	}
	ui, err := filepath.Glob(filepath.Join(fixtureDir(), "workflows", "*.ui.json"))
	require.NoError(t, err)
	for _, path := range ui {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		require.True(t, IsUIFormat(data), path)
		_, err = ParseWorkflow(data)
		require.ErrorIs(t, err, ErrNotWorkflow, path)
		require.ErrorContains(t, err, "UI-format")
	}
}

func TestWorkflowPreservesNumbersAndUnknownFields(t *testing.T) {
	t.Parallel()
	in := `{"3":{"class_type":"KSampler","inputs":{"seed":18446744073709551615,"cfg":8.0,"denoise":0.8700000000000001,"model":["4",0],"list":{"__value__":[1,2]}},"_meta":{"title":"Sampler"},"is_changed":["x"]},
	        "4":{"class_type":"CheckpointLoaderSimple","inputs":{"ckpt_name":"a.safetensors"}}}`
	wf, err := ParseWorkflow([]byte(in))
	require.NoError(t, err)
	require.Equal(t, json.Number("18446744073709551615"), wf["3"].Inputs["seed"])
	require.Equal(t, "Sampler", wf["3"].Title())
	require.Contains(t, wf["3"].Extra, "is_changed")
	out, err := json.Marshal(wf)
	require.NoError(t, err)
	require.Contains(t, string(out), `"seed":18446744073709551615`)
	require.Contains(t, string(out), `"cfg":8.0`)
	require.Contains(t, string(out), `"denoise":0.8700000000000001`)
	require.JSONEq(t, in, string(out))
	require.Equal(t, map[string]Link{"model": {NodeID: "4", Output: 0}}, wf["3"].Links())
}

func TestParseWorkflowRejects(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{``, `[]`, `"x"`, `{"1":[]}`, `{"1":{"class_type":3}}`, `{"1":{"inputs":[]}}`, `{} {}`, `{"nodes":[],"links":[]}`} {
		_, err := ParseWorkflow([]byte(bad))
		require.ErrorIs(t, err, ErrNotWorkflow, bad)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	parse := func(s string) Workflow {
		wf, err := ParseWorkflow([]byte(s))
		require.NoError(t, err)
		return wf
	}
	var we *WorkflowError
	err := Workflow{}.Validate()
	require.ErrorAs(t, err, &we)
	require.ErrorIs(t, err, ErrNotWorkflow)

	err = parse(`{"1":{"class_type":"A","inputs":{"x":[2,0],"y":["9",0],"z":["1",-1]}},"2":{"inputs":{}}}`).Validate()
	require.ErrorAs(t, err, &we)
	var msgs []string
	for _, p := range we.Problems {
		msgs = append(msgs, p.NodeID+"/"+p.Input+": "+p.Message)
	}
	require.Equal(t, []string{
		`1/x: link uses a numeric node id; write ["2", 0]`,
		`1/y: links to node "9", which does not exist`,
		`1/z: link output index is negative`,
		`2/: missing class_type`,
	}, msgs)

	err = parse(`{"1":{"class_type":"A","inputs":{"a":["2",0]}},"2":{"class_type":"B","inputs":{"b":["1",0]}}}`).Validate()
	require.ErrorAs(t, err, &we)
	require.Contains(t, we.Error(), "dependency cycle")

	// ComfyUI treats every two-element list as a link; a list constant must be wrapped.
	require.Error(t, parse(`{"1":{"class_type":"A","inputs":{"size":[512,512]}}}`).Validate())
	require.NoError(t, parse(`{"1":{"class_type":"A","inputs":{"size":{"__value__":[512,512]},"xs":[1,2,3]}}}`).Validate())
	require.Error(t, Workflow{"1": nil}.Validate())
}

func TestSetGetResolve(t *testing.T) {
	t.Parallel()
	wf, err := ParseWorkflow([]byte(`{
	  "3":{"class_type":"KSampler","inputs":{"seed":1,"steps":20,"model":["4",0]}},
	  "6":{"class_type":"CLIPTextEncode","inputs":{"text":"a"},"_meta":{"title":"Input: prompt"}},
	  "7":{"class_type":"CLIPTextEncode","inputs":{"text":"b"}},
	  "12:5":{"class_type":"SaveImage","inputs":{"images":["3",0]}}}`))
	require.NoError(t, err)

	require.NoError(t, wf.Set("3.inputs.steps", 30))
	v, ok := wf.Get("KSampler.inputs.steps")
	require.True(t, ok)
	require.Equal(t, json.Number("30"), v)
	require.NoError(t, wf.Set("Input: prompt.inputs.text", "a red fox"))
	require.Equal(t, "a red fox", wf["6"].Inputs["text"])
	require.NoError(t, wf.Set("12:5.inputs.filename_prefix", "out"))
	require.NoError(t, wf.Set("3.inputs.seed", uint64(18446744073709551615)))
	b, err := json.Marshal(wf["3"])
	require.NoError(t, err)
	require.Contains(t, string(b), `"seed":18446744073709551615`)
	require.NoError(t, wf.Set("SaveImage.inputs.images", Link{NodeID: "7", Output: 0}))
	l, ok := AsLink(wf["12:5"].Inputs["images"])
	require.True(t, ok)
	require.Equal(t, Link{NodeID: "7", Output: 0}, l)

	require.ErrorIs(t, wf.Set("CLIPTextEncode.inputs.text", "x"), ErrAmbiguousNode)
	require.ErrorIs(t, wf.Set("99.inputs.x", 1), ErrNoSuchNode)
	require.ErrorIs(t, wf.Set("3.seed", 1), ErrBadPath)
	require.ErrorIs(t, wf.Set("3.inputs.", 1), ErrBadPath)
	_, ok = wf.Get("3.inputs.nope")
	require.False(t, ok)
	require.Equal(t, []string{"3", "6", "7", "12:5"}, wf.NodeIDs())
}

func TestRandomizeSeedsAndClone(t *testing.T) {
	t.Parallel()
	wf, err := ParseWorkflow([]byte(`{"3":{"class_type":"KSampler","inputs":{"seed":1,"model":["4",0]}},
	  "4":{"class_type":"KSamplerAdvanced","inputs":{"noise_seed":2}},
	  "5":{"class_type":"KSampler","inputs":{"seed":["9",0]}},"9":{"class_type":"PrimitiveInt","inputs":{"value":3}}}`))
	require.NoError(t, err)
	orig := wf.Clone()
	changed := wf.RandomizeSeeds(rand.New(rand.NewPCG(1, 2)))
	require.Equal(t, []string{"3.inputs.seed", "4.inputs.noise_seed"}, changed)
	require.NotEqual(t, json.Number("1"), wf["3"].Inputs["seed"])
	require.Equal(t, []any{"9", json.Number("0")}, wf["5"].Inputs["seed"], "linked seeds are left alone")
	require.Equal(t, json.Number("1"), orig["3"].Inputs["seed"], "the clone is independent")
	orig["3"].Inputs["model"].([]any)[0] = "x"
	require.Equal(t, "4", wf["3"].Inputs["model"].([]any)[0])
}

func TestObjectInfoFixture(t *testing.T) {
	t.Parallel()
	info, err := ParseObjectInfo(readFixture(t, fixtures.ObjectInfo))
	require.NoError(t, err)
	ks := info["KSampler"]
	require.NotNil(t, ks)
	seed, ok := ks.Spec("seed")
	require.True(t, ok)
	require.Equal(t, "INT", seed.Type)
	maxSeed, ok := seed.Number("max")
	require.True(t, ok)
	require.Equal(t, float64(18446744073709551615), maxSeed)
	require.Equal(t, json.Number("18446744073709551615"), seed.Options["max"], "bounds stay exact")
	sampler, ok := ks.Spec("sampler_name")
	require.True(t, ok)
	require.Equal(t, "COMBO", sampler.Type)
	require.Contains(t, sampler.Choices, "euler")
	require.True(t, sampler.IsWidget())
	model, _ := ks.Spec("model")
	require.False(t, model.IsWidget())
	var names []string
	for _, s := range ks.OrderedSpecs() {
		names = append(names, s.Name)
	}
	require.Equal(t, []string{"model", "seed", "steps", "cfg", "sampler_name", "scheduler", "positive", "negative", "latent_image", "denoise"}, names)
	require.True(t, info["SaveImage"].OutputNode)
	_, err = ParseObjectInfo([]byte(`[`))
	require.Error(t, err)
}

func TestWorkflowErrorMessage(t *testing.T) {
	t.Parallel()
	we := &WorkflowError{}
	for i := range 7 {
		we.Problems = append(we.Problems, Problem{NodeID: strings.Repeat("1", i+1), Message: "bad"})
	}
	require.Contains(t, we.Error(), "and 2 more")
	require.True(t, errors.Is(we, ErrNotWorkflow))
}

// Ids that are one number written two ways ("0" and "00") are ordered by their text:
// the order never depends on the map's, so neither does validation's first error
// (the fuzz input testdata/fuzz/FuzzPrompt/166d6d2bb1af5a98 of comfy/validate).
func TestNodeIDsOrderIsTotal(t *testing.T) {
	wf := Workflow{"00": {}, "1": {}, "0": {}, "+1": {}, "a": {}, "10": {}}
	for range 50 {
		require.Equal(t, []string{"0", "00", "+1", "1", "10", "a"}, wf.NodeIDs())
	}
	require.True(t, LessNodeID("0", "00"))
	require.False(t, LessNodeID("00", "0"))
	require.False(t, LessNodeID("1", "1"))
}
