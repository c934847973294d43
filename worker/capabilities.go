package worker

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/internal/metrics"
)

// learn keeps the node's capabilities current from a successful health probe. They are
// detected again when the node attaches, when it comes back after failed probes (a
// restart may have changed its version) and whenever the version it reports changes.
// The comfy client then locates and cancels prompts by the best path the node offers.
func (n *node) learn(ctx context.Context, version string) {
	known := n.comfy.Capabilities()
	if !n.capsStale.Load() && known.Version == version && known != (comfy.Capabilities{}) {
		return
	}
	caps, err := n.comfy.DetectCapabilities(ctx)
	if err != nil {
		n.log.Warn("could not detect the node's capabilities; keeping the previous ones", "err", err)
		return
	}
	n.capsStale.Store(false)
	if caps == known {
		return
	}
	cancel := "interrupt + queue delete"
	locate := "/queue + /history"
	if caps.JobsAPI {
		cancel, locate = "POST /api/jobs/{id}/cancel", "GET /api/jobs/{id}"
	}
	n.log.Info("node capabilities", "comfyui_version", caps.Version, "jobs_api", caps.JobsAPI,
		"locate", locate, "cancel", cancel)
	metrics.NodeInfo.DeletePartialMatch(prometheus.Labels{"node": n.cfg.Name})
	metrics.NodeInfo.WithLabelValues(n.cfg.Name, caps.Version, strconv.FormatBool(caps.JobsAPI)).Set(1)
}

// Capabilities returns, per node name, what the worker last detected on each node.
func (w *Worker) Capabilities() map[string]comfy.Capabilities {
	out := make(map[string]comfy.Capabilities, len(w.nodes))
	for _, n := range w.nodes {
		out[n.cfg.Name] = n.comfy.Capabilities()
	}
	return out
}
