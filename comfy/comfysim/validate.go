package comfysim

import (
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
)

// errInternal is a validation step that raised outside the handled paths:
// aiohttp answers 500.
var errInternal = errors.New("comfysim: internal server error")

// vresult is one entry of validate_inputs' `validated` dict.
type vresult struct {
	ok     bool
	errors []any
}

// validator is one run of execution.validate_prompt.
type validator struct {
	s         *Server
	prompt    *object
	keys      []string // validated ids in insertion order
	validated map[string]*vresult
	visiting  map[string]bool
}

func (v *validator) set(id string, r *vresult) {
	if _, ok := v.validated[id]; !ok {
		v.keys = append(v.keys, id)
	}
	v.validated[id] = r
}

// validatePrompt is execution.validate_prompt. It returns whether the prompt
// may be queued, the top-level error, the outputs to execute and
// node_errors; errInternal when ComfyUI would have raised (500).
func (s *Server) validatePrompt(promptV any, partial any, hasPartial bool) (bool, *object, []string, *object, error) {
	var prompt *object
	switch p := promptV.(type) {
	case *object:
		prompt = p
	case []any:
		if len(p) > 0 {
			return false, nil, nil, nil, errInternal
		}
		prompt = newObject()
	case string:
		if p != "" {
			return false, nil, nil, nil, errInternal
		}
		prompt = newObject()
	default:
		return false, nil, nil, nil, errInternal
	}

	var outputs []string
	for _, x := range prompt.Keys() {
		nodeV, _ := prompt.Get(x)
		node, isObj := nodeV.(*object)
		if s.jobsAPI() {
			if verr, err := missingNodeType(s, x, nodeV); verr != nil || err != nil {
				return false, verr, nil, newObject(), err
			}
		}
		if !isObj {
			switch n := nodeV.(type) {
			case string:
				if strings.Contains(n, "class_type") {
					return false, nil, nil, nil, errInternal
				}
			case []any:
				for _, e := range n {
					if pyEqual(e, "class_type") {
						return false, nil, nil, nil, errInternal
					}
				}
			default:
				return false, nil, nil, nil, errInternal
			}
			return false, invalidPrompt("Cannot execute because a node is missing the class_type property.", x), nil, newObject(), nil
		}
		ct, ok := node.Get("class_type")
		if !ok {
			return false, invalidPrompt("Cannot execute because a node is missing the class_type property.", x), nil, newObject(), nil
		}
		switch ct.(type) {
		case []any, *object:
			return false, nil, nil, nil, errInternal // unhashable
		}
		name, _ := ct.(string)
		def := s.classes[name]
		if _, isStr := ct.(string); !isStr || def == nil {
			return false, invalidPrompt("Cannot execute because node "+pyStr(ct)+" does not exist.", x), nil, newObject(), nil
		}
		if def.outputNode {
			in, err := partialContains(partial, hasPartial, x)
			if err != nil {
				return false, nil, nil, nil, err
			}
			if in {
				outputs = append(outputs, x)
			}
		}
	}
	if len(outputs) == 0 {
		return false, obj("type", "prompt_no_outputs", "message", "Prompt has no outputs", "details", "", "extra_info", newObject()), nil, newObject(), nil
	}

	v := &validator{s: s, prompt: prompt, validated: map[string]*vresult{}, visiting: map[string]bool{}}
	var good []string
	type outErr struct {
		id      string
		reasons []any
	}
	var failed []outErr
	nodeErrors := newObject()
	for _, o := range outputs {
		var valid bool
		var reasons []any
		res, perr := v.validateInputs(o)
		if perr != nil {
			reasons = []any{obj("type", "exception_during_validation", "message", "Exception when validating node",
				"details", perr.msg, "extra_info", obj("exception_type", perr.typ, "traceback", validationTraceback()))}
			v.set(o, &vresult{ok: false, errors: reasons})
		} else {
			valid, reasons = res.ok, res.errors
		}
		if valid {
			good = append(good, o)
			continue
		}
		failed = append(failed, outErr{o, reasons})
		for _, id := range v.keys {
			r := v.validated[id]
			if r.ok || len(r.errors) == 0 {
				continue
			}
			ne := nodeErrors.getObject(id)
			if ne == nil {
				class, _ := prompt.getObject(id).getString("class_type")
				ne = obj("errors", r.errors, "dependent_outputs", []any{}, "class_type", class)
				nodeErrors.Set(id, ne)
			}
			deps, _ := ne.Get("dependent_outputs")
			ne.Set("dependent_outputs", append(deps.([]any), o))
		}
	}
	if len(good) == 0 {
		var lines []string
		for _, f := range failed {
			for _, e := range f.reasons {
				eo := e.(*object)
				m, _ := eo.getString("message")
				d, _ := eo.Get("details")
				lines = append(lines, m+": "+pyStr(d))
			}
		}
		return false, obj("type", "prompt_outputs_failed_validation", "message", "Prompt outputs failed validation",
			"details", strings.Join(lines, "\n"), "extra_info", newObject()), nil, nodeErrors, nil
	}
	return true, nil, good, nodeErrors, nil
}

func invalidPrompt(msg, id string) *object {
	return obj("type", "invalid_prompt", "message", msg, "details", "Node ID '#"+id+"'", "extra_info", newObject())
}

// partialContains is `x in partial_execution_list` (None: every output).
func partialContains(partial any, has bool, x string) (bool, error) {
	if !has || partial == nil {
		return true, nil
	}
	switch p := partial.(type) {
	case []any:
		for _, e := range p {
			if pyEqual(e, x) {
				return true, nil
			}
		}
		return false, nil
	case string:
		return strings.Contains(p, x), nil
	case *object:
		return p.Has(x), nil
	}
	return false, errInternal
}

// validateInputs is execution.validate_inputs.
func (v *validator) validateInputs(id string) (*vresult, *pyError) {
	if r, ok := v.validated[id]; ok {
		return r, nil
	}
	if v.visiting[id] {
		return nil, raise("RecursionError", "maximum recursion depth exceeded")
	}
	v.visiting[id] = true
	defer delete(v.visiting, id)

	node := v.prompt.getObject(id)
	inputsV, ok := node.Get("inputs")
	if !ok {
		return nil, raise("KeyError", "'inputs'")
	}
	var inputs *object
	switch in := inputsV.(type) {
	case *object:
		inputs = in
	case []any, string:
		inputs = newObject() // membership tests find nothing: all inputs missing
	default:
		return nil, raise("TypeError", "argument of type '%s' is not iterable", pyTypeName(inputsV))
	}
	class, _ := node.getString("class_type")
	def := v.s.classes[class]

	errs := []any{}
	valid := true
	for _, d := range def.order {
		x := d.name
		val, present := inputs.Get(x)
		if !present {
			if d.category == "required" {
				errs = append(errs, obj("type", "required_input_missing", "message", "Required input is missing",
					"details", x, "extra_info", obj("input_name", x)))
			}
			continue
		}
		info := d.config()
		if l, isList := val.([]any); isList {
			if len(l) != 2 {
				errs = append(errs, obj("type", "bad_linked_input",
					"message", "Bad linked input, must be a length-2 list of [node_id, slot_index]",
					"details", x, "extra_info", obj("input_name", x, "input_config", info, "received_value", val)))
				continue
			}
			oid, perr := v.linkedNode(l[0])
			if perr != nil {
				return nil, perr
			}
			odef := v.s.classes[mustClass(v.prompt, oid)]
			received, perr := returnTypeAt(odef.returnTypes, l[1])
			if perr != nil {
				return nil, perr
			}
			if !validateNodeInput(received, d.typ) {
				errs = append(errs, obj("type", "return_type_mismatch", "message", "Return type mismatch between linked nodes",
					"details", x+", received_type("+pyTypeStr(received)+") mismatch input_type("+pyTypeStr(d.typ)+")",
					"extra_info", obj("input_name", x, "input_config", info, "received_type", received, "linked_node", val)))
				continue
			}
			r, perr := v.validateInputs(oid)
			if perr != nil {
				valid = false
				v.set(oid, &vresult{ok: false, errors: []any{obj("type", "exception_during_inner_validation",
					"message", "Exception when validating inner node", "details", perr.msg,
					"extra_info", obj("input_name", x, "input_config", info, "exception_message", perr.msg,
						"exception_type", perr.typ, "traceback", validationTraceback(), "linked_node", val))}})
				continue
			}
			if !r.ok {
				valid = false
			}
			continue
		}

		if o, isObj := val.(*object); isObj && o.Has("__value__") {
			val, _ = o.Get("__value__")
			inputs.Set(x, val)
		}
		conv, perr := convertInput(d.typ, val)
		if perr != nil {
			typeName := pyStr(d.typ)
			errs = append(errs, obj("type", "invalid_input_type",
				"message", "Failed to convert an input value to a "+typeName+" value",
				"details", x+", "+pyStr(val)+", "+perr.msg,
				"extra_info", obj("input_name", x, "input_config", info, "received_value", val, "exception_message", perr.msg)))
			continue
		}
		if conv != nil {
			val = conv
			inputs.Set(x, val)
		}
		if contains(def.validateInputs, x) {
			continue
		}
		if lo, ok := d.extra.Get("min"); ok {
			below, perr := pyLess(val, lo)
			if perr != nil {
				return nil, perr
			}
			if below {
				errs = append(errs, obj("type", "value_smaller_than_min",
					"message", "Value "+pyStr(val)+" smaller than min of "+pyStr(lo),
					"details", x, "extra_info", obj("input_name", x, "input_config", info, "received_value", val)))
				continue
			}
		}
		if hi, ok := d.extra.Get("max"); ok {
			above, perr := pyLess(hi, val)
			if perr != nil {
				return nil, perr
			}
			if above {
				errs = append(errs, obj("type", "value_bigger_than_max",
					"message", "Value "+pyStr(val)+" bigger than max of "+pyStr(hi),
					"details", x, "extra_info", obj("input_name", x, "input_config", info, "received_value", val)))
				continue
			}
		}
		var options []any
		isCombo := false
		switch t := d.typ.(type) {
		case []any:
			options, isCombo = t, true
		case string:
			if t == "COMBO" {
				isCombo = true
				o, _ := d.extra.Get("options")
				options, _ = o.([]any)
			}
		}
		if isCombo && !containsPy(options, val) {
			var cfg any = info
			var listInfo string
			if len(options) > 20 {
				listInfo = "(list of length " + strconv.Itoa(len(options)) + ")"
				cfg = nil
			} else {
				listInfo = pyRepr(options)
			}
			errs = append(errs, obj("type", "value_not_in_list", "message", "Value not in list",
				"details", x+": '"+pyStr(val)+"' not in "+listInfo,
				"extra_info", obj("input_name", x, "input_config", cfg, "received_value", val)))
			continue
		}
	}

	if len(def.validateInputs) > 0 {
		// get_input_data without an execution list: links are missing (None).
		args := newObject()
		for _, x := range inputs.Keys() {
			if !contains(def.validateInputs, x) {
				continue
			}
			val, _ := inputs.Get(x)
			if _, _, ok := isLink(val); ok {
				args.Set(x, nil)
			} else if def.inputs[x] != nil {
				args.Set(x, val)
			}
		}
		ret, perr := def.validate(v.s, args)
		if perr != nil {
			return nil, perr
		}
		if ret != true {
			for _, x := range args.Keys() {
				details := x
				if ret != false {
					details += " - " + pyStr(ret)
				}
				errs = append(errs, obj("type", "custom_validation_failed", "message", "Custom validation failed for node",
					"details", details, "extra_info", obj("input_name", x)))
			}
		}
	}

	r := &vresult{ok: len(errs) == 0 && valid, errors: errs}
	v.set(id, r)
	return r, nil
}

// linkedNode is prompt[o_id]: the linked id must name a prompt node.
func (v *validator) linkedNode(oid any) (string, *pyError) {
	switch k := oid.(type) {
	case []any, *object:
		return "", raise("TypeError", "unhashable type: '%s'", pyTypeName(oid))
	case string:
		if v.prompt.Has(k) {
			return k, nil
		}
	}
	return "", raise("KeyError", "%s", pyRepr(oid))
}

func mustClass(prompt *object, id string) string {
	c, _ := prompt.getObject(id).getString("class_type")
	return c
}

// returnTypeAt is RETURN_TYPES[val[1]].
func returnTypeAt(types []any, idx any) (any, *pyError) {
	var i int64
	switch x := idx.(type) {
	case *big.Int:
		if !x.IsInt64() {
			return nil, raise("IndexError", "cannot fit 'int' into an index-sized integer")
		}
		i = x.Int64()
	case bool:
		if x {
			i = 1
		}
	default:
		return nil, raise("TypeError", "tuple indices must be integers or slices, not %s", pyTypeName(idx))
	}
	if i < 0 {
		i += int64(len(types))
	}
	if i < 0 || i >= int64(len(types)) {
		return nil, raise("IndexError", "tuple index out of range")
	}
	return types[i], nil
}

// validateNodeInput is comfy_execution/validation.validate_node_input.
func validateNodeInput(received, input any) bool {
	if pyEqual(received, input) {
		return true
	}
	if received == "*" || input == "*" {
		return true
	}
	if _, ok := received.([]any); ok && input == "COMBO" {
		return true
	}
	rs, ok1 := received.(string)
	is, ok2 := input.(string)
	if !ok1 || !ok2 {
		return false
	}
	set := map[string]bool{}
	for _, t := range strings.Split(is, ",") {
		set[strings.TrimSpace(t)] = true
	}
	for _, t := range strings.Split(rs, ",") {
		if set[strings.TrimSpace(t)] {
			return true
		}
	}
	return false
}

// pyTypeStr renders an input type as an f-string does.
func pyTypeStr(t any) string { return pyStr(t) }

func contains(l []string, x string) bool {
	for _, e := range l {
		if e == x {
			return true
		}
	}
	return false
}

func containsPy(l []any, x any) bool {
	for _, e := range l {
		if pyEqual(e, x) {
			return true
		}
	}
	return false
}

// pyLess is a < b for the min/max checks; comparing non-numbers raises.
func pyLess(a, b any) (bool, *pyError) {
	if isNumber(a) && isNumber(b) {
		c, ok := pyCompare(a, b)
		return ok && c < 0, nil
	}
	if sa, ok := a.(string); ok {
		if sb, ok := b.(string); ok {
			return sa < sb, nil
		}
	}
	return false, raise("TypeError", "'<' not supported between instances of '%s' and '%s'", pyTypeName(a), pyTypeName(b))
}

// convertInput applies validate_inputs' int()/float()/str()/bool()
// conversion for INT, FLOAT, STRING and BOOLEAN inputs; nil means unchanged.
func convertInput(typ any, val any) (any, *pyError) {
	t, _ := typ.(string)
	switch t {
	case "INT":
		return pyIntConv(val)
	case "FLOAT":
		return pyFloatConv(val)
	case "STRING":
		return pyStr(val), nil
	case "BOOLEAN":
		return pyTruthy(val), nil
	}
	return nil, nil
}

// pyIntConv is Python's int(val).
func pyIntConv(val any) (any, *pyError) {
	switch v := val.(type) {
	case *big.Int:
		return v, nil
	case bool:
		if v {
			return big.NewInt(1), nil
		}
		return big.NewInt(0), nil
	case pyFloat:
		f := float64(v)
		if math.IsNaN(f) {
			return nil, raise("ValueError", "cannot convert float NaN to integer")
		}
		if math.IsInf(f, 0) {
			return nil, raise("OverflowError", "cannot convert float infinity to integer")
		}
		i, _ := new(big.Float).SetFloat64(math.Trunc(f)).Int(nil)
		return i, nil
	case string:
		if i, ok := parsePyInt(v); ok {
			return i, nil
		}
		return nil, raise("ValueError", "invalid literal for int() with base 10: %s", pyReprString(v))
	}
	return nil, raise("TypeError", "int() argument must be a string, a bytes-like object or a real number, not '%s'", pyTypeName(val))
}

// parsePyInt parses a base-10 literal as int() does: surrounding
// whitespace, a sign, and single underscores between digits.
func parsePyInt(s string) (*big.Int, bool) {
	s = strings.TrimFunc(s, unicode.IsSpace)
	digits, ok := stripUnderscores(strings.TrimLeft(s, "+-"))
	if !ok || len(s)-len(strings.TrimLeft(s, "+-")) > 1 {
		return nil, false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return nil, false
		}
	}
	i, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return nil, false
	}
	if strings.HasPrefix(s, "-") {
		i.Neg(i)
	}
	return i, true
}

// stripUnderscores removes underscores that sit between two digits.
func stripUnderscores(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	if !strings.Contains(s, "_") {
		return s, true
	}
	if strings.HasPrefix(s, "_") || strings.HasSuffix(s, "_") || strings.Contains(s, "__") {
		return "", false
	}
	return strings.ReplaceAll(s, "_", ""), true
}

// pyFloatConv is Python's float(val).
func pyFloatConv(val any) (any, *pyError) {
	switch v := val.(type) {
	case pyFloat:
		return v, nil
	case *big.Int:
		f, acc := new(big.Float).SetInt(v).Float64()
		if math.IsInf(f, 0) && acc != big.Exact {
			return nil, raise("OverflowError", "int too large to convert to float")
		}
		return pyFloat(f), nil
	case bool:
		if v {
			return pyFloat(1), nil
		}
		return pyFloat(0), nil
	case string:
		if f, ok := parsePyFloat(v); ok {
			return pyFloat(f), nil
		}
		return nil, raise("ValueError", "could not convert string to float: %s", pyReprString(v))
	}
	return nil, raise("TypeError", "float() argument must be a string or a real number, not '%s'", pyTypeName(val))
}

func parsePyFloat(s string) (float64, bool) {
	t := strings.TrimFunc(s, unicode.IsSpace)
	body := strings.TrimLeft(t, "+-")
	if len(t)-len(body) > 1 {
		return 0, false
	}
	neg := strings.HasPrefix(t, "-")
	switch strings.ToLower(body) {
	case "inf", "infinity":
		if neg {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	case "nan":
		return math.NaN(), true
	}
	if strings.Contains(body, "_") {
		// underscores only between digits
		for i := 0; i < len(body); i++ {
			if body[i] == '_' && (i == 0 || i == len(body)-1 || !isDigit(body[i-1]) || !isDigit(body[i+1])) {
				return 0, false
			}
		}
		body = strings.ReplaceAll(body, "_", "")
	}
	if body == "" {
		return 0, false
	}
	for _, r := range body {
		if !isDigit(byte(r)) && r != '.' && r != 'e' && r != 'E' && r != '+' && r != '-' {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(body, 64)
	if err != nil {
		var ne *strconv.NumError
		if !errors.As(err, &ne) || !errors.Is(ne.Err, strconv.ErrRange) {
			return 0, false
		}
	}
	if neg {
		f = -f
	}
	return f, true
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// validationTraceback is a plausible traceback.format_tb for an exception
// inside validate_inputs.
func validationTraceback() []any {
	return []any{
		"  File \"/ComfyUI/execution.py\", line 818, in validate_inputs\n    o_class_type = prompt[o_id]['class_type']\n                   ~~~~~~^^^^^^\n",
	}
}

// missingNodeType is execution.py@0.38 validate_prompt's first loop: a node
// without class_type or of an unknown class is a missing_node_type error
// naming the node's _meta.title. A node or _meta that is not a dict makes
// the .get calls raise (500).
func missingNodeType(s *Server, id string, nodeV any) (*object, error) {
	node, ok := nodeV.(*object)
	if !ok {
		return nil, errInternal
	}
	title := func(def any) (any, error) {
		m, has := node.Get("_meta")
		if !has {
			return def, nil
		}
		mo, isObj := m.(*object)
		if !isObj {
			return nil, errInternal
		}
		if t, found := mo.Get("title"); found {
			return t, nil
		}
		return def, nil
	}
	ct, ok := node.Get("class_type")
	if !ok {
		t, err := title(nil)
		if err != nil {
			return nil, err
		}
		label := "ID #" + id
		if pyTruthy(t) {
			label = pyStr(t)
		}
		return obj("type", "missing_node_type",
			"message", "Node '"+label+"' has no class_type. The workflow may be corrupted or a custom node is missing.",
			"details", "Node ID '#"+id+"'",
			"extra_info", obj("node_id", id, "class_type", nil, "node_title", t)), nil
	}
	switch ct.(type) {
	case []any, *object:
		return nil, errInternal // unhashable
	}
	if name, isStr := ct.(string); isStr && s.classes[name] != nil {
		return nil, nil
	}
	t, err := title(ct)
	if err != nil {
		return nil, err
	}
	return obj("type", "missing_node_type",
		"message", "Node '"+pyStr(t)+"' not found. The custom node may not be installed.",
		"details", "Node ID '#"+id+"'",
		"extra_info", obj("node_id", id, "class_type", ct, "node_title", t)), nil
}
