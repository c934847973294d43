package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/comfyq/comfyq/comfy"
)

// inputSpec is one declared input of a class, as validate_inputs reads it.
type inputSpec struct {
	name, section string
	// typ is the type name; "COMBO" for a choice in either form.
	typ string
	// listForm: a V1 combo, whose type is the list of choices itself.
	listForm bool
	// choices of a combo (nil for other types).
	choices []any
	opts    map[string]any
	raw     json.RawMessage
	// models: the choices are files in a model folder of the node (see modelList).
	models bool
}

// classInputs returns the required and optional inputs of a class, by name.
func classInputs(ni *comfy.NodeInfo) []inputSpec {
	var out []inputSpec
	for _, sec := range []struct {
		name string
		m    map[string]json.RawMessage
	}{{"required", ni.Input.Required}, {"optional", ni.Input.Optional}} {
		for _, name := range sortedKeys(sec.m) {
			if s, ok := parseSpec(name, sec.name, sec.m[name]); ok {
				s.models = s.choices != nil && modelList(ni, s)
				out = append(out, s)
			}
		}
	}
	return out
}

func parseSpec(name, section string, raw json.RawMessage) (inputSpec, bool) {
	s := inputSpec{name: name, section: section, raw: raw}
	var parts []json.RawMessage
	if decodeNumbers(raw, &parts) != nil || len(parts) == 0 {
		return s, false
	}
	if bytes.HasPrefix(bytes.TrimSpace(parts[0]), []byte("[")) {
		if decodeNumbers(parts[0], &s.choices) != nil {
			return s, false
		}
		if s.choices == nil {
			s.choices = []any{}
		}
		s.typ, s.listForm = "COMBO", true
	} else if json.Unmarshal(parts[0], &s.typ) != nil {
		return s, false
	}
	if len(parts) > 1 {
		_ = decodeNumbers(parts[1], &s.opts)
	}
	if s.typ == "COMBO" && !s.listForm {
		s.choices, _ = s.opts["options"].([]any)
		if s.choices == nil {
			s.choices = []any{}
		}
	}
	return s, true
}

func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

// config is ComfyUI's input_config (type, options), left out when large.
func (s inputSpec) config() any {
	if len(s.raw) > 2<<10 {
		return nil
	}
	return s.raw
}

func (s inputSpec) typeText() string {
	if s.listForm {
		return typeText(s.choices)
	}
	return s.typ
}

// Options that make a choice's value a file on the node, checked by the node's own
// VALIDATE_INPUTS rather than against the list, or a list the server does not know.
var unlistedChoice = []string{"image_upload", "video_upload", "audio_upload", "file_upload", "remote", "remote_combo"}

// value checks a constant value of a declared input, as validate_inputs does.
func (v *validator) value(id string, in inputSpec, val any) {
	if m, ok := val.(map[string]any); ok {
		if inner, ok := m["__value__"]; ok {
			val = inner
		}
	}
	extra := func() map[string]any {
		return map[string]any{"input_name": in.name, "input_config": in.config(), "received_value": shorten(val)}
	}
	var num *big.Float
	switch in.typ {
	case "INT", "FLOAT":
		var err error
		if in.typ == "INT" {
			num, err = toInt(val)
		} else {
			num, err = toFloat(val)
		}
		if err != nil {
			e := extra()
			e["exception_message"] = err.Error()
			v.add(id, comfy.APIError{Type: "invalid_input_type",
				Message: fmt.Sprintf("Failed to convert an input value to a %s value", in.typ),
				Details: fmt.Sprintf("%s, %s, %s", in.name, truncate(pyText(val), 200), err), ExtraInfo: e})
			return
		}
	}
	if num != nil {
		if lo, ok := bound(in.opts["min"]); ok && num.Cmp(lo) < 0 {
			v.add(id, comfy.APIError{Type: "value_smaller_than_min",
				Message: fmt.Sprintf("Value %s smaller than min of %s", numText(num, in.typ), optText(in.opts["min"])),
				Details: in.name, ExtraInfo: extra()})
			return
		}
		if hi, ok := bound(in.opts["max"]); ok && num.Cmp(hi) > 0 {
			v.add(id, comfy.APIError{Type: "value_bigger_than_max",
				Message: fmt.Sprintf("Value %s bigger than max of %s", numText(num, in.typ), optText(in.opts["max"])),
				Details: in.name, ExtraInfo: extra()})
			return
		}
	}
	if in.choices == nil {
		return
	}
	for _, o := range unlistedChoice {
		if b, _ := in.opts[o].(bool); b {
			return
		}
	}
	if !v.models && in.models {
		return
	}
	vals := []any{val}
	if multi, _ := in.opts["multiselect"].(bool); multi {
		if l, ok := val.([]any); ok {
			vals = l
		}
	}
	var bad []string
	for _, x := range vals {
		if !contains(in.choices, x) {
			bad = append(bad, truncate(pyRepr(x), 200))
		}
	}
	if len(bad) == 0 {
		return
	}
	list := fmt.Sprintf("(list of length %d)", len(in.choices))
	e := extra()
	if len(in.choices) <= 20 {
		parts := make([]string, len(in.choices))
		for i, c := range in.choices {
			parts[i] = pyRepr(c)
		}
		list = "[" + strings.Join(parts, ", ") + "]"
	} else {
		e["input_config"] = nil
	}
	v.add(id, comfy.APIError{Type: "value_not_in_list", Message: "Value not in list",
		Details: fmt.Sprintf("%s: %s not in %s", in.name, strings.Join(bad, ", "), list), ExtraInfo: e})
}

var (
	fileName    = regexp.MustCompile(`\.[A-Za-z0-9]{2,12}$`)
	loaderInput = regexp.MustCompile(`(^|_)(name|path)[0-9]*$`)
)

// modelList reports whether a choice lists the files of a model folder, which differ
// from node to node: an empty list (a folder without files), a list of file names, or
// a name input of a loader (VAELoader's vae_name lists "pixel_space" beside files).
func modelList(ni *comfy.NodeInfo, s inputSpec) bool {
	if len(s.choices) == 0 {
		return true
	}
	for _, c := range s.choices {
		if str, ok := c.(string); ok && fileName.MatchString(str) {
			return true
		}
	}
	return strings.Contains(strings.ToLower(ni.Category), "loader") && loaderInput.MatchString(s.name)
}

var pyIntText = regexp.MustCompile(`^[+-]?[0-9]+(_[0-9]+)*$`)

// toInt converts as Python's int() does for the values JSON can hold.
func toInt(val any) (*big.Float, error) {
	switch x := val.(type) {
	case json.Number:
		s := x.String()
		if !strings.ContainsAny(s, ".eE") {
			i, ok := new(big.Int).SetString(s, 10)
			if !ok {
				return nil, fmt.Errorf("invalid literal for int() with base 10: %s", pyRepr(s))
			}
			return new(big.Float).SetPrec(256).SetInt(i), nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("cannot convert float infinity to integer")
		}
		i, _ := big.NewFloat(math.Trunc(f)).Int(nil)
		return new(big.Float).SetPrec(256).SetInt(i), nil
	case float64:
		return toInt(json.Number(strconv.FormatFloat(x, 'g', -1, 64)))
	case bool:
		return boolNum(x), nil
	case string:
		s := strings.TrimSpace(x)
		if !pyIntText.MatchString(s) {
			return nil, fmt.Errorf("invalid literal for int() with base 10: %s", truncate(pyRepr(x), 100))
		}
		i, _ := new(big.Int).SetString(strings.ReplaceAll(s, "_", ""), 10)
		return new(big.Float).SetPrec(256).SetInt(i), nil
	}
	return nil, fmt.Errorf("int() argument must be a string, a bytes-like object or a real number, not '%s'", pyType(val))
}

// toFloat converts as Python's float() does; NaN has no bound to compare with and is
// returned as nil with no error.
func toFloat(val any) (*big.Float, error) {
	var f float64
	switch x := val.(type) {
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(x.String(), 64); err != nil && !math.IsInf(f, 0) {
			return nil, fmt.Errorf("could not convert string to float: %s", pyRepr(x.String()))
		}
	case float64:
		f = x
	case bool:
		return boolNum(x), nil
	case string:
		s := strings.TrimSpace(x)
		var err error
		f, err = strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
		if (err != nil && !math.IsInf(f, 0)) || strings.HasPrefix(strings.ToLower(strings.TrimLeft(s, "+-")), "0x") {
			return nil, fmt.Errorf("could not convert string to float: %s", truncate(pyRepr(x), 100))
		}
	default:
		return nil, fmt.Errorf("float() argument must be a string or a real number, not '%s'", pyType(val))
	}
	if math.IsNaN(f) {
		return nil, nil
	}
	return new(big.Float).SetPrec(256).SetFloat64(f), nil
}

func boolNum(b bool) *big.Float {
	if b {
		return big.NewFloat(1)
	}
	return big.NewFloat(0)
}

// bound reads a min or max option.
func bound(v any) (*big.Float, bool) {
	switch x := v.(type) {
	case json.Number:
		f, _, err := big.ParseFloat(x.String(), 10, 256, big.ToNearestEven)
		return f, err == nil
	case float64:
		return big.NewFloat(x), true
	}
	return nil, false
}

func numText(f *big.Float, typ string) string {
	if typ == "INT" {
		i, _ := f.Int(nil)
		return i.String()
	}
	x, _ := f.Float64()
	return pyFloat(x)
}

func optText(v any) string {
	if n, ok := v.(json.Number); ok {
		return n.String()
	}
	return fmt.Sprint(v)
}

func pyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eIN") {
		s += ".0"
	}
	return s
}

// contains is Python's "x in list" for JSON values: numbers compare by value (1 == 1.0,
// True == 1), strings exactly.
func contains(list []any, x any) bool {
	for _, c := range list {
		if equal(c, x) {
			return true
		}
	}
	return false
}

func equal(a, b any) bool {
	as, aStr := a.(string)
	bs, bStr := b.(string)
	if aStr || bStr {
		return aStr && bStr && as == bs
	}
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	an, aok := number(a)
	bn, bok := number(b)
	return aok && bok && an.Cmp(bn) == 0
}

func number(v any) (*big.Float, bool) {
	switch x := v.(type) {
	case json.Number, float64:
		return bound(x)
	case bool:
		return boolNum(x), true
	}
	return nil, false
}

// pyRepr renders a value as Python's repr would, for messages.
func pyRepr(v any) string {
	switch x := v.(type) {
	case string:
		return "'" + strings.ReplaceAll(x, "'", `\'`) + "'"
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	}
	return pyText(v)
}

func pyText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if v == nil {
		return "None"
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}

func pyType(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case map[string]any:
		return "dict"
	case []any:
		return "list"
	}
	return fmt.Sprintf("%T", v)
}

// shorten bounds a value quoted in an error: the input may be large.
func shorten(v any) any {
	data, err := json.Marshal(v)
	if err != nil || len(data) <= 256 {
		return v
	}
	return truncate(string(data), 256)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

func asInt(v any) (int, bool) {
	switch x := v.(type) {
	case json.Number:
		i, err := strconv.Atoi(x.String())
		return i, err == nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, false
		}
		return int(x), true
	case int:
		return x, true
	case int64:
		return int(x), true
	}
	return 0, false
}

// confusables maps letters that look like ASCII ones (Cyrillic, Greek, fullwidth
// forms are folded separately) to those letters.
var confusables = map[rune]rune{
	'А': 'A', 'В': 'B', 'Е': 'E', 'К': 'K', 'М': 'M', 'Н': 'H', 'О': 'O', 'Р': 'P', 'С': 'C',
	'Т': 'T', 'Х': 'X', 'Ѕ': 'S', 'І': 'I', 'Ј': 'J', 'а': 'a', 'е': 'e', 'о': 'o', 'р': 'p',
	'с': 'c', 'у': 'y', 'х': 'x', 'ѕ': 's', 'і': 'i', 'ј': 'j', 'һ': 'h', 'ԁ': 'd', 'ԛ': 'q',
	'ԝ': 'w', 'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Ζ': 'Z', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M',
	'Ν': 'N', 'Ο': 'O', 'Ρ': 'P', 'Τ': 'T', 'Υ': 'Y', 'Χ': 'X', 'ο': 'o', 'ν': 'v', 'α': 'a',
	'ι': 'i', 'κ': 'k', 'ρ': 'p', 'τ': 't', 'υ': 'u',
}

// lookAlike explains an unknown class name that is a known one in disguise: letters
// from another script, or another case.
func (v *validator) lookAlike(class string) string {
	var b strings.Builder
	var foreign []string
	for _, r := range class {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E: // fullwidth ASCII
			foreign = append(foreign, fmt.Sprintf("U+%04X", r))
			r -= 0xFEE0
		case confusables[r] != 0:
			foreign = append(foreign, fmt.Sprintf("U+%04X", r))
			r = confusables[r]
		case r > 0x7E || r < 0x20:
			foreign = append(foreign, fmt.Sprintf("U+%04X", r))
		}
		b.WriteRune(r)
	}
	folded := b.String()
	var known []string
	for name := range v.info {
		if name == folded || strings.EqualFold(name, folded) {
			known = append(known, name)
		}
	}
	sort.Strings(known)
	msg := ""
	if len(foreign) > 0 {
		msg = fmt.Sprintf("class_type %q has characters outside ASCII (%s)", truncate(class, 100), strings.Join(foreign[:min(len(foreign), 5)], ", "))
	}
	if len(known) > 0 {
		if msg != "" {
			msg += "; "
		}
		msg += fmt.Sprintf("did you mean %q?", known[0])
	}
	return msg
}
