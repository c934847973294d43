package comfysim

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

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
