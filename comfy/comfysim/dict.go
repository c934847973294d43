package comfysim

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
