package metrics

import "github.com/prometheus/client_golang/prometheus"

// More webhook metrics, fed by package webhook. WebhookDeliveries and
// WebhookDeliveryDuration (metrics.go) count and time the delivery attempts;
// a failed attempt is result "retry", or "gave_up" when it ends the delivery
// (last attempt, 410 Gone, forbidden destination).
var (
	// WebhookEnqueued counts messages enqueued for delivery, one per event and
	// destination (a repeated event is counted once). Label: event.
	WebhookEnqueued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "webhook_enqueued_total",
		Help: "Webhook messages enqueued for delivery, by event type.",
	}, []string{"event"})
	// WebhookOrderingWaits counts the times a message was held back because
	// an earlier message of the same job to the same destination was still
	// being delivered. Label: event.
	WebhookOrderingWaits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "webhook_ordering_waits_total",
		Help: "Webhook messages held back behind an earlier message of the same job to the same destination.",
	}, []string{"event"})
)

// WebhookCollectors returns the collectors defined in this file, for
// Collectors to include.
func WebhookCollectors() []prometheus.Collector {
	return []prometheus.Collector{WebhookEnqueued, WebhookOrderingWaits}
}
