package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/comfyq/comfyq/api"
)

// BenchmarkV2GetJob reads one finished job with two outputs through /v1 and through
// /api/v2 side by side (compare the two: v2 also mints the outputs' asset records and
// reads the v2 job record).
func BenchmarkV2GetJob(b *testing.B) {
	bb := setup(b, setupOpts{s3: true})
	id := finishedJob(b, bb)
	for name, path := range map[string]string{"v1": "/v1/jobs/", "v2": "/api/v2/jobs/"} {
		b.Run(name, func(b *testing.B) {
			benchGet(b, bb.url+path+id)
		})
	}
}

// BenchmarkV2Submit submits the same workflow through POST /v1/jobs and POST
// /api/v2/jobs (which also checks the classes against object_info and keeps the
// workflow), side by side.
func BenchmarkV2Submit(b *testing.B) {
	bb := setup(b, setupOpts{config: func(c *api.Config) { c.MaxQueueDepth = -1 }})
	body, _ := json.Marshal(map[string]any{"workflow": txt2img(b)})
	for name, path := range map[string]string{"v1": "/v1/jobs", "v2": "/api/v2/jobs"} {
		b.Run(name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", bb.url+path, bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+userKey)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode >= 300 {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
			})
		})
	}
}
