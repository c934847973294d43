package comfysim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzPostPrompt sends arbitrary bodies to POST /prompt: the answer is
// always 200, 400 or 500 (never a panic), 200 and 400 with a JSON body.
func FuzzPostPrompt(f *testing.F) {
	for _, seed := range []string{
		`{"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "f"}}}}`,
		`{"prompt": {"1": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "f"}}}}`,
		`{"prompt": {"1": {"class_type": "KSampler", "inputs": {"seed": "x", "steps": [1, 2, 3]}}, "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", -1]}}}, "number": "1e3"}`,
		`{"prompt": {"a": {"class_type": "LoadImage", "inputs": {"image": "../../etc/passwd"}}, "b": {"class_type": "PreviewImage", "inputs": {"images": ["a", true]}}}, "front": 1}`,
		`{"prompt": {"1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}}, "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}, "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "c"}}}}`,
		`{"prompt": [], "partial_execution_targets": "12"}`,
		`{"prompt": {"1": []}}`,
		`[1, 2]`, `"prompt"`, `null`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	s, err := New(Options{NodeDelay: time.Nanosecond, StepDelay: time.Nanosecond})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/prompt", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest:
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%d with invalid JSON %q", rec.Code, rec.Body.Bytes())
			}
		case http.StatusInternalServerError:
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}

// FuzzDecodeJSON: the decoder accepts exactly valid JSON, and what it
// writes back decodes to an equal value.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{`{"a": [1, 2.5, "x", null, true, {"b": -0}]}`, `18446744073709551615`, `1e400`, `"\ud83d\ude00é"`, `{"a":1,"a":2}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeJSONBytes(b)
		if (err == nil) != json.Valid(b) {
			t.Fatalf("decode error %v but json.Valid %v for %q", err, json.Valid(b), b)
		}
		if err != nil {
			return
		}
		out := encodePy(v)
		v2, err := decodeJSONBytes(out)
		if err != nil {
			// Python writes NaN/Infinity, which are not JSON.
			if bytes.Contains(out, []byte("Infinity")) || bytes.Contains(out, []byte("NaN")) {
				return
			}
			t.Fatalf("re-decode %q: %v", out, err)
		}
		if !pyEqual(v, v2) {
			t.Fatalf("%q → %q changed the value", b, out)
		}
	})
}
