package metrics

import "github.com/prometheus/client_golang/prometheus"

// Reasons a submission is refused by a key's quota, the values of the reason label of
// SubmissionsRefused.
const (
	RefusedRate     = "rate"      // submissions per second (429)
	RefusedInFlight = "in_flight" // jobs not yet ended (429)
	RefusedQueue    = "queue"     // a queue the key may not use (403)
)

// Tenant metrics, fed by the API server. The tenant label's values are the tenants of
// the keys an operator created (and one per key given by flag or environment), so their
// number stays what the operator made it.
var (
	// TenantJobsSubmitted counts accepted submissions. Labels: tenant, queue.
	TenantJobsSubmitted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "tenant_jobs_submitted_total",
		Help: "Jobs accepted by the API, by tenant and queue.",
	}, []string{"tenant", "queue"})
	// TenantJobsFinished counts jobs that reached a terminal state. Labels: tenant,
	// status.
	TenantJobsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "tenant_jobs_finished_total",
		Help: "Jobs that reached a terminal state, by tenant and status.",
	}, []string{"tenant", "status"})
	// SubmissionsRefused counts submissions a key's quota refused. Labels: tenant,
	// reason (RefusedRate, RefusedInFlight, RefusedQueue).
	SubmissionsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "tenant_submissions_refused_total",
		Help: "Submissions refused by the key's quota, by tenant and reason (rate, in_flight, queue).",
	}, []string{"tenant", "reason"})
)

// TenantCollectors returns the collectors of the tenant metrics.
func TenantCollectors() []prometheus.Collector {
	return []prometheus.Collector{TenantJobsSubmitted, TenantJobsFinished, SubmissionsRefused}
}
