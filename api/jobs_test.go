package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/job"
)

func TestSubmitAnswers202WithURLs(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	r := b.do(t, "POST", "/v1/jobs", userKey, map[string]any{"workflow": jsonRaw(imageWorkflow), "metadata": map[string]any{"user": "42"}})
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	var acc api.Accepted
	r.json(t, &acc)
	require.True(t, job.ValidID(acc.ID))
	require.Equal(t, job.StatusQueued, acc.Status)
	// Without a public URL, links are relative to the API's root.
	require.Equal(t, "/v1/jobs/"+acc.ID, acc.StatusURL)
	require.Equal(t, "/v1/jobs/"+acc.ID+"/events", acc.EventsURL)
	require.Equal(t, acc.StatusURL, r.header.Get("Location"))

	j := b.getJob(t, acc.ID)
	require.Equal(t, job.StatusQueued, j.Status)
	require.Equal(t, "default", j.Queue)
	require.Equal(t, map[string]any{"user": "42"}, j.Metadata)

	// With a public URL, links use it whatever the Host.
	p := setup(t, setupOpts{redis: b.rdb, store: b.store, config: func(c *api.Config) { c.PublicURL = "https://comfyq.example.com/" }})
	acc = p.submit(t, map[string]any{"workflow": jsonRaw(imageWorkflow)}, withHost("evil.example"))
	require.Equal(t, "https://comfyq.example.com/v1/jobs/"+acc.ID, acc.StatusURL)
	require.Equal(t, "https://comfyq.example.com/v1/jobs/"+acc.ID+"/events", acc.EventsURL)

	// Private addresses are refused unless allowed.
	local := map[string]any{"workflow": jsonRaw(imageWorkflow),
		"images":  map[string]any{"1.inputs.image": map[string]any{"url": "http://127.0.0.1:1/in.png"}},
		"webhook": map[string]any{"url": "http://127.0.0.1:1/hook"}}
	require.Equal(t, 400, b.do(t, "POST", "/v1/jobs", userKey, local).status)
	priv := setup(t, setupOpts{redis: b.rdb, store: b.store, config: func(c *api.Config) { c.AllowPrivateURLs = true }})
	priv.submit(t, local)
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	spec := map[string]any{"workflow": jsonRaw(imageWorkflow)}
	a1 := b.submit(t, spec, withHeader("Idempotency-Key", "order-17"))
	a2 := b.submit(t, spec, withHeader("Idempotency-Key", "order-17"))
	require.Equal(t, a1.ID, a2.ID)
	// The body's idempotency_key is the same key.
	a3 := b.submit(t, map[string]any{"workflow": jsonRaw(imageWorkflow), "idempotency_key": "order-17"})
	require.Equal(t, a1.ID, a3.ID)
	a4 := b.submit(t, spec, withHeader("Idempotency-Key", "order-18"))
	require.NotEqual(t, a1.ID, a4.ID)
	// A retry may space and order the workflow differently; it is the same submission.
	a5 := b.submit(t, map[string]any{"workflow": jsonRaw(reordered(t, imageWorkflow))}, withHeader("Idempotency-Key", "order-17"))
	require.Equal(t, a1.ID, a5.ID)

	// The same key with another body is refused: 422, naming the job the key belongs to.
	for _, other := range []map[string]any{
		{"workflow": jsonRaw(imageWorkflow), "metadata": map[string]any{"user": "7"}},
		{"workflow": jsonRaw(imageWorkflow), "queue": "high"},
		{"workflow": jsonRaw(imageWorkflow), "set": map[string]any{"1.inputs.width": 32}},
	} {
		r := b.do(t, "POST", "/v1/jobs", userKey, other, withHeader("Idempotency-Key", "order-17"))
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
		e := r.apiError(t)
		require.Equal(t, "idempotency_key_reuse", e.Code)
		require.Equal(t, "idempotency_key", e.Field)
		require.Contains(t, e.Message, a1.ID)
	}

	r := b.do(t, "POST", "/v1/jobs", userKey, map[string]any{"workflow": jsonRaw(imageWorkflow), "idempotency_key": "a"},
		withHeader("Idempotency-Key", "b"))
	require.Equal(t, 400, r.status)
	require.Equal(t, "idempotency_key", r.apiError(t).Field)

	jobs, _, err := b.jobs().List(b.ctx, job.ListOptions{})
	require.NoError(t, err)
	require.Len(t, jobs, 2)
}

// reordered re-encodes a JSON object with its keys in another order and other spacing.
func reordered(t *testing.T, s string) string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(s), &m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	var b strings.Builder
	b.WriteString("{ ")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ,\n")
		}
		fmt.Fprintf(&b, "%q :%s", k, m[k])
	}
	b.WriteString(" }")
	return b.String()
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	var ids []string
	for i := 0; i < 7; i++ {
		q := "default"
		if i%2 == 1 {
			q = "high"
		}
		ids = append(ids, b.submit(t, map[string]any{"workflow": jsonRaw(imageWorkflow), "queue": q}).ID)
	}
	// Newest first, three at a time.
	var got []string
	cursor := ""
	pages := 0
	for {
		path := "/v1/jobs?limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := b.do(t, "GET", path, userKey, nil)
		require.Equal(t, 200, r.status, "body: %s", r.body)
		var page api.JobList
		r.json(t, &page)
		pages++
		require.LessOrEqual(t, len(page.Jobs), 3)
		for _, j := range page.Jobs {
			got = append(got, j.ID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
		require.Less(t, pages, 10)
	}
	want := make([]string, len(ids))
	for i, id := range ids {
		want[len(ids)-1-i] = id
	}
	require.Equal(t, want, got)
	require.Equal(t, 3, pages)

	r := b.do(t, "GET", "/v1/jobs?queue=high", userKey, nil)
	var page api.JobList
	r.json(t, &page)
	require.Len(t, page.Jobs, 3)
	for _, j := range page.Jobs {
		require.Equal(t, "high", j.Queue)
	}

	_, err := b.client(t, userKey).Cancel(b.ctx, ids[0])
	require.NoError(t, err)
	r = b.do(t, "GET", "/v1/jobs?status=canceled", userKey, nil)
	r.json(t, &page)
	require.Len(t, page.Jobs, 1)
	require.Equal(t, ids[0], page.Jobs[0].ID)

	r = b.do(t, "GET", "/v1/jobs?status=running", userKey, nil)
	require.Equal(t, `{"jobs":[]}`+"\n", string(r.body))
}

func TestCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{}) // no worker: the job stays queued
	acc := b.submit(t, map[string]any{"workflow": jsonRaw(imageWorkflow)})
	r := b.do(t, "POST", "/v1/jobs/"+acc.ID+"/cancel", userKey, nil)
	require.Equal(t, 200, r.status, "body: %s", r.body)
	var j job.Job
	r.json(t, &j)
	require.Equal(t, job.StatusCanceled, j.Status)
	require.Equal(t, job.CodeCanceled, j.Error.Code)

	// A finished job cannot be canceled: 409, with the job.
	r = b.do(t, "POST", "/v1/jobs/"+acc.ID+"/cancel", userKey, nil)
	require.Equal(t, http.StatusConflict, r.status)
	e := r.apiError(t)
	require.Equal(t, "conflict", e.Code)
	require.Equal(t, acc.ID, e.Details.(map[string]any)["job"].(map[string]any)["id"])
}

// sseEvent is one event of a raw event stream.
type sseEvent struct {
	kind, id string
	job      job.Job
}

// readStream reads a raw event stream until it ends, checking its wire format. hook, if
// not nil, is called after each event ("event") and heartbeat ("heartbeat").
func readStream(t *testing.T, ctx context.Context, rawURL, key string, hook ...func(string)) ([]sseEvent, int) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", rawURL, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var events []sseEvent
	var cur sseEvent
	heartbeats := 0
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.kind != "" {
				events = append(events, cur)
				for _, h := range hook {
					h("event")
				}
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ": heartbeat"):
			heartbeats++
			for _, h := range hook {
				h("heartbeat")
			}
		case strings.HasPrefix(line, "retry: "):
		case strings.HasPrefix(line, "event: "):
			cur.kind = strings.TrimPrefix(line, "event: ")
			require.Contains(t, []string{"status", "progress"}, cur.kind)
		case strings.HasPrefix(line, "id: "):
			cur.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.job))
		default:
			t.Fatalf("unexpected line in event stream: %q", line)
		}
	}
	require.NoError(t, sc.Err())
	return events, heartbeats
}

// TestEventStreamFollowsAJobToTheEnd runs a real job (simulator, worker, file store)
// and follows it over SSE, then by polling, then downloads its output from the API.
func TestEventStreamFollowsAJobToTheEnd(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{worker: true, sim: comfysim.Options{StepDelay: 40 * time.Millisecond}})
	acc := b.submit(t, map[string]any{"workflow": jsonRaw(samplerWorkflow)})
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	events, _ := readStream(t, ctx, b.url+acc.EventsURL, userKey)
	require.NotEmpty(t, events)

	// Ids grow, statuses never go back, progress is seen, the stream ends on success.
	rank := map[job.Status]int{job.StatusQueued: 0, job.StatusRunning: 1, job.StatusUploading: 2, job.StatusSucceeded: 3}
	sawProgress := false
	last := -1
	for i, ev := range events {
		require.Equal(t, acc.ID, ev.job.ID)
		require.Equal(t, strings.TrimSpace(ev.id), ev.id)
		if i > 0 {
			require.NotEqual(t, events[i-1].id, ev.id)
		}
		r, ok := rank[ev.job.Status]
		require.True(t, ok, "status %s", ev.job.Status)
		require.GreaterOrEqual(t, r, last, "status went back: %+v", events)
		last = r
		if ev.kind == "progress" && ev.job.Progress != nil && ev.job.Progress.Step > 0 {
			sawProgress = true
		}
	}
	require.Equal(t, "status", events[0].kind)
	end := events[len(events)-1].job
	require.Equal(t, job.StatusSucceeded, end.Status, "error: %+v", end.Error)
	require.True(t, sawProgress, "sampler steps seen in progress events")
	require.Len(t, end.Outputs, 1)

	// Polling gives the same end, and the output URL is served by the API (file store).
	j := b.getJob(t, acc.ID)
	require.Equal(t, job.StatusSucceeded, j.Status)
	require.NotNil(t, j.Timings)
	out := j.Outputs[0]
	require.Equal(t, "/v1/files/"+out.Key, out.URL, "relative: the server has no public URL")
	status, data := fetch(t, ctx, b.url+out.URL, userKey)
	require.Equal(t, 200, status)
	require.Equal(t, b.output(t, out), data)
	require.Equal(t, out.Size, int64(len(data)))
	status, _ = fetch(t, ctx, b.url+out.URL, "")
	require.Equal(t, 401, status)
	r := b.do(t, "GET", out.URL, userKey, nil)
	require.Equal(t, "image/png", r.header.Get("Content-Type"))
	require.Equal(t, `"`+out.SHA256+`"`, r.header.Get("ETag"))
	r = b.do(t, "GET", strings.TrimPrefix(out.URL, b.url), userKey, nil, withHeader("If-None-Match", `"`+out.SHA256+`"`))
	require.Equal(t, http.StatusNotModified, r.status)

	// A stream of a finished job is its final state, then the end.
	events, _ = readStream(t, ctx, b.url+acc.EventsURL, userKey)
	require.Len(t, events, 1)
	require.Equal(t, job.StatusSucceeded, events[0].job.Status)

	// The finished job was observed for the metrics.
	require.Eventually(t, func() bool {
		r := b.do(t, "GET", "/metrics", adminKey, nil)
		return strings.Contains(string(r.body), `comfyq_jobs_finished_total{queue="default",status="succeeded"}`) &&
			strings.Contains(string(r.body), "comfyq_job_execution_seconds_bucket")
	}, 10*time.Second, 50*time.Millisecond)
}

// Any replica serves any job's stream: events travel through Redis.
func TestEventStreamOnAnotherReplica(t *testing.T) {
	t.Parallel()
	a := setup(t, setupOpts{})
	other := setup(t, setupOpts{redis: a.rdb, store: a.store})
	acc := a.submit(t, map[string]any{"workflow": jsonRaw(imageWorkflow)})

	ctx, cancel := context.WithTimeout(a.ctx, time.Minute)
	defer cancel()
	done := make(chan result, 1)
	first := make(chan struct{}, 1)
	go func() {
		ev, beats := readStream(t, ctx, other.url+"/v1/jobs/"+acc.ID+"/events", userKey, func(kind string) {
			if kind == "event" {
				select {
				case first <- struct{}{}:
				default:
				}
			}
		})
		done <- result{ev, beats}
	}()
	// Once the stream has sent the current state, change the job through replica a.
	<-first
	c := a.client(t, userKey)
	_, err := c.Cancel(ctx, acc.ID)
	require.NoError(t, err)
	res := waitResult(t, done)
	require.GreaterOrEqual(t, len(res.events), 2)
	require.Equal(t, job.StatusQueued, res.events[0].job.Status)
	require.Equal(t, job.StatusCanceled, res.events[len(res.events)-1].job.Status)
}

// A stream stays open with heartbeats while nothing happens, and ends when the client
// goes away or the server shuts down.
func TestEventStreamHeartbeatAndShutdown(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	srv, err := api.New(api.Config{Redis: b.rdb, Storage: b.store, APIKeys: []string{userKey},
		Heartbeat: 20 * time.Millisecond, Logger: testLogger()})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	acc := b.submit(t, map[string]any{"workflow": jsonRaw(imageWorkflow)})
	done := make(chan result, 1)
	beat := make(chan struct{}, 1)
	go func() {
		ev, beats := readStream(t, b.ctx, "http://"+ln.Addr().String()+"/v1/jobs/"+acc.ID+"/events", userKey, func(kind string) {
			if kind == "heartbeat" {
				select {
				case beat <- struct{}{}:
				default:
				}
			}
		})
		done <- result{ev, beats}
	}()
	<-beat
	stop()
	require.NoError(t, <-served)
	res := waitResult(t, done)
	require.Len(t, res.events, 1)
	require.Equal(t, job.StatusQueued, res.events[0].job.Status)
	require.Positive(t, res.beats)
}

type result struct {
	events []sseEvent
	beats  int
}

// waitResult waits for a stream read in another goroutine (which may have failed the
// test and stopped without sending).
func waitResult(t *testing.T, done <-chan result) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(time.Minute):
		t.Fatal("the event stream did not end")
		return result{}
	}
}
