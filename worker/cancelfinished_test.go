package worker_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/worker"
)

// TestCancelOfFinishedPromptSparesTheNext: a job canceled after its prompt finished on
// the node, while the node already runs the next job's prompt, ends canceled and the
// next prompt runs to its end. On 0.38 the worker stops the prompt through the jobs API
// (POST /api/jobs/{id}/cancel, which the node answers {"cancelled": false} for a
// finished prompt) and sends no /interrupt at all; on 0.3.64 it deletes the prompt from
// the queue and interrupts it by id, which the node ignores as that prompt is not the
// one running.
//
// The moment is made, not waited for: the node drops its WebSockets while the first
// prompt runs, and a proxy between the worker and the node holds the worker's lookups
// of the first prompt once it has finished, so the worker cannot learn it finished; the job is canceled then, while the second prompt runs, and the hold
// ends when the worker's stop request for the first prompt reaches the node.
func TestCancelOfFinishedPromptSparesTheNext(t *testing.T) {
	t.Parallel()
	for _, v := range comfysim.Versions() {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{noWorker: true, sim: comfysim.Options{ComfyUIVersion: v, StepDelay: 20 * time.Millisecond}})
			gate := newLookupGate(t, b)
			b.stop = startWorker(t, b, func(c *worker.Config) {
				c.Nodes[0].URL = gate.url
				c.Depth = 2 // the second job's prompt waits on the node behind the first
			})

			first := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(20, "1"))})
			gate.hold(first.ID)
			b.waitStatus(t, first.ID, job.StatusRunning)
			// A gap in the prompt's events: the worker must look it up to learn how it
			// ended (with all its events it would not need to: FromEvents).
			b.sim.DropWebSockets()
			next := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(250, "2"))})

			select {
			case <-gate.holding:
			case <-time.After(60 * time.Second):
				t.Fatal("the worker never looked up the first prompt after it finished")
			}
			require.Eventually(t, func() bool { return gate.running() == next.ID }, 60*time.Second, 10*time.Millisecond,
				"the node runs the next prompt")
			_, err := b.producer.Cancel(b.ctx, first.ID)
			require.NoError(t, err)

			j := b.wait(t, first.ID)
			require.Equal(t, job.StatusCanceled, j.Status, "error: %+v", j.Error)
			require.Empty(t, j.Outputs)
			n := b.wait(t, next.ID)
			require.Equal(t, job.StatusSucceeded, n.Status, "error: %+v", n.Error)
			require.Equal(t, 1, b.sim.Executions(next.ID), "the next prompt ran once, to its end")
			require.Zero(t, b.sim.Stats().PromptsInterrupted, "no prompt was interrupted")

			stops, runningAtStop := gate.stopRequests()
			require.NotEmpty(t, stops, "the worker asked the node to stop the first prompt")
			require.Equal(t, next.ID, runningAtStop, "the stop reached the node while the next prompt ran")
			if v == comfysim.Version0364 {
				require.Contains(t, stops, "POST /interrupt", "0.3.64: an interrupt aimed at the prompt by id")
				return
			}
			for _, stop := range stops {
				require.Equal(t, "POST /api/jobs/"+first.ID+"/cancel", stop, "0.38: the atomic cancel of the jobs API, and nothing else")
			}
			require.NotContains(t, gate.requests(), "POST /interrupt", "0.38: no /interrupt is ever sent")
		})
	}
}

// lookupGate is a reverse proxy between the worker and the simulator. Once the prompt
// it holds has finished on the node, the worker's lookups of that prompt (GET
// /api/jobs/{id}, GET /history/{id}) wait until the worker sends a request to stop it
// (POST /api/jobs/{id}/cancel, or POST /queue or /interrupt naming it). It records every
// request and, for the first stop request, which prompt the node was running.
type lookupGate struct {
	t       *testing.T
	b       *bundle
	url     string
	holding chan struct{} // closed when the first lookup is held

	mu            sync.Mutex
	id            string
	held          bool
	released      chan struct{}
	all           []string
	stops         []string
	runningAtStop string
}

func newLookupGate(t *testing.T, b *bundle) *lookupGate {
	t.Helper()
	target, err := url.Parse(b.simURL)
	require.NoError(t, err)
	g := &lookupGate{t: t, b: b, holding: make(chan struct{}), released: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0) // the held lookups the worker gives up on
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.before(r)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		g.release()
		srv.Close()
	})
	g.url = srv.URL
	return g
}

// hold makes the lookups of prompt id wait once it has finished.
func (g *lookupGate) hold(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.id = id
}

func (g *lookupGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.released:
	default:
		close(g.released)
	}
}

// before records r and holds it or releases the held lookups, as the type says.
func (g *lookupGate) before(r *http.Request) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	path := strings.TrimPrefix(r.URL.Path, "/api")
	if strings.HasPrefix(r.URL.Path, "/api/jobs") {
		path = r.URL.Path
	}
	line := r.Method + " " + path
	g.mu.Lock()
	g.all = append(g.all, line)
	id := g.id
	g.mu.Unlock()
	if id == "" {
		return
	}
	switch {
	case r.Method == http.MethodPost && (path == "/api/jobs/"+id+"/cancel" ||
		(path == "/queue" || path == "/interrupt") && bytes.Contains(body, []byte(id))):
		running := g.running()
		g.mu.Lock()
		if len(g.stops) == 0 {
			g.runningAtStop = running
		}
		g.stops = append(g.stops, line)
		g.mu.Unlock()
		g.release()
	case r.Method == http.MethodGet && (path == "/api/jobs/"+id || path == "/history/"+id) &&
		g.b.sim.Stats().PromptsExecuted > 0: // the first prompt on this node has ended
		g.mu.Lock()
		if !g.held {
			g.held = true
			close(g.holding)
		}
		g.mu.Unlock()
		select {
		case <-g.released:
		case <-r.Context().Done():
		}
	}
}

// running asks the node itself which prompt it is executing ("" for none).
func (g *lookupGate) running() string {
	resp, err := http.Get(g.b.simURL + "/queue")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var q struct {
		Running [][]any `json:"queue_running"`
	}
	if json.NewDecoder(resp.Body).Decode(&q) != nil || len(q.Running) == 0 || len(q.Running[0]) < 2 {
		return ""
	}
	id, _ := q.Running[0][1].(string)
	return id
}

func (g *lookupGate) requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.all...)
}

func (g *lookupGate) stopRequests() (stops []string, runningAtStop string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.stops...), g.runningAtStop
}

// A prompt the worker queued, whose every event reached its socket, is collected
// without reading its history: its outputs come from the executed messages, its node
// times from execution_start and execution_success (comfy.FollowOptions.FromEvents).
func TestSucceededPromptNeedsNoHistoryRead(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noWorker: true})
	gate := newLookupGate(t, b) // records every request; holds nothing
	b.stop = startWorker(t, b, func(c *worker.Config) { c.Nodes[0].URL = gate.url })
	j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)}).ID)
	require.Equal(t, job.StatusSucceeded, j.Status, describe(j))
	require.Len(t, j.Outputs, 1)
	reqs := gate.requests()
	require.Contains(t, reqs, "POST /prompt")
	require.NotContains(t, reqs, "GET /history/"+j.ID, "no history read: %v", reqs)
	require.NotContains(t, reqs, "GET /api/jobs/"+j.ID, "no jobs API lookup: %v", reqs)
}
