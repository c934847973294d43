package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/internal/nodestatus"
	"github.com/comfyq/comfyq/internal/redistrips"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/worker"
)

// comfyqRun describes one run of comfyq end to end: producers → Redis → worker →
// simulated nodes → storage.
type comfyqRun struct {
	workload Workload
	jobs     int
	nodes    int
	depth    int           // 0: automatic
	latency  time.Duration // per storage request
	// useFile forces the file store (memory runs on both kinds of store).
	useFile bool
	// process runs the worker as Config.WorkerCommand instead of in this process.
	process bool
	// sampleHeap measures this process's heap peak while the jobs run.
	sampleHeap bool
	// countTrips counts the Redis round trips of the producers and of the worker
	// (in this process) from the first job's submission to the last one's end.
	countTrips bool
}

// comfyqOutcome is what a run measured.
type comfyqOutcome struct {
	tl        timeline
	busy      float64
	heapPeak  int64 // this process, above the level before the jobs
	procPeak  int64 // the worker process's VmHWM
	procIdle  int64 // the worker process's VmRSS once it was ready
	storeName string
	depths    []int // each node's depth at the end (in-process worker only)
	// producerTrips and workerTrips counted the round trips, with countTrips.
	producerTrips, workerTrips *redistrips.Counter
	// cpu is the CPU spent from the first submission to the last job's end.
	cpu cpuTimes
}

func (e *env) runComfyq(ctx context.Context, r comfyqRun) (*comfyqOutcome, error) {
	nodes, err := e.startNodes(r.nodes, r.workload)
	if err != nil {
		return nil, err
	}
	defer closeNodes(nodes)

	store, plain := e.mainStore(r.latency)
	storeURL := e.s3URL
	if r.useFile || e.s3 == nil {
		store, plain, storeURL = WithLatency(e.file, r.latency), e.file, e.fileURL
	}
	out := &comfyqOutcome{storeName: plain.String()}
	q := newQueue()
	defer e.dropQueue(q)
	p := e.producer
	if r.countTrips {
		out.producerTrips, out.workerTrips = redistrips.New(), redistrips.New()
		var closeProducer func()
		if p, closeProducer, err = e.countedProducer(out.producerTrips); err != nil {
			return nil, err
		}
		defer closeProducer()
	}

	// Start the worker and wait until every node takes jobs.
	var stop func() error
	var pid int
	if r.process {
		stop, pid, err = e.startWorkerProcess(ctx, r, q, nodes, storeURL)
	} else {
		stop, err = e.startWorker(ctx, r, q, nodes, store, out.workerTrips)
	}
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()
	if pid != 0 {
		m, statusErr := procStatus(pid, "VmRSS")
		if statusErr != nil {
			return nil, statusErr
		}
		out.procIdle = m["VmRSS"]
	}

	var heap *heapSampler
	if r.sampleHeap {
		heap = startHeapSampler(10 * time.Millisecond)
	}
	if r.countTrips {
		// From here on: the worker's start (its servers, its first polls) is not a job's.
		out.producerTrips.Reset()
		out.workerTrips.Reset()
	}
	cpuStart := readCPU(ctx, e.rdb, pid)
	ids, err := e.enqueue(ctx, p, r.workload, r.jobs, q)
	if err != nil {
		if heap != nil {
			heap.Stop()
		}
		return nil, err
	}
	jobs, err := e.waitAll(ctx, q, ids, r.workload, r.jobs/max(r.nodes, 1))
	out.cpu = readCPU(ctx, e.rdb, pid).since(cpuStart)
	if r.countTrips {
		// Before the drain: stopping the worker is not a job's either.
		out.producerTrips, out.workerTrips = out.producerTrips.Snapshot(), out.workerTrips.Snapshot()
	}
	if heap != nil {
		out.heapPeak = heap.Stop()
	}
	if err != nil {
		return nil, err
	}
	if pid == 0 {
		for i := range nodes {
			var m dto.Metric
			if metrics.NodeDepth.WithLabelValues(nodeName(i)).Write(&m) == nil {
				out.depths = append(out.depths, int(m.GetGauge().GetValue()))
			}
		}
	}
	if pid != 0 {
		// The worker process reports each node's depth in its node status record
		// (within a second of a change).
		if sts, err := nodestatus.List(ctx, e.rdb); err == nil {
			byURL := map[string]int{}
			for _, st := range sts {
				byURL[st.URL] = st.Depth
			}
			for _, n := range nodes {
				if d, ok := byURL[n.url]; ok {
					out.depths = append(out.depths, d)
				}
			}
		}
		m, err := procStatus(pid, "VmHWM")
		if err != nil {
			return nil, err
		}
		out.procPeak = m["VmHWM"]
	}
	stopped = true
	if err := stop(); err != nil {
		return nil, err
	}

	names := map[string]int{}
	for i := range nodes {
		names[nodeName(i)] = i
	}
	out.tl.samples = make([]sample, len(jobs))
	for i, j := range jobs {
		s := sample{id: j.ID, created: j.CreatedAt, node: -1, ok: j.Status == job.StatusSucceeded && j.FinishedAt != nil}
		if n, found := names[j.NodeName]; found {
			s.node = n
		}
		if j.FinishedAt != nil {
			s.finished = *j.FinishedAt
		}
		out.tl.samples[i] = s
	}
	if err := fillExecutions(ctx, nodes, out.tl.samples); err != nil {
		return nil, err
	}
	out.busy = busyFraction(nodes)
	deleteOutputs(ctx, plain, jobs)
	return out, nil
}

func nodeName(i int) string { return "node" + strconv.Itoa(i) }

// startWorker runs a worker in this process; stop drains it and waits.
// With trips, the worker's Redis client counts its round trips there.
func (e *env) startWorker(ctx context.Context, r comfyqRun, q string, nodes []*simNode, store storage.Store, trips *redistrips.Counter) (func() error, error) {
	// The worker's own Redis client, sized for its slots, as the worker command opens
	// it: the producers' client is not the worker's.
	rdb, err := producer.OpenRedisPool(e.redisURL, worker.RedisConns(len(nodes), r.depth))
	if err != nil {
		return nil, err
	}
	if trips != nil {
		rdb.AddHook(trips)
	}
	cfg := worker.Config{
		Redis:        rdb,
		Storage:      store,
		Depth:        r.depth,
		Queues:       map[string]int{q: 1},
		OutputPrefix: "bench",
		Logger:       slog.New(levelFilter{e.log.Handler(), slog.LevelWarn}),
	}
	for i, n := range nodes {
		cfg.Nodes = append(cfg.Nodes, worker.NodeConfig{URL: n.url, Name: nodeName(i)})
	}
	w, err := worker.New(cfg)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		done <- w.Run(wctx, nil)
		close(exited)
	}()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			_ = rdb.Close()
			return err
		case <-time.After(60 * time.Second):
			return errors.New("bench: the worker did not stop within 60s")
		}
	}
	if err := e.waitServers(ctx, q, len(nodes), exited); err != nil {
		_ = stop()
		return nil, err
	}
	return stop, nil
}

// startWorkerProcess runs Config.WorkerCommand as the worker; stop sends SIGTERM
// and waits.
func (e *env) startWorkerProcess(ctx context.Context, r comfyqRun, q string, nodes []*simNode, storeURL string) (func() error, int, error) {
	if len(e.cfg.WorkerCommand) == 0 {
		return nil, 0, errors.New("bench: no worker command configured")
	}
	args := append([]string(nil), e.cfg.WorkerCommand[1:]...)
	args = append(args,
		"--redis", e.redisURL,
		"--storage", storeURL,
		"--depth", depthName(r.depth),
		"--queues", q+"=1",
		"--output-prefix", "bench",
		"--log-level", "warn",
	)
	if e.cfg.WorkerProfile != "" {
		e.workerProcs++
		args = append(args, "--cpuprofile", fmt.Sprintf("%s.worker-%d", e.cfg.WorkerProfile, e.workerProcs))
	}
	for i, n := range nodes {
		args = append(args, "--comfy", nodeName(i)+"="+n.url)
	}
	cmd := exec.Command(e.cfg.WorkerCommand[0], args...)
	logs := &tailBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("bench: start the worker process: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
				if waitErr != nil {
					stopErr = fmt.Errorf("bench: worker process: %v; its log:\n%s", waitErr, logs)
				}
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
				stopErr = fmt.Errorf("bench: the worker process did not stop within 60s of SIGTERM; its log:\n%s", logs)
			}
		})
		return stopErr
	}
	if err := e.waitServers(ctx, q, len(nodes), exited); err != nil {
		_ = stop()
		return nil, 0, fmt.Errorf("%w; its log:\n%s", err, logs)
	}
	return stop, cmd.Process.Pid, nil
}

// countedProducer returns a producer whose own Redis client counts its round trips in
// trips, and a function closing both.
func (e *env) countedProducer(trips *redistrips.Counter) (*producer.Client, func(), error) {
	rdb, err := producer.OpenRedis(e.redisURL)
	if err != nil {
		return nil, nil, err
	}
	rdb.AddHook(trips)
	p, err := producer.New(producer.Config{Redis: rdb, Retention: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		_ = rdb.Close()
		return nil, nil, err
	}
	return p, func() { _ = p.Close(); _ = rdb.Close() }, nil
}

// enqueue submits jobs through p from Config.Producers goroutines at once and returns
// their ids in submission order.
func (e *env) enqueue(ctx context.Context, p *producer.Client, w Workload, jobs int, q string) ([]string, error) {
	ids := make([]string, jobs)
	next := make(chan int)
	errs := make(chan error, e.cfg.Producers)
	var wg sync.WaitGroup
	for range e.cfg.Producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				j, err := p.Enqueue(ctx, job.Spec{Workflow: w.promptJSON(i), Queue: q, MaxAttempts: 1})
				if err != nil {
					errs <- fmt.Errorf("bench: enqueue: %w", err)
					return
				}
				ids[i] = j.ID
			}
		}()
	}
	var err error
feed:
	for i := range jobs {
		select {
		case next <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return ids, err
}

// waitAll waits until queue q holds no task that has not ended, then returns the jobs'
// records (a worker writes a job's end before it acknowledges the task). It asks asynq
// for the queue's counts every 50 ms rather than following each job, so that the
// harness costs the machine under test next to nothing while the jobs run; a record
// found not ended yet is then waited for.
func (e *env) waitAll(ctx context.Context, q string, ids []string, w Workload, jobsPerNode int) ([]*job.Job, error) {
	// Generous: every job's execution three times over, plus a minute.
	budget := time.Minute + 3*time.Duration(jobsPerNode+1)*(w.JobTime+time.Second)
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := e.insp.GetQueueInfo(q)
		if err == nil && info.Pending+info.Active+info.Scheduled+info.Retry+info.Aggregating == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bench: the jobs did not end within %v: %w", budget, ctx.Err())
		case <-tick.C:
		}
	}
	out := make([]*job.Job, len(ids))
	for i, id := range ids {
		j, err := e.producer.Get(ctx, id)
		if err == nil && !j.Status.Terminal() {
			j, err = e.producer.Wait(ctx, id)
		}
		if err != nil {
			return nil, fmt.Errorf("bench: job %d of %d (%s) did not end within %v: %w", i+1, len(ids), id, budget, err)
		}
		out[i] = j
	}
	return out, nil
}

// deleteOutputs removes the jobs' outputs from the store.
func deleteOutputs(ctx context.Context, s storage.Store, jobs []*job.Job) {
	for _, j := range jobs {
		for _, o := range j.Outputs {
			if key, ok := storage.Unlocate(s, storage.Location{Bucket: o.Bucket, Key: o.Key}); ok && o.Key != "" {
				_ = s.Delete(ctx, key)
			}
		}
	}
}
