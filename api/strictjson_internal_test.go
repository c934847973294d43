package api

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/comfyq/comfyq/internal/fixtures"
	"github.com/comfyq/comfyq/job"
)

// BenchmarkDecodeSubmission measures the strict reading of a submission body beside
// encoding/json's own decoding of it, which it precedes.
func BenchmarkDecodeSubmission(b *testing.B) {
	wf := fixtures.ReadWorkflow(b, "bypass_multi_output_ltxv.ui.json")
	body, err := json.Marshal(map[string]any{"workflow": json.RawMessage(wf), "metadata": map[string]any{"user": "42"}})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.Run("encoding_json", func(b *testing.B) {
		for b.Loop() {
			var spec job.Spec
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			dec.UseNumber()
			if err := dec.Decode(&spec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("checkStrict", func(b *testing.B) {
		for b.Loop() {
			if err := checkStrict(body, reflect.TypeFor[*job.Spec]()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decodeJSON", func(b *testing.B) {
		for b.Loop() {
			var spec job.Spec
			if err := decodeJSON(httptest.NewRequest("POST", "/v1/jobs", bytes.NewReader(body)), &spec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestCheckStrict(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeFor[*job.Spec]()
	for body, field := range map[string]string{
		`{"workflow": {}, "workflow": {}}`:                                     "workflow",
		`{"Workflow": {}}`:                                                     "Workflow",
		`{"webhook": {"url": "x", "Events": []}}`:                              "webhook.Events",
		`{"images": {"a": {"KEY": "k"}}}`:                                      "images.a.KEY",
		`{"metadata": {"A": 1, "a": 2}}`:                                       "",
		`{"set": {"1.inputs.x": {"a": 1, "b": {"c": [1, {"d": 1, "d": 2}]}}}}`: "set.1.inputs.x.b.c.1.d",
		"{\"queue\": \"\xff\"}":                                                "queue",
		`[1, 2]`:                                                               "",
		`{"workflow": `:                                                        "",
	} {
		err := checkStrict([]byte(body), typ)
		if field == "" {
			if err != nil {
				t.Errorf("%s: %v", body, err)
			}
			continue
		}
		se, ok := err.(*job.SpecError)
		if !ok || se.Field != field || se.Code != CodeInvalidRequest {
			t.Errorf("%s: want field %q, got %v", body, field, err)
		}
	}
}
