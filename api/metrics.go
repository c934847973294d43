package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
)

// Metrics
//
// /metrics serves, in the Prometheus text format:
//
//   - comfyq_jobs{queue,status}: job records by state, counted at scrape time over the
//     newest Config.MetricsScanLimit records of the job index (comfyq:jobs), and
//     comfyq_jobs_scanned, how many records that was.
//   - comfyq_queue_size, comfyq_queue_tasks{queue,state}, comfyq_queue_latency_seconds,
//     comfyq_queue_paused, comfyq_queue_processed_total, comfyq_queue_failed_total:
//     asynq's view of each queue (Inspector.GetQueueInfo); latency is the age of the
//     oldest pending task.
//   - comfyq_redis_up: whether the scrape could read Redis.
//   - the metrics of package internal/metrics: node health and webhook deliveries (fed by
//     the worker and the webhook task in their processes), and the counters and
//     histograms of finished jobs: comfyq_jobs_finished_total{queue,status},
//     comfyq_job_queued_seconds, comfyq_job_execution_seconds, comfyq_job_upload_seconds,
//     comfyq_job_total_seconds.
//
// The finished-job metrics are fed from the live events every API replica receives:
// when a replica sees a terminal status event, it claims the job with SET NX on
// comfyq:metrics:finished:{id} (kept a day), and only the replica that wins observes the
// job's timings. Summed over replicas, every finished job is then counted once. Events
// are best effort (a Redis reconnect can lose some), so these are close to, not exactly,
// the truth; comfyq_jobs is exact for the records it scans.

// finishedClaimTTL is how long the claim of a finished job's metrics is kept.
const finishedClaimTTL = 24 * time.Hour

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metricsHTTP.ServeHTTP(w, r)
	return nil
}

// observeTerminal feeds the finished-job metrics from a terminal job record, once per
// job across replicas.
func (s *Server) observeTerminal(j *job.Job) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	won, err := s.rdb.SetNX(ctx, jobstore.KeyPrefix+"metrics:finished:"+j.ID, "1", finishedClaimTTL).Result()
	if err != nil || !won {
		return
	}
	observeJob(j)
}

func observeJob(j *job.Job) {
	status := string(j.Status)
	metrics.JobsFinished.WithLabelValues(j.Queue, status).Inc()
	metrics.TenantJobsFinished.WithLabelValues(j.Tenant, status).Inc()
	t := j.Timings
	if t == nil {
		if j.FinishedAt != nil {
			metrics.JobTotalDuration.WithLabelValues(j.Queue, status).Observe(j.FinishedAt.Sub(j.CreatedAt).Seconds())
		}
		return
	}
	metrics.JobTotalDuration.WithLabelValues(j.Queue, status).Observe(ms(t.TotalMS))
	if j.StartedAt != nil {
		metrics.JobQueuedDuration.WithLabelValues(j.Queue).Observe(ms(t.QueuedMS))
	}
	if t.ExecutionMS > 0 {
		metrics.JobExecutionDuration.WithLabelValues(j.Queue).Observe(ms(t.ExecutionMS))
	}
	if j.Status == job.StatusSucceeded {
		metrics.JobUploadDuration.WithLabelValues(j.Queue).Observe(ms(t.UploadMS))
	}
}

func ms(v int64) float64 { return float64(v) / 1000 }

// redisCollector reads the gauges of Redis at scrape time, caching them for
// Config.MetricsCacheFor so that frequent scrapes cost Redis little.
type redisCollector struct {
	s *Server

	jobs, scanned, up                              *prometheus.Desc
	qSize, qTasks, qLatency, qPaused, qProc, qFail *prometheus.Desc

	mu     sync.Mutex
	at     time.Time
	cached []prometheus.Metric
}

func newRedisCollector(s *Server) *redisCollector {
	ns := metrics.Namespace
	return &redisCollector{
		s:        s,
		jobs:     prometheus.NewDesc(ns+"_jobs", "Job records by queue and status, over the newest records of the job index (see comfyq_jobs_scanned).", []string{"queue", "status"}, nil),
		scanned:  prometheus.NewDesc(ns+"_jobs_scanned", "Job records read to compute comfyq_jobs.", nil, nil),
		up:       prometheus.NewDesc(ns+"_redis_up", "Whether the last scrape could read Redis (1) or not (0).", nil, nil),
		qSize:    prometheus.NewDesc(ns+"_queue_size", "Tasks in the asynq queue (pending, active, scheduled, retry, archived).", []string{"queue"}, nil),
		qTasks:   prometheus.NewDesc(ns+"_queue_tasks", "Tasks in the asynq queue by task state.", []string{"queue", "state"}, nil),
		qLatency: prometheus.NewDesc(ns+"_queue_latency_seconds", "Age of the oldest pending task of the queue.", []string{"queue"}, nil),
		qPaused:  prometheus.NewDesc(ns+"_queue_paused", "Whether the queue is paused.", []string{"queue"}, nil),
		qProc:    prometheus.NewDesc(ns+"_queue_processed_total", "Tasks processed from the queue, succeeded or failed (asynq's cumulative count).", []string{"queue"}, nil),
		qFail:    prometheus.NewDesc(ns+"_queue_failed_total", "Task attempts of the queue that failed (asynq's cumulative count).", []string{"queue"}, nil),
	}
}

func (c *redisCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.jobs, c.scanned, c.up, c.qSize, c.qTasks, c.qLatency, c.qPaused, c.qProc, c.qFail} {
		ch <- d
	}
}

func (c *redisCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cached == nil || time.Since(c.at) >= c.s.cfg.MetricsCacheFor {
		c.cached = c.gather()
		c.at = time.Now()
	}
	for _, m := range c.cached {
		ch <- m
	}
}

func (c *redisCollector) gather() []prometheus.Metric {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...))
	}
	counts, scanned, err := c.countJobs(ctx)
	if err != nil {
		c.s.log.Warn("metrics: read job records", "err", err)
		gauge(c.up, 0)
		return out
	}
	for k, n := range counts {
		gauge(c.jobs, float64(n), k.queue, k.status)
	}
	gauge(c.scanned, float64(scanned))
	queues, err := c.s.inspector.Queues()
	if err != nil {
		c.s.log.Warn("metrics: list queues", "err", err)
		gauge(c.up, 0)
		return out
	}
	for _, q := range queues {
		info, err := c.s.inspector.GetQueueInfo(q)
		if err != nil {
			c.s.log.Warn("metrics: queue info", "queue", q, "err", err)
			continue
		}
		gauge(c.qSize, float64(info.Size), q)
		for state, n := range map[string]int{
			"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled, "retry": info.Retry,
			"archived": info.Archived, "completed": info.Completed, "aggregating": info.Aggregating,
		} {
			gauge(c.qTasks, float64(n), q, state)
		}
		gauge(c.qLatency, info.Latency.Seconds(), q)
		paused := 0.0
		if info.Paused {
			paused = 1
		}
		gauge(c.qPaused, paused, q)
		counter(c.qProc, float64(info.ProcessedTotal), q)
		counter(c.qFail, float64(info.FailedTotal), q)
	}
	gauge(c.up, 1)
	return out
}

type queueStatus struct{ queue, status string }

// countJobs counts the newest job records by queue and status.
func (c *redisCollector) countJobs(ctx context.Context) (map[queueStatus]int, int, error) {
	ids, err := c.s.rdb.ZRevRange(ctx, jobstore.KeyPrefix+"jobs", 0, int64(c.s.cfg.MetricsScanLimit-1)).Result()
	if err != nil {
		return nil, 0, err
	}
	counts := map[queueStatus]int{}
	// Every state of every queue seen is reported, zeros included, so that a series
	// does not vanish when its count drops to zero.
	scanned := 0
	const batch = 500
	for start := 0; start < len(ids); start += batch {
		end := min(start+batch, len(ids))
		// GETs in a pipeline rather than MGET: in a Redis Cluster the keys live in
		// different slots.
		cmds := make([]*redis.StringCmd, 0, end-start)
		_, err := c.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, id := range ids[start:end] {
				cmds = append(cmds, p.Get(ctx, jobstore.KeyPrefix+"job:"+id))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, 0, err
		}
		for _, cmd := range cmds {
			str, err := cmd.Result()
			if err != nil {
				continue // expired
			}
			var rec struct {
				Status job.Status `json:"status"`
				Queue  string     `json:"queue"`
			}
			if json.Unmarshal([]byte(str), &rec) != nil {
				continue
			}
			scanned++
			if _, seen := counts[queueStatus{rec.Queue, string(job.StatusQueued)}]; !seen {
				for _, st := range allStatuses {
					counts[queueStatus{rec.Queue, string(st)}] += 0
				}
			}
			counts[queueStatus{rec.Queue, string(rec.Status)}]++
		}
	}
	return counts, scanned, nil
}

var allStatuses = []job.Status{job.StatusQueued, job.StatusRunning, job.StatusUploading, job.StatusCanceling, job.StatusSucceeded, job.StatusFailed, job.StatusCanceled}
