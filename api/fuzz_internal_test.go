package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/template"
)

// FuzzReadSSE feeds arbitrary event streams to the client's parser: it never panics,
// and every event it emits carries a job.
func FuzzReadSSE(f *testing.F) {
	f.Add([]byte("retry: 3000\n\nevent: status\nid: 1\ndata: {\"id\":\"x\",\"status\":\"queued\"}\n\n"))
	f.Add([]byte(": heartbeat\n\nevent: progress\ndata: {\"id\":\"x\",\"status\":\"running\",\"progress\":{\"fraction\":0.5}}\n\n" +
		"event: status\ndata: {\"id\":\"x\",\"status\":\"succeeded\"}\n\n"))
	f.Add([]byte("data: {\"id\":\n"))
	f.Add([]byte("data: {\"id\":\"x\",\ndata: \"status\":\"failed\"}\n\n"))
	f.Add([]byte("event\ndata\n\n:\n\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		out := make(chan job.Event, 1024)
		done := make(chan struct{})
		go func() {
			defer close(done)
			readSSE(context.Background(), bytes.NewReader(stream), out)
			close(out)
		}()
		for ev := range out {
			if ev.Job == nil || ev.Job.ID == "" {
				t.Fatalf("event without a job: %+v", ev)
			}
		}
		<-done
	})
}

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

func TestBefore(t *testing.T) {
	q := &job.Job{Status: job.StatusQueued, Attempt: 1}
	run := &job.Job{Status: job.StatusRunning, Attempt: 1}
	retry := &job.Job{Status: job.StatusQueued, Attempt: 2}
	if before(run, nil) || !before(q, run) || before(run, q) || before(retry, run) || !before(run, retry) || before(run, run) {
		t.Fatal("before orders by attempt, then status")
	}
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
