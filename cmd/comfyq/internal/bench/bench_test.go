package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/testenv"
)

// newTestEnv gives a benchmark or test a Redis of its own, a temporary file store
// and, with s3, the test S3 service.
func newTestEnv(tb testing.TB, s3 bool) *env {
	tb.Helper()
	cfg := Config{RedisURL: testenv.NewRedis(tb), Dir: tb.TempDir()}
	if s3 {
		// 5 MiB parts (S3's least), so that a small output takes the multipart path.
		cfg.StorageURL = testenv.S3URL(tb) + "&part_size=5242880"
	}
	require.NoError(tb, cfg.setDefaults())
	e, err := newEnv(tb.Context(), cfg)
	require.NoError(tb, err)
	tb.Cleanup(e.close)
	return e
}

// BenchmarkEndToEnd sends b.N tiny jobs (EmptyImage → SaveImage) through
// producer → Redis → worker (automatic depth) → simulated nodes → file storage and reports
// jobs/s, the orchestration overhead per job and the nodes' busy fraction.
func BenchmarkEndToEnd(b *testing.B) {
	for _, nodes := range []int{1, 4} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			e := newTestEnv(b, false)
			b.ResetTimer()
			o, err := e.runComfyq(b.Context(), comfyqRun{jobs: b.N, nodes: nodes})
			b.StopTimer()
			require.NoError(b, err)
			r := e.comfyqResult("bench", "comfyq", Workload{}, 0, nodes, 0, o)
			require.Equal(b, b.N, r.Succeeded)
			b.ReportMetric(r.JobsPerS, "jobs/s")
			b.ReportMetric(r.OverheadMS.Mean*float64(time.Millisecond), "overhead-ns/job")
			b.ReportMetric(r.BusyFraction, "busy-fraction")
		})
	}
}

// BenchmarkPipelining runs jobs of 200 ms on one node whose outputs take 100 ms to
// upload, at depth 1 and 2, and reports the node's busy fraction. Each iteration is
// one job; at least 3 run, so that there is a gap to measure.
func BenchmarkPipelining(b *testing.B) {
	for _, depth := range []int{1, 2} {
		b.Run(fmt.Sprintf("depth%d", depth), func(b *testing.B) {
			e := newTestEnv(b, false)
			w := Workload{JobTime: 200 * time.Millisecond}
			b.ResetTimer()
			o, err := e.runComfyq(b.Context(), comfyqRun{workload: w, jobs: max(b.N, 3), nodes: 1, depth: depth, latency: 100 * time.Millisecond})
			b.StopTimer()
			require.NoError(b, err)
			r := e.comfyqResult("bench", "comfyq", w, 100*time.Millisecond, 1, depth, o)
			b.ReportMetric(r.BusyFraction, "busy-fraction")
			b.ReportMetric(r.JobsPerS, "jobs/s")
			b.ReportMetric(r.OverheadMS.Mean*float64(time.Millisecond), "overhead-ns/job")
			b.ReportMetric(0, "ns/op") // the job count is not b.N
		})
	}
}
