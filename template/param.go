package template

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// Parameter types. They are JSON Schema type names, plus TypeImage for a file given in a
// submission's "images" rather than in its "params".
const (
	TypeString  = "string"
	TypeInteger = "integer"
	TypeNumber  = "number"
	TypeBoolean = "boolean"
	TypeImage   = "image"
)

// Types returns every parameter type (Param.Type).
func Types() []string { return []string{TypeString, TypeInteger, TypeNumber, TypeBoolean, TypeImage} }

func validType(t string) bool {
	switch t {
	case TypeString, TypeInteger, TypeNumber, TypeBoolean, TypeImage:
		return true
	}
	return false
}

// Param is one parameter of a template: a name mapped to one or more input paths.
//
// Minimum and Maximum are float64 for convenience; the JSON form and validation keep the
// exact bound that object_info gave (a KSampler seed's maximum is 18446744073709551615,
// which no float64 holds). ExactMinimum and ExactMaximum return that text.
type Param struct {
	Name string `json:"name"`
	// Targets are input paths "6.inputs.text"; node selectors are always node ids.
	Targets []string `json:"targets"`
	// Type is string, integer, number, boolean or image (a file given in a submission's
	// images as {url|base64|key}, never in its params).
	Type string `json:"type"`
	// Default is the workflow's current value of the first target, else object_info's
	// default. Integers are json.Number, exact.
	Default any      `json:"default,omitempty"`
	Minimum *float64 `json:"minimum,omitempty"`
	Maximum *float64 `json:"maximum,omitempty"`
	// Enum lists the allowed values (a combo's choices).
	Enum []any `json:"enum,omitempty"`
	// Description comes from object_info's tooltip, else names the node input.
	Description string `json:"description,omitempty"`
	// Required is true when the parameter has no default.
	Required bool `json:"required,omitempty"`
	// Multiline marks a STRING input edited as multi-line text (prompts).
	Multiline bool `json:"multiline,omitempty"`

	// minExact and maxExact are the bounds' literal JSON text, when known.
	minExact, maxExact json.Number
}

// Violation is one problem with a submission's parameters.
type Violation struct {
	Param   string `json:"param"`
	Message string `json:"message"`
}

// ExactMinimum returns the minimum as exact JSON number text, or "" when there is none.
func (p Param) ExactMinimum() json.Number { return exactBound(p.Minimum, p.minExact) }

// ExactMaximum returns the maximum as exact JSON number text, or "" when there is none.
func (p Param) ExactMaximum() json.Number { return exactBound(p.Maximum, p.maxExact) }

// SetMinimum sets the minimum from exact JSON number text (as object_info gives it).
func (p *Param) SetMinimum(n json.Number) error {
	f, text, err := parseBound(n)
	if err != nil {
		return err
	}
	p.Minimum, p.minExact = f, text
	return nil
}

// SetMaximum sets the maximum from exact JSON number text (as object_info gives it).
func (p *Param) SetMaximum(n json.Number) error {
	f, text, err := parseBound(n)
	if err != nil {
		return err
	}
	p.Maximum, p.maxExact = f, text
	return nil
}

// exactBound returns the exact text when it still matches the float (a caller may have
// changed the float field), else the float's shortest text.
func exactBound(f *float64, exact json.Number) json.Number {
	if f == nil {
		return ""
	}
	if exact != "" {
		if g, err := strconv.ParseFloat(string(exact), 64); err == nil && g == *f {
			return exact
		}
	}
	return json.Number(strconv.FormatFloat(*f, 'g', -1, 64))
}

func parseBound(n json.Number) (*float64, json.Number, error) {
	if !jsonNumber.MatchString(string(n)) || len(n) > maxNumberText {
		return nil, "", fmt.Errorf("template: bound %q is not a number", string(n))
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, "", fmt.Errorf("template: bound %q is out of range", string(n))
	}
	return &f, n, nil
}

type paramWire struct {
	Name        string      `json:"name"`
	Targets     []string    `json:"targets"`
	Type        string      `json:"type"`
	Default     any         `json:"default,omitempty"`
	Minimum     json.Number `json:"minimum,omitempty"`
	Maximum     json.Number `json:"maximum,omitempty"`
	Enum        []any       `json:"enum,omitempty"`
	Description string      `json:"description,omitempty"`
	Required    bool        `json:"required,omitempty"`
	Multiline   bool        `json:"multiline,omitempty"`
}

// MarshalJSON writes the parameter with exact bounds.
func (p Param) MarshalJSON() ([]byte, error) {
	targets := p.Targets
	if targets == nil {
		targets = []string{}
	}
	return json.Marshal(paramWire{
		Name: p.Name, Targets: targets, Type: p.Type, Default: p.Default,
		Minimum: p.ExactMinimum(), Maximum: p.ExactMaximum(), Enum: p.Enum,
		Description: p.Description, Required: p.Required, Multiline: p.Multiline,
	})
}

// UnmarshalJSON reads a parameter keeping numbers exact (json.Number).
func (p *Param) UnmarshalJSON(data []byte) error {
	var w paramWire
	if err := decodeNumbers(data, &w); err != nil {
		return err
	}
	*p = Param{Name: w.Name, Targets: w.Targets, Type: w.Type, Default: w.Default, Enum: w.Enum,
		Description: w.Description, Required: w.Required, Multiline: w.Multiline}
	if w.Minimum != "" {
		if err := p.SetMinimum(w.Minimum); err != nil {
			return err
		}
	}
	if w.Maximum != "" {
		if err := p.SetMaximum(w.Maximum); err != nil {
			return err
		}
	}
	return nil
}

// ParamSpec declares a parameter explicitly in a Definition. Only Name and Targets are
// required; the rest is filled from object_info and the workflow as for discovered
// parameters.
type ParamSpec struct {
	Name string `json:"name"`
	// Targets are input paths whose node selector may be a node id, a unique node title
	// or a unique class name ("KSampler.inputs.seed"); they are resolved to node ids at
	// registration.
	Targets     []string `json:"targets"`
	Type        string   `json:"type,omitempty"`
	Description string   `json:"description,omitempty"`
	Default     any      `json:"default,omitempty"`
	Minimum     *float64 `json:"minimum,omitempty"`
	Maximum     *float64 `json:"maximum,omitempty"`
	Enum        []any    `json:"enum,omitempty"`
	// Required overrides the rule "required when there is no default".
	Required *bool `json:"required,omitempty"`

	minExact, maxExact json.Number
}

type paramSpecWire struct {
	Name        string      `json:"name"`
	Targets     []string    `json:"targets"`
	Type        string      `json:"type,omitempty"`
	Description string      `json:"description,omitempty"`
	Default     any         `json:"default,omitempty"`
	Minimum     json.Number `json:"minimum,omitempty"`
	Maximum     json.Number `json:"maximum,omitempty"`
	Enum        []any       `json:"enum,omitempty"`
	Required    *bool       `json:"required,omitempty"`
}

// MarshalJSON writes the spec with exact bounds.
func (s ParamSpec) MarshalJSON() ([]byte, error) {
	return json.Marshal(paramSpecWire{
		Name: s.Name, Targets: s.Targets, Type: s.Type, Description: s.Description,
		Default: s.Default, Minimum: exactBound(s.Minimum, s.minExact),
		Maximum: exactBound(s.Maximum, s.maxExact), Enum: s.Enum, Required: s.Required,
	})
}

// UnmarshalJSON reads a spec keeping numbers exact (json.Number).
func (s *ParamSpec) UnmarshalJSON(data []byte) error {
	var w paramSpecWire
	if err := decodeNumbers(data, &w); err != nil {
		return err
	}
	*s = ParamSpec{Name: w.Name, Targets: w.Targets, Type: w.Type, Description: w.Description,
		Default: w.Default, Enum: w.Enum, Required: w.Required}
	var err error
	if w.Minimum != "" {
		if s.Minimum, s.minExact, err = parseBound(w.Minimum); err != nil {
			return err
		}
	}
	if w.Maximum != "" {
		if s.Maximum, s.maxExact, err = parseBound(w.Maximum); err != nil {
			return err
		}
	}
	return nil
}

func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("template: trailing data after JSON value")
	}
	return nil
}

// jsonNumber is the grammar of a JSON number.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// maxNumberText bounds the length of a number's text: no real parameter needs more, and
// exact arithmetic on longer ones would let a request burn CPU.
const maxNumberText = 100

// check validates a submitted value against the parameter and returns the value to
// write into the workflow, or a message saying what is wrong.
func (p *Param) check(v any) (any, string) {
	var out any
	switch p.Type {
	case TypeImage:
		return nil, "is an image parameter: give it in images as {\"url\"}, {\"base64\"} or {\"key\"}, not in params"
	case TypeString:
		s, ok := v.(string)
		if !ok {
			return nil, "must be a string, not " + describe(v)
		}
		out = s
	case TypeBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, "must be true or false, not " + describe(v)
		}
		out = b
	case TypeInteger:
		n, msg := toInteger(v)
		if msg != "" {
			return nil, msg
		}
		if msg := p.checkIntRange(n); msg != "" {
			return nil, msg
		}
		out = json.Number(n.String())
	case TypeNumber:
		text, f, msg := toNumber(v)
		if msg != "" {
			return nil, msg
		}
		if p.Minimum != nil && f < *p.Minimum {
			return nil, fmt.Sprintf("%s is below the minimum %s", text, p.ExactMinimum())
		}
		if p.Maximum != nil && f > *p.Maximum {
			return nil, fmt.Sprintf("%s is above the maximum %s", text, p.ExactMaximum())
		}
		out = json.Number(text)
	default:
		return nil, fmt.Sprintf("has unknown type %q", p.Type)
	}
	if len(p.Enum) > 0 && !inEnum(out, p.Enum) {
		return nil, "must be one of " + describeEnum(p.Enum)
	}
	return out, ""
}

func (p *Param) checkIntRange(n *big.Int) string {
	if b := p.ExactMinimum(); b != "" {
		if lo, ok := parseExact(b); ok && new(big.Float).SetInt(n).Cmp(lo) < 0 {
			return fmt.Sprintf("%s is below the minimum %s", n, b)
		}
	}
	if b := p.ExactMaximum(); b != "" {
		if hi, ok := parseExact(b); ok && new(big.Float).SetInt(n).Cmp(hi) > 0 {
			return fmt.Sprintf("%s is above the maximum %s", n, b)
		}
	}
	return ""
}

// parseExact parses JSON number text with enough precision to compare integers up to
// 2^256 exactly.
func parseExact(n json.Number) (*big.Float, bool) {
	if !jsonNumber.MatchString(string(n)) || len(n) > maxNumberText {
		return nil, false
	}
	f, _, err := big.ParseFloat(string(n), 10, 512, big.ToNearestEven)
	if err != nil || f.IsInf() {
		return nil, false
	}
	return f, true
}

// toInteger converts a submitted value to an exact integer. Integral numbers written
// with a fraction or exponent (7.0, 1e3) are integers, as in JSON Schema.
func toInteger(v any) (*big.Int, string) {
	switch x := v.(type) {
	case int:
		return big.NewInt(int64(x)), ""
	case int8:
		return big.NewInt(int64(x)), ""
	case int16:
		return big.NewInt(int64(x)), ""
	case int32:
		return big.NewInt(int64(x)), ""
	case int64:
		return big.NewInt(x), ""
	case uint:
		return new(big.Int).SetUint64(uint64(x)), ""
	case uint8:
		return new(big.Int).SetUint64(uint64(x)), ""
	case uint16:
		return new(big.Int).SetUint64(uint64(x)), ""
	case uint32:
		return new(big.Int).SetUint64(uint64(x)), ""
	case uint64:
		return new(big.Int).SetUint64(x), ""
	case float32:
		return floatToInteger(float64(x))
	case float64:
		return floatToInteger(x)
	case json.Number:
		s := string(x)
		if len(s) > maxNumberText || !jsonNumber.MatchString(s) {
			return nil, "must be an integer, not " + describe(v)
		}
		if f, err := strconv.ParseFloat(s, 64); err != nil || math.IsInf(f, 0) {
			return nil, s + " is out of range"
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return nil, "must be an integer, not " + describe(v)
		}
		if !r.IsInt() {
			return nil, "must be an integer, not " + s
		}
		return new(big.Int).Set(r.Num()), ""
	}
	return nil, "must be an integer, not " + describe(v)
}

func floatToInteger(f float64) (*big.Int, string) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, "must be an integer, not " + strconv.FormatFloat(f, 'g', -1, 64)
	}
	if f != math.Trunc(f) {
		return nil, "must be an integer, not " + strconv.FormatFloat(f, 'g', -1, 64)
	}
	n, _ := big.NewFloat(f).Int(nil)
	return n, ""
}

// toNumber converts a submitted value to its JSON text and float64 value.
func toNumber(v any) (string, float64, string) {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if len(s) > maxNumberText || !jsonNumber.MatchString(s) {
			return "", 0, "must be a number, not " + describe(v)
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) {
			return "", 0, s + " is out of range"
		}
		return s, f, ""
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", 0, "must be a finite number"
		}
		return strconv.FormatFloat(x, 'g', -1, 64), x, ""
	case float32:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "", 0, "must be a finite number"
		}
		return strconv.FormatFloat(f, 'g', -1, 32), f, ""
	}
	if n, msg := toInteger(v); msg == "" {
		f, _ := new(big.Float).SetInt(n).Float64()
		return n.String(), f, ""
	}
	return "", 0, "must be a number, not " + describe(v)
}

func inEnum(v any, enum []any) bool {
	for _, e := range enum {
		if sameValue(v, e) {
			return true
		}
	}
	return false
}

// sameValue compares two JSON values; numbers compare by value (7 equals 7.0).
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	}
	ta, _, ma := toNumber(a)
	tb, _, mb := toNumber(b)
	if ma != "" || mb != "" {
		return false
	}
	fa, oka := parseExact(json.Number(ta))
	fb, okb := parseExact(json.Number(tb))
	return oka && okb && fa.Cmp(fb) == 0
}

// describe names a value's JSON type for messages.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 40 {
			x = x[:37] + "..."
		}
		return fmt.Sprintf("the string %q", x)
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		if len(x) > 40 {
			return "a number"
		}
		return "the number " + string(x)
	case float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprintf("the number %v", x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("a %T", v)
}

func describeEnum(enum []any) string {
	const show = 8
	parts := make([]string, 0, show)
	for i, e := range enum {
		if i == show {
			break
		}
		b, err := json.Marshal(e)
		if err != nil {
			b = []byte(fmt.Sprint(e))
		}
		parts = append(parts, string(b))
	}
	s := strings.Join(parts, ", ")
	if len(enum) > show {
		s += fmt.Sprintf(", … (%d choices)", len(enum))
	}
	return s
}

// normalizeValue turns Go numbers into json.Number so a workflow marshals them exactly.
func normalizeValue(v any) any {
	switch x := v.(type) {
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		n, _ := toInteger(x)
		return json.Number(n.String())
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return v
		}
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
	case float32:
		return json.Number(strconv.FormatFloat(float64(x), 'g', -1, 32))
	}
	return v
}
