package comfysim

import (
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

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
