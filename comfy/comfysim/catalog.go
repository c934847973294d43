package comfysim

import (
	_ "embed"
	"fmt"
	"math/big"
	"sort"
	"sync"
)

// objectInfoJSON holds the object_info entries of the simulated classes,
// extracted verbatim from the real ComfyUI 0.3.64 fixture
// (testdata/comfyui/object_info-0.3.64.json). TestObjectInfoEmbedded
// proves each entry equal to the fixture's; run `go generate` to rebuild it.
//
//go:generate go test -run ^TestObjectInfoEmbedded$ -update .
//go:embed objectinfo.json
var objectInfoJSON []byte

// simulatedClasses are the node classes the simulator executes.
var simulatedClasses = []string{
	"CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler", "VAEDecode", "VAELoader",
	"EmptyImage", "LoadImage", "ImageInvert", "ImageScale", "SaveImage", "PreviewImage",
	"CreateVideo", "SaveVideo", "SaveWEBM",
	"EmptyLatentAudio", "VAEDecodeAudio", "SaveAudio",
	"PreviewAny",
	"ImageBatch", "ImageBlur", "ImageCrop", "ImageCompositeMasked", "SolidMask", "JoinImageWithAlpha",
	"ImageAddNoise", "RepeatImageBatch", "SaveAnimatedWEBP", "SaveAnimatedPNG",
}

// inputDef is one input of a class, as get_input_info sees it.
type inputDef struct {
	name     string
	category string  // "required", "optional" or "hidden"
	typ      any     // "INT", "IMAGE", "COMBO", … or a []any combo list
	extra    *object // the options dict ({} when absent)
}

// config is the [type, options] pair reported as input_config.
func (d *inputDef) config() []any { return []any{d.typ, d.extra} }

// classDef is a simulated node class: its object_info entry and behaviour.
type classDef struct {
	name        string
	info        *object // the object_info entry
	inputs      map[string]*inputDef
	order       []*inputDef // required then optional, in input_order
	hidden      []*inputDef
	v3          bool // a V3 (comfy_api) node: hidden inputs are not input data
	returnTypes []any
	outputNode  bool
	run         nodeFunc
	// isChanged is the class's IS_CHANGED; nil when it has none.
	isChanged func(s *Server, inputs *object) (any, error)
	// validateInputs lists the arguments of VALIDATE_INPUTS; validate runs it.
	validateInputs []string
	validate       func(s *Server, args *object) (any, *pyError)
}

var (
	catalogOnce sync.Once
	catalogData *object
	catalogErr  error
)

// loadCatalog parses the embedded object_info entries once.
func loadCatalog() (*object, error) {
	catalogOnce.Do(func() {
		v, err := decodeJSONBytes(objectInfoJSON)
		if err != nil {
			catalogErr = fmt.Errorf("comfysim: embedded object_info: %w", err)
			return
		}
		o, ok := v.(*object)
		if !ok {
			catalogErr = fmt.Errorf("comfysim: embedded object_info is not an object")
			return
		}
		for _, name := range simulatedClasses {
			if !o.Has(name) {
				catalogErr = fmt.Errorf("comfysim: embedded object_info lacks %s", name)
				return
			}
		}
		catalogData = o
	})
	return catalogData, catalogErr
}

// buildClasses makes the server's class table: the embedded entries with
// the configured checkpoint names in CheckpointLoaderSimple's combo, in the
// object_info shape of the simulated version.
func buildClasses(models []string, version string) (map[string]*classDef, []string, error) {
	cat, err := loadCatalog()
	if err != nil {
		return nil, nil, err
	}
	classes := map[string]*classDef{}
	var order []string
	for _, name := range cat.Keys() {
		entry, _ := cat.Get(name)
		info := copyObject(entry.(*object))
		if name == "CheckpointLoaderSimple" {
			setCombo(info, "required", "ckpt_name", models)
		}
		def, err := parseClass(name, info)
		if err != nil {
			return nil, nil, err
		}
		impl, ok := nodeImpls[name]
		if !ok {
			return nil, nil, fmt.Errorf("comfysim: no implementation for %s", name)
		}
		if version != Version0364 {
			def.info = objectInfo038(def.info, def.v3)
		}
		impl(def)
		classes[name] = def
		order = append(order, name)
	}
	return classes, order, nil
}

// setCombo replaces the option list of a V1 combo input.
func setCombo(info *object, section, input string, values []string) {
	spec, _ := info.getObject("input").getObject(section).Get(input)
	l, ok := spec.([]any)
	if !ok || len(l) == 0 {
		return
	}
	opts := make([]any, len(values))
	for i, v := range values {
		opts[i] = v
	}
	l[0] = opts
}

func parseClass(name string, info *object) (*classDef, error) {
	def := &classDef{name: name, info: info, inputs: map[string]*inputDef{}}
	in := info.getObject("input")
	order := info.getObject("input_order")
	for _, section := range []string{"required", "optional", "hidden"} {
		specs := in.getObject(section)
		names, _ := order.Get(section)
		nl, _ := names.([]any)
		for _, n := range nl {
			iname, _ := n.(string)
			spec, ok := specs.Get(iname)
			if !ok {
				return nil, fmt.Errorf("comfysim: %s: input_order names unknown input %q", name, iname)
			}
			d := &inputDef{name: iname, category: section, extra: newObject()}
			switch s := spec.(type) {
			case []any:
				if len(s) > 0 {
					d.typ = s[0]
				}
				if len(s) > 1 {
					if e, ok := s[1].(*object); ok {
						d.extra = e
					}
				}
			case string:
				d.typ = s
			}
			def.inputs[iname] = d
			if section != "hidden" {
				def.order = append(def.order, d)
			} else {
				def.hidden = append(def.hidden, d)
			}
		}
	}
	outs, _ := info.Get("output")
	def.returnTypes, _ = outs.([]any)
	on, _ := info.Get("output_node")
	def.outputNode, _ = on.(bool)
	def.v3 = info.Has("api_node")
	return def, nil
}

// serveObjectInfo returns the object_info entry of a class as served: the
// LoadImage combo lists the image files of the input directory, as a real
// node does (a fresh simulator holds example.png, like the fixture).
func (s *Server) serveObjectInfo(name string) *object {
	def := s.classes[name]
	if def == nil {
		return nil
	}
	if name != "LoadImage" {
		return def.info
	}
	info := copyObject(def.info)
	setCombo(info, "required", "image", s.inputImageFiles())
	return info
}

// sortedPy sorts strings by code point, as Python's sorted() does.
func sortedPy(l []string) []string {
	c := append([]string(nil), l...)
	sort.Strings(c)
	return c
}

// intValue converts a validated INT input to int64, saturating.
func intValue(v any) int64 {
	switch v := v.(type) {
	case *big.Int:
		if v.IsInt64() {
			return v.Int64()
		}
		if v.Sign() < 0 {
			return -1 << 63
		}
		return 1<<63 - 1
	case pyFloat:
		return int64(v)
	case bool:
		if v {
			return 1
		}
	}
	return 0
}

// floatValue converts a validated FLOAT input to float64.
func floatValue(v any) float64 {
	switch v := v.(type) {
	case pyFloat:
		return float64(v)
	case *big.Int:
		f, _ := new(big.Float).SetInt(v).Float64()
		return f
	case bool:
		if v {
			return 1
		}
	}
	return 0
}
