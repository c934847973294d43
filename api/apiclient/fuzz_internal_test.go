package apiclient

import (
	"bytes"
	"context"
	"testing"

	"github.com/comfyq/comfyq/job"
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
			readSSE(context.Background(), bytes.NewReader(stream), out, nil)
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
