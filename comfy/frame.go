package comfy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// A node sends a few JSON frames per prompt, and the stream reads every one of them:
// its type, its data and the prompt it is about. Reading them with encoding/json took
// three reflective decodes of each frame (the frame, then data.prompt_id, then
// data.node for `executing`): 5 % of a worker's CPU with 5 ms prompts. The scanner
// here walks the frame's tokens once with the tokenizer of encoding/json/v2
// (jsontext) and keeps encoding/json's reading of these names: matched without
// regard to case, the last of a repeated name wins, invalid UTF-8 allowed.

// frameOptions make the tokenizer as lenient as encoding/json.
var frameOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// A frameReader is a tokenizer and its input, kept in a pool: a new tokenizer costs
// more than the scan of a frame.
type frameReader struct {
	r   bytes.Reader
	dec *jsontext.Decoder
}

var frameReaders = sync.Pool{New: func() any {
	fr := &frameReader{}
	fr.dec = jsontext.NewDecoder(&fr.r, frameOptions...)
	return fr
}}

// readerOf returns a pooled tokenizer over b; give it back with release.
func readerOf(b []byte) *frameReader {
	fr := frameReaders.Get().(*frameReader)
	fr.r.Reset(b)
	fr.dec.Reset(&fr.r, frameOptions...)
	return fr
}

func (fr *frameReader) release() {
	fr.r.Reset(nil)
	fr.dec.Reset(&fr.r, frameOptions...)
	frameReaders.Put(fr)
}

// nameIs reports whether v, a JSON string read from the input, is name regardless
// of case, without making a string of it when it holds no escape.
func nameIs(v jsontext.Value, name string) bool {
	if len(v) < 2 {
		return false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return bytes.EqualFold(v[1:len(v)-1], []byte(name))
	}
	return strings.EqualFold(stringOf(v), name)
}

// stringOf unquotes v, a JSON string read from the input.
func stringOf(v jsontext.Value) string {
	if len(v) >= 2 && bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1])
	}
	u, _ := jsontext.AppendUnquote(nil, v) // valid: the tokenizer read it
	return string(u)
}

// eachMember reads the members of the object whose '{' dec has just read, and its
// '}': member gets each name and reads the value after it.
func eachMember(dec *jsontext.Decoder, member func(name jsontext.Value) error) error {
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			return err
		}
		if err := member(name); err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// parseTextFrame decodes a JSON frame {"type": …, "data": …}.
func parseTextFrame(b []byte, received time.Time) (Event, error) {
	typ, data, err := scanFrame(b)
	if err != nil {
		return Event{}, fmt.Errorf("comfy: bad WebSocket message: %w", err)
	}
	if typ == "" {
		return Event{}, fmt.Errorf("comfy: WebSocket message without type")
	}
	ev := Event{Type: typ, Data: data, Received: received}
	ev.PromptID = promptIDOf(data)
	return ev, nil
}

// scanFrame returns the frame's type and a copy of its data (nil when absent). A type
// that is not a string is an error; null is no type.
func scanFrame(b []byte) (typ string, data []byte, err error) {
	fr := readerOf(b)
	defer fr.release()
	dec := fr.dec
	tok, err := dec.ReadToken()
	if err != nil {
		return "", nil, err
	}
	switch tok.Kind() {
	case 'n':
		return "", nil, atEOF(dec)
	case '{':
	default:
		return "", nil, fmt.Errorf("frame is a JSON %s, not an object", kindName(tok.Kind()))
	}
	var typeErr error
	err = eachMember(dec, func(name jsontext.Value) error {
		switch {
		case nameIs(name, "type"):
			switch k := dec.PeekKind(); k {
			case '"', 'n':
				v, readErr := dec.ReadValue()
				typ = ""
				if k == '"' {
					typ = stringOf(v)
				}
				return readErr
			default:
				// Read on, as encoding/json does, and fail at the end.
				typeErr = fmt.Errorf("type is a JSON %s, not a string", kindName(k))
				return dec.SkipValue()
			}
		case nameIs(name, "data"):
			v, readErr := dec.ReadValue()
			data = bytes.Clone(v)
			return readErr
		}
		return dec.SkipValue()
	})
	if err != nil {
		return "", nil, err
	}
	if err := atEOF(dec); err != nil {
		return "", nil, err
	}
	if typeErr != nil {
		return "", nil, typeErr
	}
	return typ, data, nil
}

// dataFields reads the two members of a frame's data that route it: prompt_id (a
// string, else "") and whether node is null or absent. object is false when data is
// not a JSON object.
func dataFields(data []byte) (promptID string, nodeNull, object bool) {
	fr := readerOf(data)
	defer fr.release()
	dec := fr.dec
	tok, err := dec.ReadToken()
	switch {
	case err != nil:
		return "", false, false
	case tok.Kind() == 'n': // as encoding/json reads null into a struct: nothing set
		return "", true, atEOF(dec) == nil
	case tok.Kind() != '{':
		return "", false, false
	}
	nodeNull = true
	err = eachMember(dec, func(name jsontext.Value) error {
		switch {
		case nameIs(name, "prompt_id"):
			promptID = ""
			if dec.PeekKind() == '"' {
				v, readErr := dec.ReadValue()
				promptID = stringOf(v)
				return readErr
			}
		case nameIs(name, "node"):
			nodeNull = dec.PeekKind() == 'n'
		}
		return dec.SkipValue()
	})
	if err != nil || atEOF(dec) != nil {
		return "", false, false
	}
	return promptID, nodeNull, true
}

// promptIDOf extracts data.prompt_id, or "".
func promptIDOf(data []byte) string {
	id, _, _ := dataFields(data)
	return id
}

// executingDone reports whether ev is `executing` with node null (or absent): the
// prompt's end.
func executingDone(ev Event) bool {
	if ev.Type != EventExecuting {
		return false
	}
	_, nodeNull, object := dataFields(ev.Data)
	return object && nodeNull
}

// atEOF reports an error unless the input holds nothing after the value read.
func atEOF(dec *jsontext.Decoder) error {
	_, err := dec.ReadToken()
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return err
	}
	return errors.New("data after the top-level value")
}

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "boolean"
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "value"
}
