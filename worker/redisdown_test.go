package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/worker"
)

// keyOutage makes every command that names one key fail while it is on, as if Redis
// were down for the job's record only: asynq's own keys keep working, so a handler
// that gives up on the write shows as a second attempt.
type keyOutage struct {
	key    string
	on     atomic.Bool
	failed atomic.Int64
}

var errOutage = errors.New("test: Redis outage")

func (o *keyOutage) DialHook(next redis.DialHook) redis.DialHook { return next }

func (o *keyOutage) hits(cmd redis.Cmder) bool {
	for _, a := range cmd.Args() {
		if s, ok := a.(string); ok && strings.Contains(s, o.key) {
			return true
		}
	}
	return false
}

func (o *keyOutage) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if o.on.Load() && o.hits(cmd) {
			o.failed.Add(1)
			cmd.SetErr(errOutage)
			return errOutage
		}
		return next(ctx, cmd)
	}
}

func (o *keyOutage) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if o.on.Load() {
			for _, c := range cmds {
				if o.hits(c) {
					o.failed.Add(1)
					for _, c := range cmds {
						c.SetErr(errOutage)
					}
					return errOutage
				}
			}
		}
		return next(ctx, cmds)
	}
}

// A job whose prompt finishes while its record cannot be written records its end as
// soon as Redis answers again, in the same attempt: it is not handed to asynq for a
// retry (nor left for the lease to expire).
func TestEndRecordedWhenRedisAnswersAgain(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noWorker: true, sim: comfysim.Options{StepDelay: 20 * time.Millisecond}})
	j := b.submit(t, job.Spec{Workflow: json.RawMessage(slowWorkflow(30, "5"))})

	wrdb, err := producer.OpenRedis(b.redisURL)
	require.NoError(t, err)
	t.Cleanup(func() { wrdb.Close() })
	outage := &keyOutage{key: "comfyq:job:" + j.ID}
	wrdb.AddHook(outage)
	startWorker(t, b, func(c *worker.Config) { c.Redis = wrdb })

	events, err := b.producer.Watch(b.ctx, j.ID)
	require.NoError(t, err)
	var seen []job.Status
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ev := range events {
			if n := len(seen); ev.Job != nil && (n == 0 || seen[n-1] != ev.Job.Status) {
				seen = append(seen, ev.Job.Status)
			}
		}
	}()

	b.waitStatus(t, j.ID, job.StatusRunning)
	outage.on.Store(true)
	eventually(t, 60*time.Second, func() (bool, string) {
		resp, err := http.Get(b.simURL + "/history/" + j.ID)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var h map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&h)
		return len(h) == 1, "prompt not in history yet"
	})
	// The worker has tried, and failed, to write the job's end a few times.
	eventually(t, 60*time.Second, func() (bool, string) {
		return outage.failed.Load() >= 5, "too few failed writes"
	})
	outage.on.Store(false)

	final := b.wait(t, j.ID)
	require.Equal(t, job.StatusSucceeded, final.Status, describe(final))
	require.Equal(t, 1, final.Attempt, "the end was recorded by the attempt that ran the prompt")
	require.Equal(t, 1, b.sim.Executions(j.ID))
	<-watched
	require.NotContains(t, seen[1:], job.StatusQueued, "the job never went back to the queue: %v", seen)
}
