package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/worker"
)

// slowStore makes every Put wait, as a remote object store far away would, and
// records how many Puts were in flight at once: each is one job the worker holds in
// its after phase.
type slowStore struct {
	storage.Store
	wait time.Duration

	mu            sync.Mutex
	inFlight, max int
}

func (s *slowStore) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Object, error) {
	s.mu.Lock()
	s.inFlight++
	s.max = max(s.max, s.inFlight)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return storage.Object{}, ctx.Err()
	case <-time.After(s.wait):
	}
	return s.Store.Put(ctx, key, r, opts)
}

func (s *slowStore) maxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}

// runTinyJobs runs jobs of a few milliseconds whose upload takes far longer on a
// worker configured by tweak, and returns the most uploads that were in flight at
// once.
func runTinyJobs(t *testing.T, nodeName string, jobs int, tweak func(*worker.Config)) int {
	t.Helper()
	b := setup(t, setupOpts{noWorker: true})
	slow := &slowStore{Store: b.store, wait: 40 * time.Millisecond}
	startWorker(t, b, func(c *worker.Config) {
		c.Storage = slow
		c.Nodes[0].Name = nodeName
		tweak(c)
	})
	ids := make([]string, jobs)
	for i := range ids {
		wf := fmt.Sprintf(`{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": %d}},
 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "depth"}}}`, i)
		ids[i] = b.submit(t, job.Spec{Workflow: json.RawMessage(wf)}).ID
	}
	for _, id := range ids {
		j := b.wait(t, id)
		require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
	}
	return slow.maxInFlight()
}

// TestAutoDepthRisesWhenAfterWorkDominates: with the automatic depth a node whose
// jobs spend far longer uploading than executing is given more slots than the
// initial 2, so that the node keeps executing while several jobs upload; never more
// than the maximum.
func TestAutoDepthRisesWhenAfterWorkDominates(t *testing.T) {
	t.Parallel()
	const maxDepth = 4
	held := runTinyJobs(t, "depth-auto", 40, func(c *worker.Config) {
		c.Depth = 0 // auto
		c.MaxDepth = maxDepth
	})
	require.Greater(t, held, 2, "more jobs in flight at once than the initial depth of 2")
	require.LessOrEqual(t, held, maxDepth, "never more than --max-depth")
	require.Equal(t, float64(maxDepth), nodeDepth(t, "depth-auto"),
		"uploads of 40 ms after executions of a few: 1 + ⌈after/execution⌉ is over the maximum")
}

// TestFixedDepthBounds: a fixed depth is a hard bound on the jobs a node holds.
func TestFixedDepthBounds(t *testing.T) {
	t.Parallel()
	held := runTinyJobs(t, "depth-fixed", 20, func(c *worker.Config) { c.Depth = 2 })
	require.LessOrEqual(t, held, 2)
	require.Equal(t, 2.0, nodeDepth(t, "depth-fixed"))
}

// nodeDepth reads the comfyq_node_depth gauge of a node.
func nodeDepth(t *testing.T, node string) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, metrics.NodeDepth.WithLabelValues(node).Write(&m))
	return m.GetGauge().GetValue()
}
