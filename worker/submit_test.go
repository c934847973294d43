package worker_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/worker"
)

// TestFreshJobIsSubmittedWithoutALookup: a job that no attempt has placed on a node
// (its record names none) goes to the node with POST /prompt and nothing about its
// prompt asked before, once. A job whose record names a node is looked for first
// (TestResume*, TestTakeover*: re-attached, collected, never run twice).
func TestFreshJobIsSubmittedWithoutALookup(t *testing.T) {
	t.Parallel()
	for _, v := range comfysim.Versions() {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{sim: comfysim.Options{ComfyUIVersion: v}, noWorker: true})
			gate := newLookupGate(t, b)
			b.stop = startWorker(t, b, func(c *worker.Config) { c.Nodes[0].URL = gate.url })

			j := b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)})
			done := b.wait(t, j.ID)
			require.Equal(t, job.StatusSucceeded, done.Status)
			require.Equal(t, 1, b.sim.Executions(j.ID))

			reqs := gate.requests()
			submit := slices.Index(reqs, "POST /prompt")
			require.GreaterOrEqual(t, submit, 0, "requests: %v", reqs)
			for _, r := range reqs[:submit] {
				require.NotContains(t, r, j.ID, "asked about the prompt before submitting it: %v", reqs)
			}
			require.Equal(t, 1, strings.Count(strings.Join(reqs, "\n"), "POST /prompt"), "requests: %v", reqs)
		})
	}
}
