package faults_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
)

// TestRedisRestart stops Redis (append-only persistence on) while jobs are queued
// and running on two nodes, keeps it down for a few seconds while two producers keep
// submitting, and starts it again on the same port with the same data. Workers and
// producers are not restarted: they reconnect by themselves. Producers retry their
// failed submissions with the same idempotency key, so each submission makes one job.
// Every job ends succeeded, and none runs twice on its node.
//
// A job that finishes during the outage keeps trying to record its success and records
// it when Redis answers again, in the same attempt; no prompt runs again on any node.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{nodes: 2, sim: comfysim.Options{StepDelay: 20 * time.Millisecond},
		redis: testenv.RedisOptions{AppendOnly: true}})
	c.startWorker(workerOpts{})

	ids := c.submit(30, func(i int) job.Spec {
		return job.Spec{Workflow: samplerWorkflow(12, 2000+i, "redis")}
	})
	var at map[job.Status][]string
	waitFor(t, 60*time.Second, "jobs running and others queued", func() bool {
		at = c.statusesOf(ids)
		return len(at[job.StatusRunning])+len(at[job.StatusUploading]) > 0 && len(at[job.StatusQueued]) >= 10
	}, progressOf(c, ids))

	// Two producers submit through the outage; a failed submission is retried with
	// its idempotency key until Redis answers again.
	const perProducer = 6
	var wg sync.WaitGroup
	failures := make([]int, 2)
	started := make(chan struct{})
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-started
			for i := range perProducer {
				spec := job.Spec{Workflow: samplerWorkflow(12, 3000+100*p+i, "redis"),
					IdempotencyKey: fmt.Sprintf("outage-%d-%d", p, i)}
				deadline := time.Now().Add(90 * time.Second)
				for {
					j, err := c.prod.Enqueue(c.ctx, spec)
					if err == nil {
						c.track(j.ID)
						break
					}
					failures[p]++
					if time.Now().After(deadline) {
						t.Errorf("producer %d: submission %d still failing after 90s: %v", p, i, err)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
				time.Sleep(300 * time.Millisecond)
			}
		}()
	}

	c.redis.Stop()
	close(started)
	time.Sleep(3 * time.Second) // the outage
	c.redis.Restart()
	wg.Wait()

	// A task whose end could not be recorded waits for asynq's recoverer: up to two of
	// its one-minute ticks.
	js := c.waitTerminal(3 * time.Minute)
	s := c.verify(js, expect{})
	c.report(s, fmt.Sprintf("down_for=3s running_at_stop=%d queued_at_stop=%d producer_retries=%d",
		len(at[job.StatusRunning])+len(at[job.StatusUploading]), len(at[job.StatusQueued]), failures[0]+failures[1]))
}
