package worker_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/worker"
)

const loadImageWorkflow = `{
 "1": {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}},
 "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
 "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "fetched"}}
}`

// A transient failure fetching an input (5xx) is retried within the attempt; a
// permanent one (4xx) fails the job with invalid_input after one attempt, before the
// prompt runs.
func TestInputFetchTransientRetriedPermanentInvalidInput(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{worker: func(c *worker.Config) { c.Inputs.AllowPrivate = true }})
	first := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)}).ID)
	require.Equal(t, job.StatusSucceeded, first.Status)
	pngBytes := b.output(t, first.Outputs[0])

	var fetches atomic.Int32
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/flaky.png":
			if fetches.Add(1) <= 2 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(pngBytes)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(src.Close)

	ok := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(loadImageWorkflow),
		Images: map[string]job.ImageSource{"1.inputs.image": {URL: src.URL + "/flaky.png"}}}).ID)
	require.Equal(t, job.StatusSucceeded, ok.Status, describe(ok))
	require.Equal(t, 1, ok.Attempt, "the fetch was retried inside the attempt")
	require.Equal(t, int32(3), fetches.Load())

	gone := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(loadImageWorkflow), MaxAttempts: 3,
		Images: map[string]job.ImageSource{"1.inputs.image": {URL: src.URL + "/missing.png"}}}).ID)
	require.Equal(t, job.StatusFailed, gone.Status)
	require.Equal(t, job.CodeInvalidInput, gone.Error.Code, describe(gone))
	require.Equal(t, 1, gone.Attempt, "a permanent input failure is not retried")
	require.Equal(t, 0, b.sim.Executions(gone.ID))
}

// An input whose bytes are not an image, video or audio file (an HTML page behind a
// .png URL, a data:text/html) fails the job with invalid_input before the prompt runs,
// whatever its name or Content-Type says.
func TestInputNotAnImageIsInvalidInput(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{worker: func(c *worker.Config) { c.Inputs.AllowPrivate = true }})
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write([]byte("<!DOCTYPE html><script>alert(document.cookie)</script>"))
	}))
	t.Cleanup(src.Close)
	for name, img := range map[string]job.ImageSource{
		"url":            {URL: src.URL + "/cat.png"},
		"data:text/html": {Base64: "data:text/html;base64,PGh0bWw+PC9odG1sPg=="},
		"base64 text":    {Base64: "aGVsbG8gd29ybGQ="},
	} {
		j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(loadImageWorkflow), MaxAttempts: 3,
			Images: map[string]job.ImageSource{"1.inputs.image": img}}).ID)
		require.Equal(t, job.StatusFailed, j.Status, name)
		require.Equal(t, job.CodeInvalidInput, j.Error.Code, "%s: %s", name, describe(j))
		require.Contains(t, j.Error.Message, "not an image", name)
		require.Equal(t, 1, j.Attempt, "%s: a bad input is not retried", name)
		require.Equal(t, 0, b.sim.Executions(j.ID), name)
	}
}
