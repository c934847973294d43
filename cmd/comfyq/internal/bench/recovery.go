package bench

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/comfyq/comfyq/job"
)

// Targets of the recovery scenario: a killed worker's jobs collected this soon after
// it restarts, or taken over by another worker this soon after its death.
const (
	resumeTarget   = 5 * time.Second
	takeoverTarget = 15 * time.Second
)

// recovery kills a worker process with SIGKILL while a prompt executes on its node and
// another waits in the node's queue, twice: once restarted on the same node after
// restartAfter, once left dead with a second worker process on another node. Each row
// gives the time from the restart (or the death) until the last job the killed
// worker had in flight ended, and the worst lag of a job's end behind the later of
// that moment and its prompt's end on the node.
func (e *env) recovery(ctx context.Context) ([]Result, error) {
	if len(e.cfg.WorkerCommand) == 0 {
		return nil, errors.New("bench: the recovery scenario kills a worker process: it needs a worker command (not --in-process)")
	}
	var out []Result
	for _, takeover := range []bool{false, true} {
		r, err := e.recoveryRun(ctx, takeover)
		if r != nil {
			out = append(out, *r)
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// restartAfter is how long the killed worker stays down before it restarts (the
// issue's measurement: a restart 2 s later).
const restartAfter = 2 * time.Second

func (e *env) recoveryRun(ctx context.Context, takeover bool) (*Result, error) {
	w := Workload{JobTime: e.scaled(2 * time.Second)}
	nodeCount, jobs := 1, or(e.cfg.Jobs, 4)
	name := fmt.Sprintf("kill -9, restart after %v", restartAfter)
	if takeover {
		nodeCount, jobs = 2, or(e.cfg.Jobs, 8)
		name = "kill -9, no restart, 2nd worker on 2nd node"
	}
	nodes, err := e.startNodes(nodeCount, w)
	if err != nil {
		return nil, err
	}
	defer closeNodes(nodes)
	_, plain := e.mainStore(0)
	storeURL := e.s3URL
	if e.s3 == nil {
		storeURL = e.fileURL
	}
	q := newQueue()
	defer e.dropQueue(q)
	depth := or(e.cfg.Depth, 2)

	var procs []*killable
	defer func() {
		for _, p := range procs {
			_ = p.stop()
		}
	}()
	spawn := func(node int) (*killable, error) {
		p, spawnErr := e.spawnWorker(q, storeURL, depth, node, nodes[node].url)
		if spawnErr == nil {
			procs = append(procs, p)
		}
		return p, spawnErr
	}
	victim, err := spawn(0)
	if err != nil {
		return nil, err
	}
	if takeover {
		if _, err = spawn(1); err != nil {
			return nil, err
		}
	}
	if err = e.waitServers(ctx, q, nodeCount, victim.exited); err != nil {
		return nil, fmt.Errorf("%w; its log:\n%s", err, victim.logs)
	}

	ids := make([]string, jobs)
	for i := range ids {
		j, enqErr := e.producer.Enqueue(ctx, job.Spec{Workflow: w.promptJSON(i), Queue: q, MaxAttempts: 3})
		if enqErr != nil {
			return nil, fmt.Errorf("bench: enqueue: %w", enqErr)
		}
		ids[i] = j.ID
	}
	inFlight, err := e.waitInFlight(ctx, nodes[0], nodeName(0), ids)
	if err != nil {
		return nil, err
	}
	victim.kill()
	ref := time.Now() // the death, or the restart below
	e.log.Info("killed the worker", "in_flight", len(inFlight), "takeover", takeover)
	if !takeover {
		select {
		case <-time.After(restartAfter):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		ref = time.Now()
		if _, err = spawn(0); err != nil {
			return nil, err
		}
	}

	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	ended := map[string]*job.Job{}
	for _, id := range ids {
		j, waitErr := e.producer.Wait(wctx, id)
		if waitErr != nil {
			return nil, fmt.Errorf("bench: job %s did not end: %w", id, waitErr)
		}
		ended[id] = j
	}
	defer deleteOutputs(context.WithoutCancel(ctx), plain, mapValues(ended))

	spans := make([]map[string]execSpan, len(nodes))
	for i, n := range nodes {
		if spans[i], err = nodeExecutions(ctx, n.client); err != nil {
			return nil, err
		}
	}
	r := &Result{Scenario: ScenarioRecovery, Name: name, Client: "comfyq", Nodes: nodeCount, Depth: depth,
		Jobs: len(inFlight), JobTimeMS: ms(w.JobTime)}
	var last time.Time
	var worstLag time.Duration
	once := true
	for _, id := range inFlight {
		j := ended[id]
		runs := 0
		var nodeEnd time.Time
		for i, n := range nodes {
			runs += n.sim.Executions(id)
			if sp, ok := spans[i][id]; ok && sp.ok {
				nodeEnd = sp.end
			}
		}
		once = once && runs == 1
		if j.Status == job.StatusSucceeded && j.FinishedAt != nil {
			r.Succeeded++
			last = maxTime(last, *j.FinishedAt)
			worstLag = max(worstLag, j.FinishedAt.Sub(maxTime(ref, nodeEnd)))
		}
	}
	if !last.IsZero() {
		r.RecoveryS = round(last.Sub(ref).Seconds(), 2)
	}
	r.RecoveryLagS = round(worstLag.Seconds(), 2)
	target, limit := fmt.Sprintf("collected ≤ %v after the restart, each prompt run once", resumeTarget), resumeTarget
	if takeover {
		target, limit = fmt.Sprintf("taken over ≤ %v after the death, each prompt run once", takeoverTarget), takeoverTarget
	}
	r.check(target, once && r.Succeeded == len(inFlight) && !last.IsZero() && last.Sub(ref) <= limit)

	// asynq still holds the killed worker's tasks until their lease runs out; wait for
	// the redelivery to be acknowledged (the jobs have ended) so that the queue can go.
	if !e.cfg.noLeaseWait {
		e.waitNoActive(ctx, q)
	}
	return r, nil
}

// waitInFlight waits until node holds a prompt executing and another waiting in its
// queue, and returns the jobs recorded on it that have not ended.
func (e *env) waitInFlight(ctx context.Context, n *simNode, name string, ids []string) ([]string, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		qs, err := n.client.Queue(ctx)
		if err == nil && len(qs.Running) > 0 && len(qs.Pending) > 0 {
			var inFlight []string
			for _, id := range ids {
				j, err := e.producer.Get(ctx, id)
				if err == nil && j.NodeName == name && !j.Status.Terminal() {
					inFlight = append(inFlight, id)
				}
			}
			if len(inFlight) >= 2 {
				return inFlight, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, errors.New("bench: the node never held two jobs at once")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitNoActive waits (at most three minutes) until queue q has no active task.
func (e *env) waitNoActive(ctx context.Context, q string) {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		info, err := e.insp.GetQueueInfo(q)
		if err == nil && info.Active == 0 && info.Pending == 0 && info.Retry == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	e.log.Warn("the killed worker's tasks are still active in asynq", "queue", q)
}

// killable is a worker process that can be killed with SIGKILL.
type killable struct {
	cmd    *exec.Cmd
	logs   *tailBuffer
	exited chan struct{}
	once   sync.Once
}

// spawnWorker starts Config.WorkerCommand on one node, named nodeName(index).
func (e *env) spawnWorker(q, storeURL string, depth, index int, url string) (*killable, error) {
	args := append([]string(nil), e.cfg.WorkerCommand[1:]...)
	args = append(args, "--redis", e.redisURL, "--storage", storeURL, "--depth", fmt.Sprint(depth),
		"--queues", q+"=1", "--output-prefix", "bench", "--log-level", "warn",
		"--comfy", nodeName(index)+"="+url)
	cmd := exec.Command(e.cfg.WorkerCommand[0], args...)
	p := &killable{cmd: cmd, logs: &tailBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start a worker process: %w", err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// kill sends SIGKILL, as an OOM killer would, and waits for the exit.
func (p *killable) kill() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
	})
}

// stop drains the process with SIGTERM (SIGKILL after a minute).
func (p *killable) stop() error {
	var err error
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(time.Minute):
			_ = p.cmd.Process.Kill()
			<-p.exited
			err = fmt.Errorf("bench: a worker process did not stop within a minute; its log:\n%s", strings.TrimSpace(p.logs.String()))
		}
	})
	return err
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func mapValues(m map[string]*job.Job) []*job.Job {
	out := make([]*job.Job, 0, len(m))
	for _, j := range m {
		out = append(out, j)
	}
	return out
}
