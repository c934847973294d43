package comfy

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
	"unicode/utf8"
)

// The frame scanner must read every frame as encoding/json did (the reference below,
// the code it replaced): the same type, data and prompt id, the same frames refused,
// the same `executing` frames taken as a prompt's end.

func referenceParseTextFrame(b []byte) (typ string, data json.RawMessage, promptID string, err error) {
	var f struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return "", nil, "", err
	}
	var v struct {
		PromptID any `json:"prompt_id"`
	}
	if json.Unmarshal(f.Data, &v) == nil {
		promptID, _ = v.PromptID.(string)
	}
	return f.Type, f.Data, promptID, nil
}

func referenceExecutingDone(data json.RawMessage) bool {
	var v struct {
		Node json.RawMessage `json:"node"`
	}
	if json.Unmarshal(data, &v) != nil {
		return false
	}
	return len(v.Node) == 0 || string(v.Node) == "null"
}

var frameCases = []string{
	`{"type":"status","data":{"status":{"exec_info":{"queue_remaining":1}},"sid":"abc"}}`,
	`{"type":"execution_start","data":{"prompt_id":"P","timestamp":1728600000000}}`,
	`{"type":"executing","data":{"node":null,"prompt_id":"P"}}`,
	`{"type":"executing","data":{"node":"2","display_node":"2","prompt_id":"P"}}`,
	`{"type":"executing","data":{"prompt_id":"P"}}`,
	`{"type":"executing","data":null}`,
	`{"type":"executing"}`,
	`{"type":"executing","data":{"node":{"a":[1]},"prompt_id":"P"}}`,
	`{"type":"executing","data":{"NODE":"3","Prompt_ID":"Q"}}`,
	`{"type":"executing","data":{"prompt_id":"P","prompt_id":7}}`,
	`{"type":"executing","data":{"prompt_id":7,"prompt_id":"P"}}`,
	`{"type":"executed","data":{"node":"2","output":{"images":[{"filename":"a.png","subfolder":"","type":"output"}]},"prompt_id":"P"}}`,
	`{"TYPE":"progress","Data":{"value":3,"max":20,"prompt_id":"P","node":"3"}}`,
	`{"type":"a","type":"b","data":1,"data":{"prompt_id":"late"}}`,
	`{"type":"custom","data":[1,2]}`,
	`{"type":"custom","data":"x","extra":{"deep":[{"a":null}]}}`,
	` {"type" : "spaced" , "data" : { "prompt_id" : "P" } } `,
	`{"type":"status"}`,
	`{"type":"","data":{}}`,
	`{"type":null,"data":{}}`,
	`{"type":7,"data":{}}`,
	`{"type":["x"],"data":{}}`,
	`{"type":"x"} {"type":"y"}`,
	`{"type":"x"}x`,
	`{"type":"x",}`,
	`{"type":"x"`,
	`null`,
	`[1]`,
	`"s"`,
	``,
	`{"type":"esc\u0041ped","data":{"prompt_id":"\u00e9"}}`,
	`{"ty\u0070e":"named with an escape","d\u0061ta":{"prompt\u005fid":"P","n\u006fde":null}}`,
}

func checkFrameLikeReference(t *testing.T, b []byte) {
	t.Helper()
	wantType, wantData, wantID, wantErr := referenceParseTextFrame(b)
	if wantErr == nil && wantType == "" {
		wantErr = errors.New("a frame without type is refused")
	}
	ev, err := parseTextFrame(b, time.Unix(0, 0))
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%q: error %v, encoding/json's %v", b, err, wantErr)
	}
	if err != nil {
		return
	}
	if ev.Type != wantType || string(ev.Data) != string(wantData) || ev.PromptID != wantID {
		t.Fatalf("%q: read type %q data %q prompt %q, encoding/json %q %q %q", b, ev.Type, ev.Data, ev.PromptID, wantType, wantData, wantID)
	}
	if done, want := executingDone(Event{Type: EventExecuting, Data: ev.Data}), referenceExecutingDone(ev.Data); done != want {
		t.Fatalf("%q: executing done %v, encoding/json %v", b, done, want)
	}
}

func TestFrameReadAsEncodingJSONReadsIt(t *testing.T) {
	for _, c := range frameCases {
		checkFrameLikeReference(t, []byte(c))
	}
	ev, err := parseTextFrame([]byte(`{"type":"executing","data":{"node":null,"prompt_id":"P"}}`), time.Unix(0, 0))
	if err != nil || ev.PromptID != "P" || !executingDone(ev) {
		t.Fatalf("executing null of P: %+v %v", ev, err)
	}
}

func FuzzFrameReadAsEncodingJSON(f *testing.F) {
	for _, c := range frameCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) {
			// encoding/json turns invalid UTF-8 in names and strings into U+FFFD; ComfyUI
			// sends ASCII (Python's json.dumps escapes the rest).
			return
		}
		checkFrameLikeReference(t, b)
	})
}

// BenchmarkParseTextFrame reads the frames of one prompt as a node sends them, with
// the scanner and with the encoding/json code it replaced, side by side.
func BenchmarkParseTextFrame(b *testing.B) {
	frames := [][]byte{
		[]byte(`{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 3}}}}`),
		[]byte(`{"type": "execution_start", "data": {"prompt_id": "0f6b3c1e-8a5d-4b7e-9c2a-1d3e5f7a9b0c", "timestamp": 1765000000000}}`),
		[]byte(`{"type": "execution_cached", "data": {"nodes": [], "prompt_id": "0f6b3c1e-8a5d-4b7e-9c2a-1d3e5f7a9b0c", "timestamp": 1765000000001}}`),
		[]byte(`{"type": "executing", "data": {"node": "1", "display_node": "1", "prompt_id": "0f6b3c1e-8a5d-4b7e-9c2a-1d3e5f7a9b0c"}}`),
		[]byte(`{"type": "executing", "data": {"node": "2", "display_node": "2", "prompt_id": "0f6b3c1e-8a5d-4b7e-9c2a-1d3e5f7a9b0c"}}`),
		[]byte(`{"type": "executed", "data": {"node": "2", "display_node": "2", "output": {"images": [{"filename": "ComfyUI_00001_.png", "subfolder": "", "type": "output"}]}, "prompt_id": "0f6b3c1e-8a5d-4b7e-9c2a-1d3e5f7a9b0c"}}`),
		[]byte(`{"type": "execution_success", "data": {"prompt_id": "0f6b3c1e-8a5d-4b7e-9c2a-1d3e5f7a9b0c", "timestamp": 1765000000005}}`),
		[]byte(`{"type": "executing", "data": {"node": null, "prompt_id": "0f6b3c1e-8a5d-4b7e-9c2a-1d3e5f7a9b0c"}}`),
	}
	b.Run("scanner", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, f := range frames {
				ev, err := parseTextFrame(f, time.Time{})
				if err != nil {
					b.Fatal(err)
				}
				_ = executingDone(ev)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, f := range frames {
				typ, data, _, err := referenceParseTextFrame(f)
				if err != nil {
					b.Fatal(err)
				}
				if typ == EventExecuting {
					_ = referenceExecutingDone(data)
				}
			}
		}
	})
}
