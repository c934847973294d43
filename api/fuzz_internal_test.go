package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/template"
)

// FuzzDecodeSubmission feeds arbitrary bodies to the submission decoder and the spec
// check: a refusal is a *job.SpecError or a size error, never a panic.
func FuzzDecodeSubmission(f *testing.F) {
	f.Add(`{"workflow": {"1": {"class_type": "EmptyImage", "inputs": {}}}}`)
	f.Add(`{"template": "t", "params": {"seed": 18446744073709551615}, "images": {"a": {"url": "https://x/y.png"}}}`)
	f.Add(`{"workflow": {}, "timeout_s": "x"}`)
	f.Add(`{"webhook": {"url": ""}, "template": "t"}`)
	f.Add(`[1, 2]`)
	f.Add(`{"metadata": {"a": [1, {"b": null}]}, "template": "t"} trailing`)
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/v1/jobs", strings.NewReader(body))
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1<<16)
		var spec job.Spec
		if err := decodeJSON(r, &spec); err != nil {
			if _, ok := toHTTPError(err); !ok {
				t.Fatalf("decode error %v maps to no 4xx", err)
			}
			return
		}
		if err := spec.Normalize(); err != nil {
			he, ok := toHTTPError(err)
			if !ok || he.status != http.StatusBadRequest {
				t.Fatalf("spec error %v is not a 400", err)
			}
		}
	})
}

func TestErrorAnswersAreBounded(t *testing.T) {
	long := strings.Repeat("é", 1<<20)
	vs := make([]template.Violation, 5000)
	for i := range vs {
		vs[i] = template.Violation{Param: long, Message: long}
	}
	info := bounded(ErrorInfo{Code: "invalid_params", Message: long, Field: long, Details: vs})
	if len(info.Message) > maxMessageLen+len(truncationMarker) || len(info.Field) > maxFieldLen+len(truncationMarker) {
		t.Fatalf("message %d bytes, field %d bytes", len(info.Message), len(info.Field))
	}
	if !utf8.ValidString(info.Message) || !utf8.ValidString(info.Field) {
		t.Fatal("cut inside a rune")
	}
	if got, ok := info.Details.([]template.Violation); !ok || len(got) != maxViolations {
		t.Fatalf("details: %T of %d", info.Details, len(got))
	}
	data, err := json.Marshal(info)
	if err != nil || len(data) > maxDetailsBytes+4*maxMessageLen {
		t.Fatalf("answer of %d bytes (%v)", len(data), err)
	}
	if got := truncate("short", 10); got != "short" {
		t.Fatalf("truncate changed a short string: %q", got)
	}
}
