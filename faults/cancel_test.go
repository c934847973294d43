package faults_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/api/apiclient"
	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/job"
)

// cancelCall is one POST /v1/jobs/{id}/cancel and its answer.
type cancelCall struct {
	status job.Status // the job in the answer (200, or 409 for an ended job)
	ended  bool       // 409: the job had already ended
}

// TestCancelStorm submits jobs of random lengths over the HTTP API and cancels most
// of them at random moments from many goroutines, some three times at once, so that
// cancels race with every phase: waiting in Redis, waiting in a node's queue,
// executing, uploading, finishing. Every job ends canceled or succeeded, once and
// consistently: a job whose cancel was answered "canceled" stays canceled, one whose
// cancel was answered "already ended" keeps that state; a canceled job has no outputs,
// and one canceled before it ran has nothing in storage; nothing stays on the nodes.
func TestCancelStorm(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{nodes: 2, sim: comfysim.Options{StepDelay: 10 * time.Millisecond}, file: true})
	srv, err := api.New(api.Config{Redis: c.rdb, Storage: c.store, NoAuth: true, Logger: testLogger(t)})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { srv.Close(); ts.Close() })
	client, err := apiclient.New(ts.URL, "", nil)
	require.NoError(t, err)
	c.startWorker(workerOpts{})

	const n = 40
	rng := rand.New(rand.NewPCG(1, 2))
	var wg sync.WaitGroup
	var mu sync.Mutex
	calls := map[string][]cancelCall{}
	var ids []string
	for i := range n {
		acc, err := client.Submit(c.ctx, job.Spec{Workflow: samplerWorkflow(2+rng.IntN(24), 9000+i, "cancel")}, "")
		require.NoError(t, err)
		ids = append(ids, acc.ID)
		c.track(acc.ID)
		if i%5 == 0 {
			continue // never canceled
		}
		delay := time.Duration(rng.IntN(1500)) * time.Millisecond
		times := 1
		if i%7 == 0 {
			times = 3
		}
		for range times {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(delay)
				j, err := client.Cancel(c.ctx, acc.ID)
				call := cancelCall{}
				switch {
				case errors.Is(err, job.ErrTerminal):
					require.NotNil(t, j, "a 409 carries the ended job")
					call = cancelCall{status: j.Status, ended: true}
				case err != nil:
					t.Errorf("cancel %s: %v", acc.ID, err)
					return
				default:
					call.status = j.Status
				}
				mu.Lock()
				calls[acc.ID] = append(calls[acc.ID], call)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()

	js := c.waitTerminal(2 * time.Minute)
	s := c.verify(js, expect{statuses: []job.Status{job.StatusSucceeded, job.StatusCanceled}})
	var beforeRun, whileRunning, tooLate, answeredCanceled, answeredEnded, requestedThenSucceeded int
	for i, id := range ids {
		j := js[id]
		ex := 0
		for _, nd := range c.nodes {
			ex += nd.sim.Executions(id)
		}
		if i%5 == 0 {
			require.Equal(t, job.StatusSucceeded, j.Status, "job %s was never canceled: %s", id, describe(j))
			continue
		}
		for _, call := range calls[id] {
			switch {
			case call.ended:
				answeredEnded++
				require.Equal(t, call.status, j.Status, "job %s: a cancel was answered 'already %s'", id, call.status)
			case call.status == job.StatusCanceled:
				answeredCanceled++
				require.Equal(t, job.StatusCanceled, j.Status, "job %s: a cancel was answered 'canceled'", id)
			default:
				require.False(t, call.status.Terminal(), "job %s: a 200 answer with an ended job %s", id, call.status)
				if j.Status == job.StatusSucceeded {
					// Asked to stop while it was finishing: its success was recorded first.
					requestedThenSucceeded++
				}
			}
		}
		switch {
		case j.Status == job.StatusSucceeded:
			tooLate++
		case ex == 0:
			beforeRun++
		default:
			whileRunning++
		}
	}
	// Nothing is left queued or running on the nodes.
	for _, nd := range c.nodes {
		waitFor(t, 30*time.Second, "the queue of "+nd.name+" to empty", func() bool {
			running, pending := nd.queue(t)
			return len(running) == 0 && len(pending) == 0
		}, nil)
	}
	c.report(s, fmt.Sprintf("canceled_before_run=%d canceled_while_running=%d cancel_too_late=%d "+
		"answers_canceled=%d answers_already_ended=%d answers_requested_then_succeeded=%d",
		beforeRun, whileRunning, tooLate, answeredCanceled, answeredEnded, requestedThenSucceeded))
}
