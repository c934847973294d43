package faults_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/job"
)

// TestWorkerKilledMidExecutionAndUpload runs jobs through a `comfyq worker` process
// on three nodes, with storage slowed down so that uploads take seconds, and kills
// the process with SIGKILL at a moment when some of its jobs are executing on a node
// and others are uploading their outputs. A new worker process is started at once
// and takes the killed one's jobs over as each node comes up (worker/takeover.go),
// without waiting for asynq's lease: it finds each prompt on its node (still running,
// or finished) and collects it instead of running it again. Every job succeeds and no
// prompt runs twice on its node; asynq's later redelivery of the killed worker's tasks
// finds the jobs ended.
//
// A taken-over job may be served by another node's worker; it then follows the prompt
// on the node of the earlier attempt (worker/handler.go followElsewhere): a prompt
// that runs again on another node fails the case.
func TestWorkerKilledMidExecutionAndUpload(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{nodes: 3, sim: comfysim.Options{StepDelay: 25 * time.Millisecond}})
	proxy := c.s3Proxy()
	proxy.SetLatency(1500 * time.Millisecond) // every S3 request: uploads take seconds
	first := c.startWorkerProcess(proxy.storeURL, nil)

	const n = 18
	ids := c.submit(n, func(i int) job.Spec {
		return job.Spec{Workflow: samplerWorkflow(16, 1000+i, "kill")}
	})

	// Kill when at least one job executes and one uploads.
	var at map[job.Status][]string
	waitFor(t, 90*time.Second, "a job executing and another uploading", func() bool {
		at = c.statusesOf(ids)
		return len(at[job.StatusRunning]) > 0 && len(at[job.StatusUploading]) > 0
	}, progressOf(c, ids))
	first.kill()
	t.Logf("SIGKILL with %d jobs executing (%s), %d uploading (%s), %d queued, %d succeeded",
		len(at[job.StatusRunning]), short(at[job.StatusRunning]), len(at[job.StatusUploading]), short(at[job.StatusUploading]),
		len(at[job.StatusQueued]), len(at[job.StatusSucceeded]))

	proxy.SetLatency(100 * time.Millisecond)
	c.startWorkerProcess(proxy.storeURL, nil)
	js := c.waitTerminal(3 * time.Minute)
	s := c.verify(js, expect{})
	c.report(s, fmt.Sprintf("killed_while_executing=%d killed_while_uploading=%d",
		len(at[job.StatusRunning]), len(at[job.StatusUploading])))
}
