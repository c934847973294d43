package faults_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/job"
)

// TestNodeCrashesAndRestarts crashes the simulated ComfyUI processes three times
// while jobs run on them: a crash loses the node's queue, its history and the prompt
// it was executing, and one crash keeps the node unreachable for a second and a half
// before it comes back. Workers see prompts vanish and submit them again; only a
// prompt the crash lost may run twice: one that was executing, or that had finished
// while its job had not ended (its history and files are gone with the node's).
func TestNodeCrashesAndRestarts(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{nodes: 2, sim: comfysim.Options{StepDelay: 20 * time.Millisecond}})
	c.startWorker(workerOpts{})
	ids := c.submit(24, func(i int) job.Spec {
		return job.Spec{Workflow: samplerWorkflow(20, 4000+i, "crash")}
	})
	succeeded := func(n int) func() bool {
		return func() bool { return len(c.statusesOf(ids)[job.StatusSucceeded]) >= n }
	}
	crashes, lost, mayRunAgain := 0, 0, 0
	crash := func(n *simNode, down time.Duration) {
		running, pending := n.queue(t)
		if down > 0 {
			n.sim.SetDown(true)
		}
		n.sim.Crash()
		crashes++
		lost += len(running) + len(pending)
		ended := map[string]bool{}
		for st, done := range c.statusesOf(ids) {
			for _, id := range done {
				ended[id] = st.Terminal()
			}
		}
		for _, id := range ids {
			if n.sim.Executions(id) > 0 && !ended[id] {
				mayRunAgain++ // it started on the node, and its job had not ended
			}
		}
		if down > 0 {
			time.Sleep(down) // the process restarting
			n.sim.SetDown(false)
		}
	}
	waitFor(t, 60*time.Second, "jobs running on both nodes", func() bool {
		r0, _ := c.nodes[0].queue(t)
		r1, _ := c.nodes[1].queue(t)
		return len(r0) > 0 && len(r1) > 0
	}, progressOf(c, ids))
	crash(c.nodes[0], 0)
	waitFor(t, 60*time.Second, "4 jobs to succeed", succeeded(4), progressOf(c, ids))
	crash(c.nodes[1], 1500*time.Millisecond)
	waitFor(t, 60*time.Second, "10 jobs to succeed", succeeded(10), progressOf(c, ids))
	crash(c.nodes[0], 0)

	js := c.waitTerminal(2 * time.Minute)
	s := c.verify(js, expect{reexecuted: mayRunAgain})
	c.report(s, fmt.Sprintf("crashes=%d prompts_lost_by_nodes=%d started_and_lost=%d", crashes, lost, mayRunAgain))
}

// TestWebSocketsDroppedAndSilent breaks the event stream while jobs run: one node
// drops every WebSocket five times in a row, the other keeps its sockets open but
// sends nothing for three seconds (its messages are lost). The WebSocket is only a
// hint: workers reconnect, or ask /history and /queue after the stall timeout. Every
// job succeeds and every prompt runs exactly once.
func TestWebSocketsDroppedAndSilent(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{nodes: 2, sim: comfysim.Options{StepDelay: 15 * time.Millisecond}})
	c.startWorker(workerOpts{})
	ids := c.submit(24, func(i int) job.Spec {
		return job.Spec{Workflow: samplerWorkflow(16, 5000+i, "ws")}
	})
	waitFor(t, 60*time.Second, "jobs running", func() bool {
		return len(c.statusesOf(ids)[job.StatusRunning]) > 0
	}, progressOf(c, ids))
	c.nodes[1].sim.SilenceWebSockets(3 * time.Second)
	for range 5 {
		c.nodes[0].sim.DropWebSockets()
		time.Sleep(300 * time.Millisecond)
	}
	js := c.waitTerminal(2 * time.Minute)
	s := c.verify(js, expect{})
	c.report(s, "drops=5 silence=3s")
}

// TestNodeUnreachable cuts two nodes off the network for five seconds each while they
// execute jobs, without crashing them: they go on executing, workers cannot reach
// them, mark them down and take no new jobs there. A partition shorter than the
// follow's down timeout (60s) is ridden through: the jobs on the cut node are
// followed to their end when it answers again. Every job succeeds and every prompt
// runs exactly once.
func TestNodeUnreachable(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{nodes: 2, sim: comfysim.Options{StepDelay: 20 * time.Millisecond}})
	c.startWorker(workerOpts{})
	ids := c.submit(20, func(i int) job.Spec {
		return job.Spec{Workflow: samplerWorkflow(20, 6000+i, "partition")}
	})
	cut := 0
	for _, n := range c.nodes {
		waitFor(t, 60*time.Second, "a job executing on "+n.name, func() bool {
			running, _ := n.queue(t)
			return len(running) > 0
		}, progressOf(c, ids))
		running, pending := n.queue(t)
		cut += len(running) + len(pending)
		n.sim.SetDown(true)
		time.Sleep(5 * time.Second) // the partition
		n.sim.SetDown(false)
	}
	js := c.waitTerminal(2 * time.Minute)
	s := c.verify(js, expect{})
	c.report(s, fmt.Sprintf("partitions=2x5s prompts_on_cut_nodes=%d", cut))
}
