package faults_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/internal/faultproxy"
	"github.com/comfyq/comfyq/job"
)

// TestStorageOutage puts the S3 service behind a fault-injecting proxy while jobs
// flow over two nodes: for three seconds it answers 503 SlowDown, for two it resets
// every connection, for three it refuses connections (nothing listens), then it
// works again. Uploads are retried, and an attempt that gives up is retried without
// running the prompt again (its outputs are still on the node). Every job succeeds,
// every output is byte-correct in storage, and every prompt runs exactly once.
func TestStorageOutage(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{nodes: 2, sim: comfysim.Options{StepDelay: 10 * time.Millisecond}})
	proxy := c.s3Proxy()
	c.startWorker(workerOpts{storeURL: proxy.storeURL})
	ids := c.submit(24, func(i int) job.Spec {
		return job.Spec{Workflow: samplerWorkflow(10, 7000+i, "s3")}
	})
	waitFor(t, 60*time.Second, "2 jobs to succeed", func() bool {
		return len(c.statusesOf(ids)[job.StatusSucceeded]) >= 2
	}, progressOf(c, ids))

	proxy.Set(faultproxy.Fail, 0)
	time.Sleep(3 * time.Second)
	proxy.Set(faultproxy.Drop, 0)
	time.Sleep(2 * time.Second)
	proxy.Set(faultproxy.Pass, 0)
	proxy.down()
	time.Sleep(3 * time.Second)
	proxy.up()
	faulted := proxy.Faulted()

	js := c.waitTerminal(2 * time.Minute)
	s := c.verify(js, expect{})
	c.report(s, fmt.Sprintf("outage=3s_503+2s_reset+3s_refused faulted_requests=%d", faulted))
}
