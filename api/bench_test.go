package api_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
)

// BenchmarkGetJob measures GET /v1/jobs/{id} over loopback HTTP: authentication, a
// Redis GET, decoding, fresh output URLs (served for the file store, presigned for S3)
// and encoding. Run with scripts/test.sh -run '^$' -bench GetJob ./api/.
func BenchmarkGetJob(b *testing.B) {
	for _, backend := range []string{"file", "s3"} {
		b.Run(backend, func(b *testing.B) {
			bb := setup(b, setupOpts{s3: backend == "s3"})
			id := finishedJob(b, bb)
			benchGet(b, bb.url+"/v1/jobs/"+id)
		})
	}
}

// benchGet GETs url with the user key from parallel clients, b.N times in all, and
// fails on any answer but 200.
func benchGet(b *testing.B, url string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+userKey)
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}

// finishedJob makes a succeeded job with two image outputs, as a worker writes it.
func finishedJob(tb testing.TB, b *bundle) string {
	acc := b.submit(tb, map[string]any{"workflow": jsonRaw(imageWorkflow)})
	st := b.jobs()
	_, err := st.Update(b.ctx, acc.ID, func(j *job.Job) error {
		now := time.Now().UTC()
		j.Status = job.StatusSucceeded
		j.StartedAt, j.FinishedAt = &now, &now
		j.Node, j.NodeName = "http://gpu-1:8188", "gpu-1"
		for _, name := range []string{"ComfyUI_00001_.png", "ComfyUI_00002_.png"} {
			j.Outputs = append(j.Outputs, job.Output{NodeID: "9", Kind: job.KindImage, Filename: name,
				Key: "jobs/" + acc.ID + "/9/" + name, Size: 1234567, ContentType: "image/png",
				SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})
		}
		j.Timings = &job.Timings{QueuedMS: 12, ExecutionMS: 5300, UploadMS: 80, TotalMS: 5400}
		return nil
	})
	require.NoError(tb, err)
	return acc.ID
}
