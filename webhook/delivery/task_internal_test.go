package delivery

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/webhook"
)

const testJobID = "01937c9e-8f3a-7b2c-9d1e-4f5a6b7c8d9e"

func TestMessageID(t *testing.T) {
	t.Parallel()
	id := messageID(testJobID, webhook.EventJobStarted, 1, "", "https://a.example/hook", "")
	require.Equal(t, id, messageID(testJobID, webhook.EventJobStarted, 1, "", "https://a.example/hook", ""), "stable")
	require.True(t, strings.HasPrefix(id, "msg_"))
	require.Len(t, id, 4+32)
	require.NoError(t, webhook.CheckMessageID(id), "a valid webhook-id: no '.'")

	seen := map[string]bool{id: true}
	for _, other := range []string{
		messageID(testJobID, webhook.EventJobStarted, 2, "", "https://a.example/hook", ""),
		messageID(testJobID, webhook.EventJobSucceeded, 1, "", "https://a.example/hook", ""),
		messageID(testJobID, webhook.EventJobStarted, 1, "audit", "https://a.example/hook", ""),
		messageID(testJobID, webhook.EventJobStarted, 1, "", "https://b.example/hook", ""),
		messageID(testJobID, webhook.EventJobStarted, 1, "", "https://a.example/hook", "x"),
		// Length prefixes keep shifted boundaries apart.
		messageID(testJobID, webhook.EventJobStarted, 1, "https://a.example/hook", "", ""),
	} {
		require.False(t, seen[other], "collision: %s", other)
		seen[other] = true
	}

	require.Equal(t, orderKey(testJobID, "", "https://a.example/hook"), orderKey(testJobID, "", "https://a.example/hook"))
	require.NotEqual(t, orderKey(testJobID, "", "https://a.example/hook"), orderKey(testJobID, "audit", "https://a.example/hook"))
	require.True(t, strings.HasPrefix(orderKey(testJobID, "", "u"), testJobID+":"))
}

func validPayload() *taskPayload {
	return &taskPayload{
		ID: "msg_0123456789abcdef0123456789abcdef", JobID: testJobID, Event: webhook.EventJobSucceeded,
		URL: "https://a.example/hook", OrderKey: testJobID + ":0011223344556677", Seq: 1,
		Body:      []byte(`{"type":"job.succeeded","timestamp":"2025-01-02T03:04:05Z","data":{"id":"` + testJobID + `"}}`),
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func TestTaskPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	p := validPayload()
	// Bodies survive byte for byte, even bytes that JSON would rewrite.
	p.Body = []byte("{\"a\": \"<&>\",\n \"b\": 1.0e0}")
	data, err := encodeTask(p)
	require.NoError(t, err)
	got, err := decodeTask(data)
	require.NoError(t, err)
	require.Equal(t, p, got)

	for name, change := range map[string]func(p *taskPayload){
		"newer version": func(p *taskPayload) { p.V = taskVersion + 1 },
		"id with a dot": func(p *taskPayload) { p.ID = "msg_a.b" },
		"no id":         func(p *taskPayload) { p.ID = "" },
		"bad job id":    func(p *taskPayload) { p.JobID = "42" },
		"no order":      func(p *taskPayload) { p.Seq = 0 },
		"no body":       func(p *taskPayload) { p.Body = nil },
		"bad url":       func(p *taskPayload) { p.URL = "file:///etc/passwd" },
	} {
		p := validPayload()
		p.V = taskVersion
		change(p)
		data, err := json.Marshal(p)
		require.NoError(t, err)
		_, err = decodeTask(data)
		require.ErrorIs(t, err, ErrInvalidTask, name)
	}
}

func FuzzDecodeTask(f *testing.F) {
	good, err := encodeTask(validPayload())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"v":1,"id":"msg_x","job_id":"` + testJobID + `","seq":-1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeTask(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidTask) {
				t.Fatalf("error %v does not wrap ErrInvalidTask", err)
			}
			return
		}
		if webhook.CheckMessageID(p.ID) != nil || !job.ValidID(p.JobID) || p.Seq <= 0 || len(p.Body) == 0 {
			t.Fatalf("accepted an unusable payload: %+v", p)
		}
	})
}

func TestRetryDelayFunc_waiting(t *testing.T) {
	t.Parallel()
	f := RetryPolicy{BaseDelay: time.Hour}.RetryDelayFunc(nil)
	w := &waitError{id: "msg_1", event: webhook.EventJobStarted, delay: 250 * time.Millisecond}
	require.Equal(t, 250*time.Millisecond, f(0, w, asynq.NewTask(job.TypeWebhook, nil)))
	require.ErrorIs(t, w, ErrWaiting)
	require.Contains(t, w.Error(), "job.started message msg_1")
	require.False(t, IsFailure(nil)(w))
}

func TestPrintableAndClip(t *testing.T) {
	t.Parallel()
	require.Equal(t, "bad gateway upstream", printable([]byte("  bad\r\n\tgateway \x00\x1b upstream\n"), 100))
	require.Equal(t, "abc…", printable([]byte("abcdef"), 3))
	require.Equal(t, "", printable(nil, 10))
	require.Equal(t, "é", printable([]byte("\xffé"), 10))

	s := strings.Repeat("é", 10)
	c := clip(s, 5)
	require.True(t, utf8.ValidString(c))
	require.Equal(t, "éé…", c)
	require.Equal(t, "short", clip("short", 10))
}
