package comfy

import (
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/fixtures"
)

// convFixtureDir is the repository's testdata directory.
var convFixtureDir = fixtures.Dir()

var convObjectInfo = sync.OnceValues(func() (ObjectInfo, error) {
	data, err := os.ReadFile(fixtures.Path(fixtures.ObjectInfo))
	if err != nil {
		return nil, err
	}
	return ParseObjectInfo(data)
})

func convLoadInfo(t testing.TB) ObjectInfo {
	t.Helper()
	info, err := convObjectInfo()
	require.NoError(t, err, "read the object_info fixture (expected at %s)", convFixtureDir)
	return info
}

// convFixtureFiles lists the UI-format fixtures: name → whether an API pair exists.
func convFixtureFiles(t testing.TB) map[string]bool {
	t.Helper()
	dir := filepath.Join(convFixtureDir, "workflows")
	matches, err := filepath.Glob(filepath.Join(dir, "*.ui.json"))
	require.NoError(t, err)
	require.NotEmpty(t, matches, "no *.ui.json fixtures in %s", dir)
	files := map[string]bool{}
	for _, m := range matches {
		name := strings.TrimSuffix(filepath.Base(m), ".ui.json")
		_, err := os.Stat(filepath.Join(dir, name+".api.json"))
		files[name] = err == nil
	}
	return files
}

func convReadFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(convFixtureDir, "workflows", name))
	require.NoError(t, err)
	return data
}

// convDeclared reports whether class declares input name in object_info.
func convDeclared(info ObjectInfo, class, name string) bool {
	ni := info[class]
	if ni == nil {
		return false
	}
	_, ok := ni.Spec(name)
	return ok
}

type convCompareMode struct {
	// skipUndeclared ignores expected inputs the class does not declare (old frontends
	// also serialized UI-only widgets such as LoadImage's "upload" button).
	skipUndeclared bool
	info           ObjectInfo
}

// convDiff compares two API workflows: node ids, class_type, inputs (links by target,
// numbers by value) and _meta.title where want has _meta. It returns one line per
// difference, each naming the node and input.
func convDiff(got, want Workflow, mode convCompareMode) []string {
	var diffs []string
	for _, id := range want.NodeIDs() {
		if _, ok := got[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("node %s (%s): missing from the conversion", id, want[id].ClassType))
		}
	}
	for _, id := range got.NodeIDs() {
		if _, ok := want[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("node %s (%s): not expected (inputs %s)", id, got[id].ClassType, convShow(got[id].Inputs)))
		}
	}
	for _, id := range want.NodeIDs() {
		w, g := want[id], got[id]
		if g == nil {
			continue
		}
		if w.ClassType != g.ClassType {
			diffs = append(diffs, fmt.Sprintf("node %s: class_type: expected %q, got %q", id, w.ClassType, g.ClassType))
			continue
		}
		names := map[string]bool{}
		for k := range w.Inputs {
			names[k] = true
		}
		for k := range g.Inputs {
			names[k] = true
		}
		sorted := make([]string, 0, len(names))
		for k := range names {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, name := range sorted {
			wv, inWant := w.Inputs[name]
			gv, inGot := g.Inputs[name]
			switch {
			case inWant && !inGot:
				if mode.skipUndeclared && !convDeclared(mode.info, w.ClassType, name) {
					continue
				}
				diffs = append(diffs, fmt.Sprintf("node %s (%s) input %q: expected %s, got nothing", id, w.ClassType, name, convShow(wv)))
			case !inWant && inGot:
				diffs = append(diffs, fmt.Sprintf("node %s (%s) input %q: expected nothing, got %s", id, w.ClassType, name, convShow(gv)))
			case !convEqual(wv, gv):
				diffs = append(diffs, fmt.Sprintf("node %s (%s) input %q: expected %s, got %s", id, w.ClassType, name, convShow(wv), convShow(gv)))
			}
		}
		if w.Meta != nil && w.Title() != g.Title() {
			diffs = append(diffs, fmt.Sprintf("node %s (%s) _meta.title: expected %q, got %q", id, w.ClassType, w.Title(), g.Title()))
		}
	}
	return diffs
}

func convShow(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	if len(b) > 120 {
		return string(b[:117]) + "..."
	}
	return string(b)
}

// convEqual compares JSON values, numbers by value (8 == 8.0), links by node id and slot.
func convEqual(a, b any) bool {
	if la, ok := AsLink(a); ok {
		lb, ok := AsLink(b)
		return ok && la == lb
	}
	if na, ok := convNumber(a); ok {
		nb, ok := convNumber(b)
		return ok && na.Cmp(nb) == 0
	}
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !convEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !convEqual(v, w) {
				return false
			}
		}
		return true
	}
	return a == b
}

func convNumber(v any) (*big.Float, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case float64:
		return big.NewFloat(x), true
	case int:
		return big.NewFloat(float64(x)), true
	default:
		return nil, false
	}
	f, _, err := big.ParseFloat(s, 10, 256, big.ToNearestEven)
	return f, err == nil
}

// convVersionDrift lists inputs that object_info 0.3.64 declares but that did not exist
// when a fixture's API file was queued: the conversion must give them their default.
// DualCFGGuider gained its required "style" combo after both group node examples were
// saved.
var convVersionDrift = map[string]map[string][]string{
	"groupnode_sdxl_edit":  {"37:7": {"style"}},
	"groupnode_hidream_e1": {"37:7": {"style"}},
}

// TestConvertUIFixturePairs converts every UI fixture that has an API pair (the prompt
// the frontend queued with it) and compares the two.
func TestConvertUIFixturePairs(t *testing.T) {
	t.Parallel()
	info := convLoadInfo(t)
	files := convFixtureFiles(t)
	names := make([]string, 0, len(files))
	for name, paired := range files {
		if paired {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	require.NotEmpty(t, names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := ConvertUI(convReadFixture(t, name+".ui.json"), info, nil)
			require.NoError(t, err)
			want, err := ParseWorkflow(convReadFixture(t, name+".api.json"))
			require.NoError(t, err)
			for _, id := range want.NodeIDs() {
				for in := range want[id].Inputs {
					if !convDeclared(info, want[id].ClassType, in) {
						t.Logf("node %s (%s) input %q: not declared by the class in object_info; ignored", id, want[id].ClassType, in)
					}
				}
			}
			for id, inputs := range convVersionDrift[name] {
				for _, in := range inputs {
					spec, ok := info[got[id].ClassType].Spec(in)
					require.True(t, ok, "node %s input %q: not in object_info", id, in)
					def, _ := uiWidgetDefault(spec)
					require.True(t, convEqual(def, got[id].Inputs[in]),
						"node %s input %q: a widget newer than the file must take its default %s, got %s", id, in, convShow(def), convShow(got[id].Inputs[in]))
					delete(got[id].Inputs, in)
				}
			}
			diffs := convDiff(got, want, convCompareMode{skipUndeclared: true, info: info})
			if len(diffs) > 0 {
				require.FailNow(t, fmt.Sprintf("%s: %d differences from %s.api.json", name, len(diffs), name), strings.Join(diffs, "\n"))
			}
			require.NoError(t, got.Validate())
		})
	}
}

// TestConvertUIFixturesWithoutPair converts the fixtures that have no API pair: they
// must convert, and every link must resolve.
func TestConvertUIFixturesWithoutPair(t *testing.T) {
	t.Parallel()
	info := convLoadInfo(t)
	for name, paired := range convFixtureFiles(t) {
		if paired {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := ConvertUI(convReadFixture(t, name+".ui.json"), info, nil)
			require.NoError(t, err)
			require.NoError(t, got.Validate())
			for _, id := range got.NodeIDs() {
				n := got[id]
				require.NotNil(t, info[n.ClassType], "node %s: class %q not in object_info", id, n.ClassType)
				require.NotEmpty(t, n.Title(), "node %s: no _meta.title", id)
			}
		})
	}
}

// convConvert converts a fixture and returns the result, failing the test on error.
func convConvert(t *testing.T, name string, opts *ConvertOptions) Workflow {
	t.Helper()
	wf, err := ConvertUI(convReadFixture(t, name), convLoadInfo(t), opts)
	require.NoError(t, err)
	require.NoError(t, wf.Validate())
	return wf
}

func convLinkOf(t *testing.T, wf Workflow, id, input string) Link {
	t.Helper()
	n := wf[id]
	require.NotNil(t, n, "node %s missing; have %v", id, wf.NodeIDs())
	l, ok := AsLink(n.Inputs[input])
	require.True(t, ok, "node %s input %q: expected a link, got %s", id, input, convShow(n.Inputs[input]))
	return l
}

func convRequireValue(t *testing.T, wf Workflow, id, input string, want any) {
	t.Helper()
	n := wf[id]
	require.NotNil(t, n, "node %s missing; have %v", id, wf.NodeIDs())
	got, ok := n.Inputs[input]
	require.True(t, ok, "node %s input %q missing; inputs %s", id, input, convShow(n.Inputs))
	require.True(t, convEqual(want, got), "node %s input %q: expected %s, got %s", id, input, convShow(want), convShow(got))
}

// The default graph saves its seed control as boolean true and leaves VAEDecode and
// SaveImage without widgets_values: SaveImage's prefix takes its default.
func TestConvertUIDefaultGraph(t *testing.T) {
	t.Parallel()
	wf := convConvert(t, "default_graph.ui.json", nil)
	require.ElementsMatch(t, []string{"3", "4", "5", "6", "7", "8", "9"}, wf.NodeIDs())
	convRequireValue(t, wf, "3", "steps", json.Number("20"))
	convRequireValue(t, wf, "3", "sampler_name", "euler")
	convRequireValue(t, wf, "3", "denoise", json.Number("1"))
	convRequireValue(t, wf, "9", "filename_prefix", "ComfyUI")
	require.Equal(t, Link{"4", 0}, convLinkOf(t, wf, "3", "model"))
	require.Equal(t, Link{"8", 0}, convLinkOf(t, wf, "9", "images"))
	require.Equal(t, "KSampler", wf["3"].Title())
	require.Equal(t, "Load Checkpoint", wf["4"].Title())
}

// A native (litegraph) reroute is visual only: the graph is the default one.
func TestConvertUINativeReroute(t *testing.T) {
	t.Parallel()
	wf := convConvert(t, "native_reroute_default.ui.json", nil)
	require.ElementsMatch(t, []string{"3", "4", "5", "6", "7", "8", "9"}, wf.NodeIDs())
	for id, in := range map[string]string{"3": "model", "6": "clip", "7": "clip", "8": "vae"} {
		require.Equal(t, "4", convLinkOf(t, wf, id, in).NodeID, "node %s input %s", id, in)
	}
	require.Equal(t, Link{"3", 0}, convLinkOf(t, wf, "8", "samples"))
	require.Equal(t, Link{"8", 0}, convLinkOf(t, wf, "9", "images"))
}

// Chained Reroutes resolve to the checkpoint loader; the fragment has no output node and
// one stale link id.
func TestConvertUILegacyReroutes(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"reroute_legacy_branching.ui.json", "reroute_legacy_floating.ui.json"} {
		wf := convConvert(t, name, nil)
		for _, id := range wf.FindByClass("VAEDecode") {
			if l, ok := AsLink(wf[id].Inputs["vae"]); ok {
				require.Equal(t, "CheckpointLoaderSimple", wf[l.NodeID].ClassType, "%s node %s", name, id)
			}
		}
		for _, id := range wf.NodeIDs() {
			require.NotEqual(t, "Reroute", wf[id].ClassType)
		}
	}
}

// Subgraph: inner ids "<instance>:<inner>", the outer PrimitiveStringMultiline feeds the
// prompt through subgraph input 0, unconnected inputs take the instance's widget values,
// the output reaches SaveImage through output node -20.
func TestConvertUISubgraph(t *testing.T) {
	t.Parallel()
	wf := convConvert(t, "subgraph_zimage.ui.json", nil)
	require.ElementsMatch(t, []string{"9", "58", "57:3", "57:8", "57:11", "57:13", "57:27", "57:28", "57:29", "57:30", "57:33"}, wf.NodeIDs())
	require.Equal(t, Link{"58", 0}, convLinkOf(t, wf, "57:27", "text"))
	require.Equal(t, Link{"57:8", 0}, convLinkOf(t, wf, "9", "images"))
	convRequireValue(t, wf, "57:13", "width", json.Number("1280"))
	convRequireValue(t, wf, "57:13", "height", json.Number("720"))
	convRequireValue(t, wf, "57:3", "seed", json.Number("0"))
	convRequireValue(t, wf, "57:3", "steps", json.Number("6"))
	require.Equal(t, Link{"57:11", 0}, convLinkOf(t, wf, "57:3", "model"))
	require.Equal(t, Link{"57:33", 0}, convLinkOf(t, wf, "57:3", "negative"))
	require.Equal(t, "Prompt", wf["58"].Title())
}

// Two definitions; the LoRA one has a Note inside and an input with a label.
func TestConvertUISubgraphTwoDefinitions(t *testing.T) {
	t.Parallel()
	wf := convConvert(t, "subgraph_zimage_two_defs.ui.json", nil)
	require.Nil(t, wf["59:36"], "the Note inside the subgraph is virtual")
	require.Equal(t, Link{"61", 0}, convLinkOf(t, wf, "59:27", "text"))
	require.Equal(t, Link{"58", 0}, convLinkOf(t, wf, "57:27", "text"))
	require.Equal(t, Link{"58", 0}, convLinkOf(t, wf, "61", "string_b"))
	convRequireValue(t, wf, "61", "string_a", "Pixel art style,")
	convRequireValue(t, wf, "59:35", "lora_name", "pixel_art_style_z_image_turbo.safetensors")
	convRequireValue(t, wf, "59:35", "strength_model", json.Number("1"))
	convRequireValue(t, wf, "59:3", "seed", json.Number("0"))
	convRequireValue(t, wf, "59:13", "width", json.Number("1024"))
	require.Equal(t, Link{"59:28", 0}, convLinkOf(t, wf, "59:35", "model"))
	require.Equal(t, Link{"59:35", 0}, convLinkOf(t, wf, "59:11", "model"))
	require.Equal(t, Link{"59:8", 0}, convLinkOf(t, wf, "60", "images"))
}

// Nested subgraphs: ids a:b:c, outputs resolved through two levels of -20 nodes.
func TestConvertUISubgraphNested(t *testing.T) {
	t.Parallel()
	wf := convConvert(t, "subgraph_nested.ui.json", nil)
	require.ElementsMatch(t, []string{"8", "9", "10:3", "10:6", "10:10:4", "10:10:5", "10:10:7"}, wf.NodeIDs())
	require.Equal(t, Link{"10:3", 0}, convLinkOf(t, wf, "8", "samples"))
	require.Equal(t, Link{"10:10:4", 2}, convLinkOf(t, wf, "8", "vae"))
	require.Equal(t, Link{"10:10:4", 0}, convLinkOf(t, wf, "10:3", "model"))
	require.Equal(t, Link{"10:10:7", 0}, convLinkOf(t, wf, "10:3", "negative"))
	require.Equal(t, Link{"10:10:5", 0}, convLinkOf(t, wf, "10:3", "latent_image"))
	require.Equal(t, Link{"10:10:4", 1}, convLinkOf(t, wf, "10:6", "clip"))
	convRequireValue(t, wf, "10:3", "seed", json.Number("32115495257102"))
}

func TestConvertUIDynamicPrompts(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		got := uiDynamicPrompt("a {red|green|{dark|light} blue} fox // comment\n/* block\n */with \\{braces\\}", r)
		require.Contains(t, []string{
			"a red fox \nwith {braces}", "a green fox \nwith {braces}",
			"a dark blue fox \nwith {braces}", "a light blue fox \nwith {braces}",
		}, got)
	}
	require.Equal(t, "plain text", uiDynamicPrompt("plain text", nil))
	require.Equal(t, "x", uiDynamicPrompt("{x}", nil))
	require.Equal(t, "a|b", uiDynamicPrompt(`a\|b`, nil))
	require.Equal(t, "open ", uiDynamicPrompt("open {", nil), "an unclosed group takes the rest as its only choice")

	ui := []byte(`{"nodes":[{"id":1,"type":"CLIPTextEncode","mode":0,"inputs":[],"widgets_values":["{cat|cat} // note"]},
		{"id":2,"type":"SaveImage","mode":0,"widgets_values":["{keep|this}"]}],"links":[]}`)
	wf, err := ConvertUI(ui, convLoadInfo(t), &ConvertOptions{DynamicPrompts: true, Rand: r})
	require.NoError(t, err)
	convRequireValue(t, wf, "1", "text", "cat ")
	convRequireValue(t, wf, "2", "filename_prefix", "{keep|this}") // no dynamicPrompts option
	wf, err = ConvertUI(ui, convLoadInfo(t), nil)
	require.NoError(t, err)
	convRequireValue(t, wf, "1", "text", "{cat|cat} // note")
}

func TestConvertUIErrors(t *testing.T) {
	t.Parallel()
	info := convLoadInfo(t)
	for _, tc := range []struct {
		name, data string
		is         error
		contains   string
	}{
		{"not json", `{`, ErrNotUIWorkflow, "invalid JSON"},
		{"array", `[]`, ErrNotUIWorkflow, "invalid JSON"},
		{"api format", `{"3":{"class_type":"KSampler","inputs":{}}}`, ErrNotUIWorkflow, "API-format"},
		{"node without type", `{"nodes":[{"id":1}],"links":[]}`, ErrNotUIWorkflow, "node 1: node has no type"},
		{"node without id", `{"nodes":[{"type":"SaveImage"}],"links":[]}`, ErrNotUIWorkflow, "nodes[0] has no valid id"},
		{"duplicate id", `{"nodes":[{"id":1,"type":"SaveImage"},{"id":1,"type":"SaveImage"}],"links":[]}`, ErrNotUIWorkflow, "duplicate node id"},
		{"bad link", `{"nodes":[],"links":[[1,2]]}`, ErrNotUIWorkflow, "links[0]"},
		{"reroute cycle", `{"nodes":[
			{"id":1,"type":"Reroute","inputs":[{"name":"","type":"*","link":2}],"outputs":[{"name":"","type":"*","links":[1]}]},
			{"id":2,"type":"Reroute","inputs":[{"name":"","type":"*","link":1}],"outputs":[{"name":"","type":"*","links":[2,3]}]},
			{"id":3,"type":"SaveImage","inputs":[{"name":"images","type":"IMAGE","link":3}],"widgets_values":["x"]}],
			"links":[[1,1,0,2,0,"*"],[2,2,0,1,0,"*"],[3,2,0,3,0,"IMAGE"]]}`, ErrUnsupportedNode, "link cycle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ConvertUI([]byte(tc.data), info, nil)
			require.Error(t, err)
			var ce *ConvertError
			require.ErrorAs(t, err, &ce)
			require.ErrorIs(t, err, tc.is)
			require.Contains(t, err.Error(), tc.contains)
		})
	}
}

// convCase is a hand-written conversion case in testdata/convert: a UI workflow and the
// API workflow it must give, or the error it must give.
type convCase struct {
	Description string `json:"description"`
	Options     struct {
		Strict         bool `json:"strict"`
		DynamicPrompts bool `json:"dynamic_prompts"`
	} `json:"options"`
	// ObjectInfo adds test-only classes to the 0.3.64 object_info fixture.
	ObjectInfo json.RawMessage `json:"object_info"`
	UI         json.RawMessage `json:"ui"`
	API        json.RawMessage `json:"api"`
	// Error is a substring of the expected error; ErrorIs names its sentinel.
	Error   string `json:"error"`
	ErrorIs string `json:"error_is"`
}

var convSentinels = map[string]error{
	"not_ui":       ErrNotUIWorkflow,
	"unknown_type": ErrUnknownNodeType,
	"unsupported":  ErrUnsupportedNode,
}

func TestConvertUICases(t *testing.T) {
	t.Parallel()
	base := convLoadInfo(t)
	files, err := filepath.Glob(filepath.Join("testdata", "convert", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			var tc convCase
			require.NoError(t, json.Unmarshal(data, &tc), file)
			require.NotEmpty(t, tc.Description, "%s: describe the case", file)
			require.NotEmpty(t, tc.UI, "%s: no ui", file)
			info := base
			if len(tc.ObjectInfo) > 0 {
				extra, parseErr := ParseObjectInfo(tc.ObjectInfo)
				require.NoError(t, parseErr)
				info = make(ObjectInfo, len(base)+len(extra))
				for k, v := range base {
					info[k] = v
				}
				for k, v := range extra {
					info[k] = v
				}
			}
			opts := &ConvertOptions{Strict: tc.Options.Strict, DynamicPrompts: tc.Options.DynamicPrompts,
				Rand: rand.New(rand.NewPCG(7, 7))}
			got, err := ConvertUI(tc.UI, info, opts)
			if tc.Error != "" || tc.ErrorIs != "" {
				require.Error(t, err, "%s: %s", file, tc.Description)
				var ce *ConvertError
				require.ErrorAs(t, err, &ce)
				require.Contains(t, err.Error(), tc.Error)
				if tc.ErrorIs != "" {
					sentinel, ok := convSentinels[tc.ErrorIs]
					require.True(t, ok, "unknown error_is %q", tc.ErrorIs)
					require.ErrorIs(t, err, sentinel)
				}
				return
			}
			require.NoError(t, err, "%s: %s", file, tc.Description)
			want, err := ParseWorkflow(tc.API)
			require.NoError(t, err, "%s: api", file)
			if diffs := convDiff(got, want, convCompareMode{}); len(diffs) > 0 {
				require.FailNow(t, fmt.Sprintf("%s: %d differences", file, len(diffs)), "%s\n%s", tc.Description, strings.Join(diffs, "\n"))
			}
			require.NoError(t, got.Validate())
		})
	}
}

func TestConvertUIWithTargets(t *testing.T) {
	t.Parallel()
	info := convLoadInfo(t)
	data := convReadFixture(t, "primitive_seed_compare_samplers.ui.json")
	full, err := ConvertUI(data, info, nil)
	require.NoError(t, err)
	previews := full.FindByClass("PreviewImage")
	require.Len(t, previews, 4)

	wf, targets, err := ConvertUIWithTargets(data, info, nil, []string{previews[0]})
	require.NoError(t, err)
	require.Equal(t, []string{previews[0]}, targets)
	require.NoError(t, wf.Validate())
	require.Len(t, wf.FindByClass("PreviewImage"), 1)
	require.Len(t, wf.FindByClass("KSampler"), 1)
	// Every kept node is the target or one of its ancestors, with the same inputs.
	for _, id := range wf.NodeIDs() {
		require.Equal(t, full[id], wf[id], "node %s", id)
	}
	decode := wf.FindByClass("VAEDecode")
	require.Len(t, decode, 1)
	require.Equal(t, decode[0], convLinkOf(t, wf, previews[0], "images").NodeID)

	// A subgraph instance id selects the nodes inside it; an output outside pulls the
	// instance's nodes in as ancestors.
	sub := convReadFixture(t, "subgraph_zimage.ui.json")
	_, _, err = ConvertUIWithTargets(sub, info, nil, []string{"57"})
	require.ErrorIs(t, err, ErrUnsupportedNode, "no output node inside the subgraph")
	wf, targets, err = ConvertUIWithTargets(sub, info, nil, []string{"9"})
	require.NoError(t, err)
	require.Equal(t, []string{"9"}, targets)
	require.Contains(t, wf, "57:3")
	require.Contains(t, wf, "58")

	_, _, err = ConvertUIWithTargets(sub, info, nil, []string{"35"})
	require.ErrorIs(t, err, ErrUnsupportedNode, "a MarkdownNote is not in the prompt")
	_, _, err = ConvertUIWithTargets(sub, info, nil, nil)
	require.ErrorIs(t, err, ErrUnsupportedNode)
}

func ExampleConvertUI() {
	// A slice of GET /object_info; a real client fetches the whole document.
	info, err := ParseObjectInfo([]byte(`{
	 "EmptyImage": {"input": {"required": {
	   "width": ["INT", {"default": 512}], "height": ["INT", {"default": 512}],
	   "batch_size": ["INT", {"default": 1}], "color": ["INT", {"default": 0}]}},
	  "input_order": {"required": ["width", "height", "batch_size", "color"]},
	  "output": ["IMAGE"], "name": "EmptyImage", "display_name": "EmptyImage"},
	 "SaveImage": {"input": {"required": {
	   "images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}},
	  "input_order": {"required": ["images", "filename_prefix"]},
	  "output": [], "name": "SaveImage", "display_name": "Save Image", "output_node": true}}`))
	if err != nil {
		panic(err)
	}
	// What ComfyUI's "Save" writes: a Reroute between the nodes and a Note beside them.
	ui := []byte(`{"version": 0.4, "nodes": [
	  {"id": 1, "type": "EmptyImage", "mode": 0, "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}],
	   "widgets_values": [64, 64, 1, 0]},
	  {"id": 2, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 1}],
	   "outputs": [{"name": "", "type": "IMAGE", "links": [2]}]},
	  {"id": 3, "type": "SaveImage", "mode": 0, "title": "Result",
	   "inputs": [{"name": "images", "type": "IMAGE", "link": 2}], "widgets_values": ["example"]},
	  {"id": 4, "type": "Note", "mode": 0, "widgets_values": ["frontend only"]}],
	 "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]]}`)
	wf, err := ConvertUI(ui, info, nil)
	if err != nil {
		panic(err)
	}
	for _, id := range wf.NodeIDs() {
		inputs, _ := json.Marshal(wf[id].Inputs)
		fmt.Printf("%s %s %q %s\n", id, wf[id].ClassType, wf[id].Title(), inputs)
	}
	// Output:
	// 1 EmptyImage "EmptyImage" {"batch_size":1,"color":0,"height":64,"width":64}
	// 3 SaveImage "Result" {"filename_prefix":"example","images":["1",0]}
}
