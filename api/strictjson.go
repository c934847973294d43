package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/comfyq/comfyq/job"
)

// checkStrict refuses what encoding/json would read loosely, naming the field: a name
// given twice in one object (encoding/json keeps the last), invalid UTF-8 (it becomes
// U+FFFD), and a field of the target type spelled in another case ("WORKFLOW" for
// "workflow", which encoding/json matches). The JSON tokenizer of encoding/json/v2
// (github.com/go-json-experiment/json/jsontext) finds the first two; the case check
// walks the target type beside the tokens. Malformed JSON is left to the decoder,
// which describes it.
func checkStrict(data []byte, target reflect.Type) error {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	// frames are the open objects and arrays: the Go type of their members (nil when
	// unknown or opaque) and, for objects, whether a name comes next.
	type frame struct {
		t        reflect.Type
		obj      bool
		wantName bool
		member   reflect.Type
	}
	var stack []frame
	next := target // the type of the value about to be read
	for {
		tok, err := dec.ReadToken()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return strictError(err, data)
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].wantName && tok.Kind() == '"' {
			f := &stack[n-1]
			f.wantName = false
			name := tok.String()
			member, err := memberType(f.t, name)
			if err != nil {
				return &job.SpecError{Code: CodeInvalidRequest, Field: pointerField(dec.StackPointer()), Message: err.Error()}
			}
			f.member = member
			continue
		}
		var cur reflect.Type
		if n := len(stack); n > 0 {
			cur = stack[n-1].member
			if stack[n-1].obj {
				stack[n-1].wantName = true
			}
		} else {
			cur = next
		}
		switch tok.Kind() {
		case '{':
			t := opaque(cur)
			stack = append(stack, frame{t: t, obj: true, wantName: true})
		case '[':
			t := opaque(cur)
			var elem reflect.Type
			if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
				elem = t.Elem()
			}
			stack = append(stack, frame{t: t, member: elem})
		case '}', ']':
			stack = stack[:len(stack)-1]
			if n := len(stack); n > 0 && stack[n-1].obj {
				stack[n-1].wantName = true
			}
		}
		if len(stack) == 0 && tok.Kind() != '{' && tok.Kind() != '[' {
			// One top-level value read; what follows is the decoder's to judge.
			return nil
		}
	}
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// opaque returns t without pointers, or nil when its members cannot be known: an
// interface, or a type that decodes itself (json.RawMessage, the workflow).
func opaque(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface {
		return nil
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return nil
	}
	return t
}

// memberType returns the type of member name of an object of type t (nil: unknown).
// A struct field matched only in another case is an error; an unknown field is left
// to the decoder (DisallowUnknownFields).
func memberType(t reflect.Type, name string) (reflect.Type, error) {
	if t == nil {
		return nil, nil
	}
	switch t.Kind() {
	case reflect.Map:
		return t.Elem(), nil
	case reflect.Struct:
	default:
		return nil, nil
	}
	var folded string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f.Type, nil
		}
		if strings.EqualFold(tag, name) {
			folded = tag
		}
	}
	if folded != "" {
		return nil, fmt.Errorf("unknown field %q: field names are case-sensitive (did you mean %q?)", name, folded)
	}
	return nil, nil
}

func strictError(err error, data []byte) error {
	var se *jsontext.SyntacticError
	if !errors.As(err, &se) {
		return nil
	}
	field := pointerField(se.JSONPointer)
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName):
		return &job.SpecError{Code: CodeInvalidRequest, Field: field,
			Message: fmt.Sprintf("%s is given twice in one object; give each name once", orBody(field))}
	case !utf8.Valid(data):
		return &job.SpecError{Code: CodeInvalidRequest, Field: field,
			Message: fmt.Sprintf("%s holds bytes that are not UTF-8; JSON text is UTF-8", orBody(field))}
	}
	// Malformed JSON: the decoder's message says where.
	return nil
}

// pointerField turns a JSON pointer ("/images/1.inputs.image/url") into the dotted field
// names of error answers ("images.1.inputs.image.url").
func pointerField(p jsontext.Pointer) string {
	var parts []string
	for tok := range p.Tokens() {
		parts = append(parts, tok)
	}
	return strings.Join(parts, ".")
}
