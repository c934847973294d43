// Package metrics defines comfyq's Prometheus metrics in one place, so that every
// process (API server, worker, webhook delivery) reports under the same names and labels
// and the packages that feed them need not import each other.
//
// The collectors are package variables, as in the standard client library's examples:
// a package feeds one directly (metrics.NodeUp.WithLabelValues(name).Set(1)), and the
// process that serves /metrics registers them once with Register. Registering the same
// collectors in several registries is allowed, so tests may each build their own.
//
// # Who feeds what
//
//	comfyq_node_up, comfyq_node_jobs_in_flight,
//	comfyq_node_depth, comfyq_jobs_taken_over_total,
//	comfyq_node_info                                    the worker, per ComfyUI node
//	comfyq_webhook_deliveries_total,
//	comfyq_webhook_delivery_duration_seconds           the webhook delivery task
//	comfyq_jobs_finished_total, comfyq_job_*_seconds    the API server, from the terminal
//	                                                    job events it observes (see package api)
//
// The API server also exports, at scrape time, gauges read from Redis: jobs by state and
// queue, and asynq's queue depth and latency (package api's collector).
//
// This package imports nothing of comfyq's, so any package may import it.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every comfyq metric name.
const Namespace = "comfyq"

// durationBuckets suit GPU jobs: from a tenth of a second to an hour.
var durationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600}

// deliveryBuckets suit HTTP calls to webhook receivers.
var deliveryBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Node metrics, fed by the worker.
var (
	// NodeUp is 1 while a ComfyUI node answers its health probe, 0 while it is taken out
	// of rotation. Label: node (the node's name).
	NodeUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "node_up",
		Help: "Whether the ComfyUI node answers its health probe (1) or is out of rotation (0).",
	}, []string{"node"})
	// NodeJobsInFlight is the number of jobs a node holds (executing or waiting in its
	// own queue). Label: node.
	NodeJobsInFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "node_jobs_in_flight",
		Help: "Jobs held by the ComfyUI node: executing or waiting in its queue.",
	}, []string{"node"})
	// NodeDepth is the number of jobs the worker lets a node hold at once: its
	// pipelining depth, fixed (--depth N) or as the automatic depth last set it.
	// Label: node.
	NodeDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "node_depth",
		Help: "Jobs the worker lets the ComfyUI node hold at once (pipelining depth, fixed or automatic).",
	}, []string{"node"})
	// NodeInfo is 1 for the version and capabilities the worker last detected on a
	// node (an info metric: join on node to label other series). Labels: node,
	// comfyui_version, jobs_api ("true" when the node serves ComfyUI 0.38's jobs API).
	NodeInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "node_info",
		Help: "ComfyUI version and capabilities detected on the node (value 1).",
	}, []string{"node", "comfyui_version", "jobs_api"})
	// JobsTakenOver counts jobs a worker took over from another worker process: from
	// its predecessor on a node after a restart (reason "restart") or from a worker
	// whose heartbeat expired (reason "dead"). Label: node (the taker's node the job
	// was given to), reason.
	JobsTakenOver = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "jobs_taken_over_total",
		Help: "Jobs taken over from a restarted (restart) or dead (dead) worker process.",
	}, []string{"node", "reason"})
)

// Webhook results, the values of the result label of WebhookDeliveries.
const (
	// WebhookSuccess: the receiver answered 2xx.
	WebhookSuccess = "success"
	// WebhookRetry: the attempt failed and will be retried.
	WebhookRetry = "retry"
	// WebhookGaveUp: the attempt failed and was the last one.
	WebhookGaveUp = "gave_up"
)

// Webhook metrics, fed by the webhook delivery task.
var (
	// WebhookDeliveries counts delivery attempts. Labels: event (job.succeeded, …) and
	// result (WebhookSuccess, WebhookRetry, WebhookGaveUp).
	WebhookDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "webhook_deliveries_total",
		Help: "Webhook delivery attempts by event type and result (success, retry, gave_up).",
	}, []string{"event", "result"})
	// WebhookDeliveryDuration is the time of one delivery attempt, request to response.
	// Label: event.
	WebhookDeliveryDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "webhook_delivery_duration_seconds",
		Help: "Duration of one webhook delivery attempt.", Buckets: deliveryBuckets,
	}, []string{"event"})
)

// Job metrics, fed from terminal job records (by the API server's event observer).
var (
	// JobsFinished counts jobs that reached a terminal state. Labels: queue, status
	// (succeeded, failed, canceled).
	JobsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "jobs_finished_total",
		Help: "Jobs that reached a terminal state, by queue and status.",
	}, []string{"queue", "status"})
	// JobQueuedDuration is the time a job waited before a node started it. Label: queue.
	JobQueuedDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "job_queued_seconds",
		Help: "Time from submission to the start of execution, of finished jobs.", Buckets: durationBuckets,
	}, []string{"queue"})
	// JobExecutionDuration is the time a job executed on its node. Label: queue.
	JobExecutionDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "job_execution_seconds",
		Help: "Execution time on the ComfyUI node, of finished jobs.", Buckets: durationBuckets,
	}, []string{"queue"})
	// JobUploadDuration is the time spent copying a job's outputs to storage. Label: queue.
	JobUploadDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "job_upload_seconds",
		Help: "Time copying outputs to storage, of succeeded jobs.", Buckets: durationBuckets,
	}, []string{"queue"})
	// JobTotalDuration is the time from submission to the end. Labels: queue, status.
	JobTotalDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "job_total_seconds",
		Help: "Time from submission to the terminal state, of finished jobs.", Buckets: durationBuckets,
	}, []string{"queue", "status"})
)

// Collectors returns every collector this package defines.
func Collectors() []prometheus.Collector {
	return append([]prometheus.Collector{
		NodeUp, NodeJobsInFlight, NodeDepth, NodeInfo, JobsTakenOver,
		WebhookDeliveries, WebhookDeliveryDuration,
		JobsFinished, JobQueuedDuration, JobExecutionDuration, JobUploadDuration, JobTotalDuration,
	}, append(WebhookCollectors(), TenantCollectors()...)...)
}

// Register registers every collector of this package with reg. Collectors already
// registered there are skipped, so calling it twice is safe.
func Register(reg prometheus.Registerer) error {
	for _, c := range Collectors() {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				continue
			}
			return err
		}
	}
	return nil
}
