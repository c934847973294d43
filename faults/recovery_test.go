package faults_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/job"
)

// Recovery after SIGKILL without asynq's lease. asynq hands a killed worker's task out
// again only when its lease has run out (60 to 120 s after the kill); these cases show
// that the jobs the killed worker had in flight end while their tasks are still
// active in asynq, i.e. before any redelivery: the restarted worker, or another
// worker, took them over through the workers' heartbeats (worker/takeover.go).

// TestRestartedWorkerResumesItsJobs kills a `comfyq worker` process with a prompt
// executing on its node and another waiting in the node's queue, and starts a new
// process on the same node at once. The new process resumes both (follows the running
// prompt, collects the other when it ends), each prompt runs once, and the timings
// are the node's.
func TestRestartedWorkerResumesItsJobs(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{nodes: 1, sim: comfysim.Options{StepDelay: 25 * time.Millisecond}})
	first := c.startWorkerProcess("", nil)
	ids := c.submit(4, func(i int) job.Spec {
		return job.Spec{Workflow: samplerWorkflow(60, 2000+i, "resume")}
	})
	inFlight := c.killWhenInFlight(first, ids, 0)
	restarted := time.Now()
	c.startWorkerProcess("", nil)
	ended := c.endedBeforeLease(inFlight)
	js := c.waitTerminal(3 * time.Minute)
	s := c.verify(js, expect{})
	c.report(s, fmt.Sprintf("in_flight_at_kill=%d collected_after_restart_s=%.1f", len(inFlight), ended.Sub(restarted).Seconds()))
}

// TestDeadWorkerJobsTakenOver kills a `comfyq worker` process on one node while a
// second worker process runs on another node, and does not restart it. The second
// worker takes the dead one's jobs over once its heartbeat is gone: it follows the
// prompts on the dead worker's node (they keep running there) instead of running
// them again, so every prompt runs once, on one node.
func TestDeadWorkerJobsTakenOver(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{nodes: 2, sim: comfysim.Options{StepDelay: 25 * time.Millisecond}})
	dead := c.startWorkerProcess("", []int{0})
	c.startWorkerProcess("", []int{1})
	ids := c.submit(8, func(i int) job.Spec {
		return job.Spec{Workflow: samplerWorkflow(60, 3000+i, "takeover")}
	})
	inFlight := c.killWhenInFlight(dead, ids, 0)
	died := time.Now()
	ended := c.endedBeforeLease(inFlight)
	js := c.waitTerminal(3 * time.Minute)
	for _, id := range inFlight {
		if c.nodes[0].sim.Executions(id) > 0 {
			require.Equal(t, c.nodes[0].url, js[id].Node, "job %s ran on the dead worker's node and was collected there", id)
		}
	}
	s := c.verify(js, expect{})
	c.report(s, fmt.Sprintf("in_flight_at_kill=%d taken_over_after_death_s=%.1f", len(inFlight), ended.Sub(died).Seconds()))
}

// killWhenInFlight waits until the worker process p, the only one on node, has a
// prompt executing on the node and another waiting there, then kills it with SIGKILL.
// It returns the jobs the process had in flight: every task asynq shows active with
// its record on the node.
func (c *cluster) killWhenInFlight(p *workerProcess, ids []string, node int) []string {
	t := c.t
	t.Helper()
	url := c.nodes[node].url
	var inFlight []string
	waitFor(t, 90*time.Second, "a prompt executing and another waiting on the node", func() bool {
		running, pending := c.nodes[node].queue(t)
		if len(running) == 0 || len(pending) == 0 {
			return false
		}
		active, err := c.insp.ListActiveTasks("default")
		if err != nil {
			return false
		}
		inFlight = inFlight[:0]
		for _, ti := range active {
			j, err := c.prod.Get(c.ctx, ti.ID)
			if err != nil {
				return false
			}
			if j.Node == "" {
				return false // taken by a handler that has not recorded its node yet
			}
			if j.Node == url && !j.Status.Terminal() {
				inFlight = append(inFlight, ti.ID)
			}
		}
		return len(inFlight) >= 2
	}, progressOf(c, ids))
	p.kill()
	sort.Strings(inFlight)
	t.Logf("SIGKILL with %d jobs in flight on %s: %s (%v)", len(inFlight), c.nodes[node].name, short(inFlight), c.countStatus(ids))
	return inFlight
}

// endedBeforeLease waits until the jobs ids have ended and requires that each ended
// while its asynq task was still active: the killed worker's lease had not run out
// and asynq had not handed the task out again. It returns when the last one ended.
func (c *cluster) endedBeforeLease(ids []string) time.Time {
	t := c.t
	t.Helper()
	left := map[string]bool{}
	for _, id := range ids {
		left[id] = true
	}
	var last time.Time
	waitFor(t, 3*time.Minute, "the killed worker's jobs to end", func() bool {
		for id := range left {
			j, err := c.prod.Get(c.ctx, id)
			if err != nil || !j.Status.Terminal() {
				continue
			}
			last = time.Now()
			info, err := c.insp.GetTaskInfo("default", id)
			require.NoError(t, err, "job %s", id)
			require.Equal(t, asynq.TaskStateActive, info.State,
				"job %s ended (%s) only after asynq handed its task out again", id, describe(j))
			delete(left, id)
		}
		return len(left) == 0
	}, func() string { return fmt.Sprint(left) })
	return last
}
