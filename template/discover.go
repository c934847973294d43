package template

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/comfyq/comfyq/comfy"
)

// DefaultTitlePrefix marks the nodes whose inputs become parameters: a node titled
// "Input: prompt" gives the parameter prompt.
const DefaultTitlePrefix = "Input: "

// Discover finds a workflow's parameters by convention (see the package documentation):
// the constant inputs of nodes titled titlePrefix+"<name>" (DefaultTitlePrefix when
// titlePrefix is empty), else the sampler heuristic (prompt, negative_prompt, seed,
// steps, cfg, width, height, batch_size, LoadImage images). info may be nil: types are
// then inferred from the workflow's values. It never fails; a workflow with nothing
// recognisable has no parameters.
func Discover(wf comfy.Workflow, info comfy.ObjectInfo, titlePrefix string) []Param {
	params, _ := discover(wf, info, titlePrefix)
	return params
}

// MadeName tells how discovery named a parameter that a node's title does not name by
// itself: the node titled "Input: size" on EmptyLatentImage has several widget inputs and
// none called size, so its inputs become size_width, size_height, size_batch_size; a name
// that two nodes want is suffixed. The registration response lists them so that the
// user sees the names to submit.
type MadeName struct {
	// Param is the parameter's name.
	Param string `json:"param"`
	// Node and Input are the (first) input the parameter sets.
	Node  string `json:"node"`
	Input string `json:"input"`
	// Title is the node's title.
	Title string `json:"title"`
}

// discover is Discover, also returning the names made from titles (see MadeName).
func discover(wf comfy.Workflow, info comfy.ObjectInfo, titlePrefix string) ([]Param, []MadeName) {
	if titlePrefix == "" {
		titlePrefix = DefaultTitlePrefix
	}
	d := &discoverer{wf: wf, info: info}
	params, titles := d.titled(titlePrefix)
	if len(params) == 0 {
		return uniqueNames(d.heuristic()), nil
	}
	params = uniqueNames(params)
	var made []MadeName
	for i, p := range params {
		if p.Name == titles[i].name {
			continue
		}
		node, input, _ := comfy.SplitPath(p.Targets[0])
		made = append(made, MadeName{Param: p.Name, Node: node, Input: input, Title: titles[i].title})
	}
	return params, made
}

// uniqueNames suffixes repeated names (_2, _3, …) so that a template never declares a
// parameter twice, whatever the workflow looks like.
func uniqueNames(params []Param) []Param {
	seen := map[string]bool{}
	for _, p := range params {
		seen[p.Name] = true
	}
	used := map[string]bool{}
	for i := range params {
		base := params[i].Name
		if len(base) > 56 {
			base = base[:56]
		}
		name := params[i].Name
		for k := 2; used[name]; k++ {
			name = fmt.Sprintf("%s_%d", base, k)
			if seen[name] {
				name = params[i].Name // taken by another parameter: try the next suffix
			}
		}
		used[name] = true
		params[i].Name = name
	}
	return params
}

type discoverer struct {
	wf   comfy.Workflow
	info comfy.ObjectInfo
}

// nonName matches the characters a discovered parameter name may not have.
var nonName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func sanitizeName(s string) string {
	s = strings.Trim(nonName.ReplaceAllString(strings.TrimSpace(s), "_"), "_-")
	if len(s) > 64 {
		s = strings.TrimRight(s[:64], "_-")
	}
	return s
}

// uploadPseudoInputs are the upload buttons' values that some API-format files carry
// ("choose file to upload": "image"); ComfyUI ignores them.
var uploadPseudoInputs = map[string]bool{"upload": true, "choose file to upload": true}

// titleName is the name a titled node asks for, beside the parameter made from it.
type titleName struct{ title, name string }

// titled implements convention 1: nodes titled prefix+name. It returns, beside each
// parameter, the title it came from and the name that title asks for.
func (d *discoverer) titled(prefix string) ([]Param, []titleName) {
	var out []Param
	var titles []titleName
	index := map[string]int{}
	for _, id := range d.wf.NodeIDs() {
		n := d.wf[id]
		if n == nil || !strings.HasPrefix(n.Title(), prefix) {
			continue
		}
		base := sanitizeName(strings.TrimPrefix(n.Title(), prefix))
		if base == "" {
			base = sanitizeName(strings.ToLower(n.ClassType))
		}
		if base == "" {
			base = "input"
		}
		var found []Param
		for _, input := range d.widgetInputs(id) {
			if p, ok := d.param(id, input); ok {
				found = append(found, p)
			}
		}
		if p, ok := namedInput(found, base); ok {
			// "Input: color" on EmptyImage: the title names the input the user means.
			found = []Param{p}
		}
		for _, p := range found {
			p.Name = base
			if len(found) > 1 {
				_, input, _ := comfy.SplitPath(p.Targets[0])
				p.Name = sanitizeName(base + "_" + input)
			}
			if i, ok := index[p.Name]; ok {
				// Several nodes with the same title are one parameter when their
				// inputs have the same type (a prompt fed to base and refiner).
				if out[i].Type == p.Type {
					out[i].Targets = append(out[i].Targets, p.Targets...)
					continue
				}
				p.Name = sanitizeName(p.Name + "_" + id)
				if _, taken := index[p.Name]; taken {
					continue
				}
			}
			index[p.Name] = len(out)
			out = append(out, p)
			titles = append(titles, titleName{title: n.Title(), name: base})
		}
	}
	return out, titles
}

// namedInput returns the parameter, among one node's, of the input called name: exactly
// so, else ignoring case ("Input: Color" means color).
func namedInput(params []Param, name string) (Param, bool) {
	for _, fold := range []bool{false, true} {
		for _, p := range params {
			_, input, _ := comfy.SplitPath(p.Targets[0])
			if input == name || (fold && strings.EqualFold(input, name)) {
				return p, true
			}
		}
	}
	return Param{}, false
}

// widgetInputs lists the inputs of a node that could be parameters, in the class's
// declared order when object_info knows it.
func (d *discoverer) widgetInputs(id string) []string {
	n := d.wf[id]
	if ni := d.info[n.ClassType]; ni != nil {
		var names []string
		for _, s := range ni.OrderedSpecs() {
			// Inputs that object_info does not declare are ignored by ComfyUI.
			names = append(names, s.Name)
		}
		return names
	}
	names := make([]string, 0, len(n.Inputs))
	for name := range n.Inputs {
		if !uploadPseudoInputs[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// param builds the parameter for one node input, or reports false when the input
// cannot be one (a link, a connection-only input, a list value, a hidden input).
func (d *discoverer) param(id, input string) (Param, bool) {
	n := d.wf[id]
	if n == nil {
		return Param{}, false
	}
	v, has := n.Inputs[input]
	if has {
		if _, isLink := comfy.AsLink(v); isLink || !isScalar(v) {
			return Param{}, false
		}
	}
	path := targetPath(id, input)
	if path == "" {
		return Param{}, false
	}
	p := Param{Targets: []string{path}}
	var spec comfy.InputSpec
	specOK := false
	if ni := d.info[n.ClassType]; ni != nil {
		spec, specOK = ni.Spec(input)
	}
	if specOK && spec.Section == "hidden" {
		return Param{}, false
	}
	typed := false
	if specOK {
		typed = d.fromSpec(&p, spec, v, has)
	}
	if !typed {
		if !has {
			return Param{}, false
		}
		p.Type = typeOfValue(v)
		if strings.HasPrefix(n.ClassType, "LoadImage") && input == "image" {
			p.Type = TypeImage
		}
	}
	switch {
	case has:
		p.Default = canonical(p.Type, v)
	case specOK:
		if def, ok := spec.Default(); ok && isScalar(def) {
			p.Default = canonical(p.Type, def)
		}
	}
	if p.Type == TypeImage {
		// A file name on one node says nothing about the files of another.
		p.Enum = nil
	} else if len(p.Enum) > 0 && p.Default != nil && !inEnum(p.Default, p.Enum) {
		// The workflow's value is valid on its author's node (a model that the node
		// object_info came from does not have): keep it allowed.
		p.Enum = append(p.Enum, p.Default)
	}
	if specOK {
		if tip, _ := spec.Options["tooltip"].(string); tip != "" {
			p.Description = tip
		}
	}
	if p.Description == "" {
		p.Description = inputDescription(n, id, input)
	}
	p.Required = p.Default == nil
	return p, true
}

// targetPath returns the input path of a node input, or "" when the ids cannot be
// written as one (an empty id or input name, an input name containing ".inputs.").
func targetPath(id, input string) string {
	path := id + ".inputs." + input
	if n, i, err := comfy.SplitPath(path); err != nil || n != id || i != input {
		return ""
	}
	return path
}

func inputDescription(n *comfy.Node, id, input string) string {
	if t := n.Title(); t != "" {
		return fmt.Sprintf("%s.%s of node %s (%s)", n.ClassType, input, id, t)
	}
	return fmt.Sprintf("%s.%s of node %s", n.ClassType, input, id)
}

// uploadOptions are the combo options that make an input a file the UI uploads.
var uploadOptions = []string{"image_upload", "animated_image_upload", "video_upload", "audio_upload"}

// fromSpec types p from an object_info input definition. It reports false when the spec
// is a connection type (the value, if any, is then typed by itself).
func (d *discoverer) fromSpec(p *Param, spec comfy.InputSpec, v any, has bool) bool {
	switch spec.Type {
	case "INT":
		p.Type = TypeInteger
	case "FLOAT":
		p.Type = TypeNumber
	case "STRING":
		p.Type = TypeString
		p.Multiline, _ = spec.Options["multiline"].(bool)
	case "BOOLEAN":
		p.Type = TypeBoolean
	case "COMBO":
		for _, opt := range uploadOptions {
			if b, _ := spec.Options[opt].(bool); b {
				p.Type = TypeImage
				return true
			}
		}
		p.Type = typeOfChoices(spec.Choices)
		for _, c := range spec.Choices {
			if isScalar(c) {
				p.Enum = append(p.Enum, c)
			}
		}
		return true
	default:
		return false
	}
	if p.Type == TypeInteger || p.Type == TypeNumber {
		if b, ok := boundOption(spec.Options["min"]); ok {
			_ = p.SetMinimum(b)
		}
		if b, ok := boundOption(spec.Options["max"]); ok {
			_ = p.SetMaximum(b)
		}
	}
	return true
}

func boundOption(v any) (json.Number, bool) {
	switch x := v.(type) {
	case json.Number:
		return x, jsonNumber.MatchString(string(x))
	case float64:
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64)), true
	case int:
		return json.Number(strconv.Itoa(x)), true
	case int64:
		return json.Number(strconv.FormatInt(x, 10)), true
	}
	return "", false
}

func typeOfChoices(choices []any) string {
	if len(choices) == 0 {
		return TypeString
	}
	t := ""
	for _, c := range choices {
		ct := typeOfValue(c)
		switch {
		case t == "":
			t = ct
		case t == ct:
		case (t == TypeInteger && ct == TypeNumber) || (t == TypeNumber && ct == TypeInteger):
			t = TypeNumber
		default:
			return TypeString
		}
	}
	return t
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, bool, json.Number, float64, float32, int, int64, int32, uint, uint64, uint32:
		return true
	}
	return false
}

// typeOfValue infers a parameter type from a workflow value.
func typeOfValue(v any) string {
	switch x := v.(type) {
	case string:
		return TypeString
	case bool:
		return TypeBoolean
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return TypeNumber
		}
		return TypeInteger
	case float64, float32:
		return TypeNumber
	case int, int64, int32, uint, uint64, uint32:
		return TypeInteger
	}
	return TypeString
}

// canonical writes integral values of integer parameters as plain integers (20.0 → 20)
// and Go numbers as json.Number.
func canonical(typ string, v any) any {
	if typ == TypeInteger {
		if n, msg := toInteger(v); msg == "" {
			return json.Number(n.String())
		}
	}
	return normalizeValue(v)
}

// samplerClasses are the nodes of the seed heuristic, in no particular order.
var samplerClasses = map[string]bool{"KSampler": true, "KSamplerAdvanced": true, "SamplerCustom": true}

// conditioningInputs are followed from a node that is not a text encoder towards one,
// after the input named like the sampler's (positive, negative).
var conditioningInputs = []string{"conditioning", "conditioning_to", "conditioning_1"}

// heuristic implements convention 2.
func (d *discoverer) heuristic() []Param {
	var samplers []string
	for _, id := range d.wf.NodeIDs() {
		if n := d.wf[id]; n != nil && samplerClasses[n.ClassType] {
			samplers = append(samplers, id)
		}
	}
	var out []Param
	if len(samplers) > 0 {
		// The primary sampler is the first whose positive input reaches a text encoder.
		primary := samplers[0]
		for _, id := range samplers {
			if len(d.encoderTargets(id, "positive")) > 0 {
				primary = id
				break
			}
		}
		pos := d.tiedTargets(samplers, primary, func(s string) []string { return d.encoderTargets(s, "positive") })
		neg := d.tiedTargets(samplers, primary, func(s string) []string { return d.encoderTargets(s, "negative") })
		if len(pos) > 0 && len(neg) > 0 && overlaps(pos, neg) {
			neg = nil // the negative is the positive, zeroed out: its text means nothing
		}
		if p, ok := d.multi("prompt", pos); ok {
			p.Description = "Positive prompt: " + p.Description
			out = append(out, p)
		}
		if p, ok := d.multi("negative_prompt", neg); ok {
			p.Description = "Negative prompt: " + p.Description
			out = append(out, p)
		}
		for _, name := range [][]string{{"seed", "noise_seed"}, {"steps"}, {"cfg"}} {
			targets := d.tiedTargets(samplers, primary, func(s string) []string {
				for _, input := range name {
					if v, ok := d.wf[s].Inputs[input]; ok {
						if _, isLink := comfy.AsLink(v); !isLink {
							if t := targetPath(s, input); t != "" {
								return []string{t}
							}
						}
					}
				}
				return nil
			})
			if p, ok := d.multi(name[0], targets); ok {
				out = append(out, p)
			}
		}
		if latent := d.emptyLatent(primary); latent != "" {
			for _, input := range []string{"width", "height", "batch_size"} {
				if p, ok := d.param(latent, input); ok && d.has(latent, input) {
					p.Name = input
					out = append(out, p)
				}
			}
		}
	}
	out = append(out, d.imageParams()...)
	return out
}

func (d *discoverer) has(id, input string) bool {
	_, ok := d.wf[id].Inputs[input]
	return ok
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// multi builds a parameter named name over targets, typed by the first target.
func (d *discoverer) multi(name string, targets []string) (Param, bool) {
	if len(targets) == 0 {
		return Param{}, false
	}
	id, input, err := comfy.SplitPath(targets[0])
	if err != nil {
		return Param{}, false
	}
	p, ok := d.param(id, input)
	if !ok {
		return Param{}, false
	}
	p.Name = name
	p.Targets = targets
	return p, true
}

// tiedTargets returns the primary sampler's targets, plus those of the other samplers
// whose current value equals the primary's: in an API-format workflow, equal values on
// several samplers are what one UI widget (a PrimitiveNode) feeding them all leaves
// behind, as with a prompt shared by an SDXL base and refiner.
func (d *discoverer) tiedTargets(samplers []string, primary string, targetsOf func(string) []string) []string {
	first := targetsOf(primary)
	if len(first) == 0 {
		return nil
	}
	want, _ := d.wf.Get(first[0])
	out := append([]string(nil), first...)
	seen := map[string]bool{}
	for _, t := range out {
		seen[t] = true
	}
	for _, s := range samplers {
		if s == primary {
			continue
		}
		for _, t := range targetsOf(s) {
			if v, ok := d.wf.Get(t); ok && !seen[t] && sameValue(v, want) {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return out
}

// encoderTargets follows a sampler's conditioning input (positive or negative) to the
// text encoder it comes from, through pass-through conditioning nodes, and returns the
// encoder's text inputs.
func (d *discoverer) encoderTargets(sampler, input string) []string {
	v := d.wf[sampler].Inputs[input]
	seen := map[string]bool{sampler: true}
	for depth := 0; depth < 16; depth++ {
		l, ok := comfy.AsLink(v)
		if !ok {
			return nil
		}
		n := d.wf[l.NodeID]
		if n == nil || seen[l.NodeID] || strings.Contains(n.ClassType, "ZeroOut") {
			return nil
		}
		seen[l.NodeID] = true
		if strings.Contains(n.ClassType, "TextEncode") {
			return d.textInputs(l.NodeID)
		}
		next, found := n.Inputs[input]
		for _, name := range conditioningInputs {
			if found {
				break
			}
			next, found = n.Inputs[name]
		}
		if !found {
			return nil
		}
		v = next
	}
	return nil
}

// textInputs returns the prompt inputs of a text encoder node: "text" when it is a
// constant, else its multi-line STRING inputs (text_g and text_l of CLIPTextEncodeSDXL),
// else every string constant. A text input fed by a primitive string node targets that
// node's value instead.
func (d *discoverer) textInputs(id string) []string {
	n := d.wf[id]
	if t := d.constString(id, "text"); t != "" {
		return []string{t}
	}
	if l, ok := comfy.AsLink(n.Inputs["text"]); ok {
		if src := d.wf[l.NodeID]; src != nil && strings.HasPrefix(src.ClassType, "PrimitiveString") {
			if t := d.constString(l.NodeID, "value"); t != "" {
				return []string{t}
			}
		}
	}
	var multiline, all []string
	names := make([]string, 0, len(n.Inputs))
	for name := range n.Inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	ni := d.info[n.ClassType]
	for _, name := range names {
		t := d.constString(id, name)
		if t == "" {
			continue
		}
		if ni != nil {
			spec, ok := ni.Spec(name)
			if !ok || spec.Type != "STRING" {
				continue
			}
			if ml, _ := spec.Options["multiline"].(bool); ml {
				multiline = append(multiline, t)
			}
		}
		all = append(all, t)
	}
	if len(multiline) > 0 {
		return multiline
	}
	return all
}

func (d *discoverer) constString(id, input string) string {
	if _, ok := d.wf[id].Inputs[input].(string); ok {
		return targetPath(id, input)
	}
	return ""
}

// emptyLatent finds the empty-latent node the sampler starts from (EmptyLatentImage,
// EmptySD3LatentImage, …), else the first EmptyLatentImage of the workflow.
func (d *discoverer) emptyLatent(sampler string) string {
	isEmpty := func(n *comfy.Node) bool {
		return n != nil && strings.HasPrefix(n.ClassType, "Empty") && strings.Contains(n.ClassType, "Latent")
	}
	v := d.wf[sampler].Inputs["latent_image"]
	seen := map[string]bool{sampler: true}
	for depth := 0; depth < 16; depth++ {
		l, ok := comfy.AsLink(v)
		if !ok || seen[l.NodeID] {
			break
		}
		seen[l.NodeID] = true
		n := d.wf[l.NodeID]
		if n == nil {
			break
		}
		if isEmpty(n) {
			return l.NodeID
		}
		found := false
		for _, name := range []string{"samples", "latent", "latent_image"} {
			if v, found = n.Inputs[name]; found {
				break
			}
		}
		if !found {
			break
		}
	}
	if ids := d.wf.FindByClass("EmptyLatentImage"); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// imageParams gives one image parameter per LoadImage-like node (a combo input with an
// upload button in object_info, or LoadImage's image without object_info): "image" when
// there is one, "image_<id>" when there are several.
func (d *discoverer) imageParams() []Param {
	var out []Param
	for _, id := range d.wf.NodeIDs() {
		n := d.wf[id]
		if n == nil {
			continue
		}
		for _, input := range d.widgetInputs(id) {
			if n.ClassType != "LoadImage" && d.info[n.ClassType] == nil {
				continue
			}
			p, ok := d.param(id, input)
			if ok && p.Type == TypeImage {
				out = append(out, p)
			}
		}
	}
	for i := range out {
		out[i].Name = "image"
		if len(out) > 1 {
			id, _, _ := comfy.SplitPath(out[i].Targets[0])
			out[i].Name = sanitizeName("image_" + id)
		}
	}
	return out
}
