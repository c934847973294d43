package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/metrics"
)

func TestRegisterTwiceAndInSeveralRegistries(t *testing.T) {
	a, b := prometheus.NewRegistry(), prometheus.NewRegistry()
	require.NoError(t, metrics.Register(a))
	require.NoError(t, metrics.Register(a), "registering again is safe")
	require.NoError(t, metrics.Register(b))

	metrics.NodeUp.WithLabelValues("gpu-1").Set(1)
	metrics.WebhookDeliveries.WithLabelValues("job.succeeded", metrics.WebhookRetry).Inc()
	for _, reg := range []*prometheus.Registry{a, b} {
		families, err := reg.Gather()
		require.NoError(t, err)
		got := map[string]float64{}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				switch {
				case m.GetGauge() != nil:
					got[f.GetName()] = m.GetGauge().GetValue()
				case m.GetCounter() != nil:
					got[f.GetName()] = m.GetCounter().GetValue()
				}
			}
		}
		require.Equal(t, 1.0, got["comfyq_node_up"])
		require.Equal(t, 1.0, got["comfyq_webhook_deliveries_total"])
	}
}
