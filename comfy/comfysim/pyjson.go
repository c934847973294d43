package comfysim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// ComfyUI is a Python program: its JSON values are Python dicts (insertion
// ordered), arbitrary precision ints and floats, and it serialises them with
// json.dumps (", " and ": " separators, ASCII only). This file models those
// values so that the simulator keeps key order, keeps 2^64-1 seeds exact, and
// writes the same bytes a real server writes.
//
// A value is one of: nil, bool, string, *big.Int (Python int), pyFloat
// (Python float), []any (list), *object (dict).

// pyFloat is a Python float. It is written with Python's repr (1.0, 1e-05).
type pyFloat float64

// object is a JSON object that keeps insertion order like a Python dict:
// setting an existing key keeps its position.
type object struct {
	keys []string
	vals map[string]any
}

func newObject() *object { return &object{vals: map[string]any{}} }

// obj builds an object from alternating keys and values.
func obj(kv ...any) *object {
	o := &object{keys: make([]string, 0, len(kv)/2), vals: make(map[string]any, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		o.Set(kv[i].(string), kv[i+1])
	}
	return o
}

func (o *object) Len() int {
	if o == nil {
		return 0
	}
	return len(o.keys)
}

func (o *object) Keys() []string {
	if o == nil {
		return nil
	}
	return o.keys
}

func (o *object) Get(k string) (any, bool) {
	if o == nil {
		return nil, false
	}
	v, ok := o.vals[k]
	return v, ok
}

func (o *object) Has(k string) bool {
	_, ok := o.Get(k)
	return ok
}

// Set adds k at the end, or replaces its value where it is. The zero object is
// ready to use.
func (o *object) Set(k string, v any) {
	if o.vals == nil {
		o.vals = map[string]any{}
	}
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) Delete(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	for i, key := range o.keys {
		if key == k {
			o.keys = append(o.keys[:i:i], o.keys[i+1:]...)
			break
		}
	}
}

// getObject returns the member k when it is an object.
func (o *object) getObject(k string) *object {
	v, _ := o.Get(k)
	m, _ := v.(*object)
	return m
}

func (o *object) getString(k string) (string, bool) {
	v, _ := o.Get(k)
	s, ok := v.(string)
	return s, ok
}

// deepCopy copies lists and objects; scalars are immutable.
func deepCopy(v any) any {
	switch v := v.(type) {
	case *object:
		if v == nil {
			return (*object)(nil)
		}
		c := &object{keys: append([]string(nil), v.keys...), vals: make(map[string]any, len(v.vals))}
		for k, x := range v.vals {
			c.vals[k] = deepCopy(x)
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, x := range v {
			c[i] = deepCopy(x)
		}
		return c
	default:
		return v
	}
}

func copyObject(o *object) *object {
	c, _ := deepCopy(o).(*object)
	return c
}

// errJSON reports a body that is not valid JSON (aiohttp answers 500).
var errJSON = errors.New("comfysim: invalid JSON")

// decodeJSON parses one JSON document into Python-like values. Numbers keep
// their exact value (json.Decoder.UseNumber): integers become *big.Int,
// anything with a fraction or exponent a pyFloat. Trailing data is an error,
// as for Python's json.loads.
func decodeJSON(r io.Reader) (any, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errJSON, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: extra data", errJSON)
	}
	return v, nil
}

func decodeJSONBytes(b []byte) (any, error) { return decodeJSON(bytes.NewReader(b)) }

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	return decodeToken(dec, tok)
}

func decodeToken(dec *json.Decoder, tok json.Token) (any, error) {
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := newObject()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				o.Set(k, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return o, nil
		case '[':
			l := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return l, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		return parseNumber(string(t)), nil
	case string, bool, nil:
		return t, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// parseNumber converts a JSON number literal the way Python's json module does.
func parseNumber(s string) any {
	if !strings.ContainsAny(s, ".eE") {
		if i, ok := new(big.Int).SetString(s, 10); ok {
			return i
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		// ParseFloat reports out of range values with ±Inf, as Python does.
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return pyFloat(f)
		}
		return pyFloat(math.NaN())
	}
	return pyFloat(f)
}

// encodePy serialises v exactly like Python's json.dumps with default settings.
func encodePy(v any) []byte {
	var b bytes.Buffer
	writePy(&b, v)
	return b.Bytes()
}

func writePy(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if v {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case string:
		writePyString(b, v)
	case *big.Int:
		if v == nil {
			b.WriteString("null")
			return
		}
		b.WriteString(v.String())
	case int:
		b.WriteString(strconv.Itoa(v))
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	case uint64:
		b.WriteString(strconv.FormatUint(v, 10))
	case pyFloat:
		b.WriteString(pyFloatJSON(float64(v)))
	case float64:
		b.WriteString(pyFloatJSON(v))
	case []any:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writePy(b, x)
		}
		b.WriteByte(']')
	case []string:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writePyString(b, x)
		}
		b.WriteByte(']')
	case *object:
		if v == nil {
			b.WriteString("null")
			return
		}
		b.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writePyString(b, k)
			b.WriteString(": ")
			writePy(b, v.vals[k])
		}
		b.WriteByte('}')
	default:
		// Simulated runtime objects never reach the wire; render them as
		// Python would render their str() if they did.
		writePyString(b, pyStr(v))
	}
}

const hexDigits = "0123456789abcdef"

// writePyString writes s as json.dumps(ensure_ascii=True) does.
func writePyString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r >= 0x20 && r < 0x7f {
				b.WriteRune(r)
				continue
			}
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				writeU(b, r1)
				writeU(b, r2)
				continue
			}
			writeU(b, r)
		}
	}
	b.WriteByte('"')
}

func writeU(b *bytes.Buffer, r rune) {
	b.WriteString(`\u`)
	b.WriteByte(hexDigits[(r>>12)&0xf])
	b.WriteByte(hexDigits[(r>>8)&0xf])
	b.WriteByte(hexDigits[(r>>4)&0xf])
	b.WriteByte(hexDigits[r&0xf])
}

// pyFloatJSON is json.dumps of a float: repr, with NaN and Infinity spelled
// as Python's json module spells them.
func pyFloatJSON(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return pyFloatRepr(f)
}

// pyFloatRepr is Python's repr(float): the shortest round-tripping digits,
// positional between 1e-4 and 1e16, scientific outside, always with a '.'
// or an exponent.
func pyFloatRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // -d.ddddde±XX
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, expStr, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	var out string
	if exp >= -4 && exp < 16 {
		switch {
		case exp < 0:
			out = "0." + strings.Repeat("0", -exp-1) + digits
		case len(digits) <= exp+1:
			out = digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
		default:
			out = digits[:exp+1] + "." + digits[exp+1:]
		}
	} else {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		sign := "+"
		if exp < 0 {
			sign = "-"
			exp = -exp
		}
		out = fmt.Sprintf("%se%s%02d", m, sign, exp)
	}
	if neg {
		out = "-" + out
	}
	return out
}

// pyStringer is implemented by simulated runtime objects (images, models)
// so that errors and PreviewAny render them like Python's str().
type pyStringer interface{ pyStr() string }

// pyStr is Python's str(v).
func pyStr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case string:
		return v
	case *big.Int:
		return v.String()
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case pyFloat:
		return pyFloatRepr(float64(v))
	case float64:
		return pyFloatRepr(v)
	case pyStringer:
		return v.pyStr()
	}
	return pyRepr(v)
}

// pyRepr is Python's repr(v).
func pyRepr(v any) string {
	switch v := v.(type) {
	case string:
		return pyReprString(v)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = pyRepr(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []string:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = pyReprString(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *object:
		if v == nil {
			return "None"
		}
		parts := make([]string, 0, len(v.keys))
		for _, k := range v.keys {
			parts = append(parts, pyReprString(k)+": "+pyRepr(v.vals[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case pyStringer:
		return v.pyStr()
	}
	return pyStr(v)
}

// pyReprString quotes s the way Python's repr(str) does.
func pyReprString(s string) string {
	quote := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == rune(quote) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x7f:
			b.WriteRune(r)
		case r == utf8.RuneError || !unicode.IsPrint(r):
			switch {
			case r <= 0xff:
				fmt.Fprintf(&b, `\x%02x`, r)
			case r <= 0xffff:
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(quote)
	return b.String()
}

// pyTypeName is type(v).__name__.
func pyTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case string:
		return "str"
	case *big.Int, int, int64:
		return "int"
	case pyFloat, float64:
		return "float"
	case []any:
		return "list"
	case *object:
		return "dict"
	}
	return "object"
}

// pyTruthy is Python's bool(v).
func pyTruthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != ""
	case *big.Int:
		return v.Sign() != 0
	case pyFloat:
		return v != 0
	case []any:
		return len(v) > 0
	case *object:
		return v.Len() > 0
	}
	return true
}

// asRat returns the exact value of a Python number (bool, int or finite float).
func asRat(v any) (*big.Rat, bool) {
	switch v := v.(type) {
	case bool:
		if v {
			return big.NewRat(1, 1), true
		}
		return new(big.Rat), true
	case *big.Int:
		return new(big.Rat).SetInt(v), true
	case int:
		return big.NewRat(int64(v), 1), true
	case pyFloat:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		return new(big.Rat).SetFloat64(f), true
	}
	return nil, false
}

func isNumber(v any) bool {
	switch v.(type) {
	case bool, *big.Int, int, pyFloat:
		return true
	}
	return false
}

// pyCompare compares two Python numbers: -1, 0, 1. ok is false when the
// comparison is always False in Python (NaN) or the values are not numbers.
func pyCompare(a, b any) (int, bool) {
	fa, aIsF := a.(pyFloat)
	fb, bIsF := b.(pyFloat)
	if (aIsF && math.IsNaN(float64(fa))) || (bIsF && math.IsNaN(float64(fb))) {
		return 0, false
	}
	if aIsF && math.IsInf(float64(fa), 0) || bIsF && math.IsInf(float64(fb), 0) {
		if !isNumber(a) || !isNumber(b) {
			return 0, false
		}
		ia, ib := 0, 0
		if aIsF && math.IsInf(float64(fa), 1) {
			ia = 1
		} else if aIsF && math.IsInf(float64(fa), -1) {
			ia = -1
		}
		if bIsF && math.IsInf(float64(fb), 1) {
			ib = 1
		} else if bIsF && math.IsInf(float64(fb), -1) {
			ib = -1
		}
		switch {
		case ia < ib:
			return -1, true
		case ia > ib:
			return 1, true
		}
		return 0, true
	}
	ra, ok1 := asRat(a)
	rb, ok2 := asRat(b)
	if !ok1 || !ok2 {
		return 0, false
	}
	return ra.Cmp(rb), true
}

// pyEqual is Python's == for JSON values (1 == 1.0 == True).
func pyEqual(a, b any) bool {
	if isNumber(a) && isNumber(b) {
		c, ok := pyCompare(a, b)
		return ok && c == 0
	}
	switch a := a.(type) {
	case nil:
		return b == nil
	case string:
		s, ok := b.(string)
		return ok && s == a
	case []any:
		l, ok := b.([]any)
		if !ok || len(l) != len(a) {
			return false
		}
		for i := range a {
			if !pyEqual(a[i], l[i]) {
				return false
			}
		}
		return true
	case *object:
		o, ok := b.(*object)
		if !ok || o.Len() != a.Len() {
			return false
		}
		for _, k := range a.keys {
			x, ok := o.Get(k)
			if !ok || !pyEqual(a.vals[k], x) {
				return false
			}
		}
		return true
	}
	return false
}

// canonical writes a hashable, order-independent rendering of v for cache
// keys: equal Python values (1, 1.0, True) render the same, dicts are
// rendered as sorted sets like to_hashable's frozenset. NaN never equals
// anything, so it renders uniquely.
func canonical(b *strings.Builder, v any, nonce func() string) {
	switch v := v.(type) {
	case nil:
		b.WriteString("N")
	case bool:
		if v {
			b.WriteString("n1")
		} else {
			b.WriteString("n0")
		}
	case *big.Int:
		b.WriteString("n" + v.String())
	case pyFloat:
		f := float64(v)
		switch {
		case math.IsNaN(f):
			b.WriteString("nan#" + nonce())
		case math.IsInf(f, 0) || f != math.Trunc(f):
			b.WriteString("f" + pyFloatRepr(f))
		default:
			bf := new(big.Float).SetFloat64(f)
			i, _ := bf.Int(nil)
			b.WriteString("n" + i.String())
		}
	case string:
		b.WriteString("s" + strconv.Quote(v))
	case []any:
		b.WriteString("(")
		for i, x := range v {
			if i > 0 {
				b.WriteString(",")
			}
			canonical(b, x, nonce)
		}
		b.WriteString(")")
	case *object:
		items := make([]string, 0, v.Len())
		for _, k := range v.keys {
			var ib strings.Builder
			ib.WriteString(strconv.Quote(k) + ":")
			canonical(&ib, v.vals[k], nonce)
			items = append(items, ib.String())
		}
		sort.Strings(items)
		b.WriteString("{" + strings.Join(items, ",") + "}")
	default:
		b.WriteString("?" + pyStr(v))
	}
}
