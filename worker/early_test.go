package worker_test

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/worker"
)

// recordingStore is a storage.Store that notes when each Put ended and which keys
// were deleted.
type recordingStore struct {
	storage.Store
	mu      sync.Mutex
	puts    map[string][]time.Time
	deletes []string
}

func (s *recordingStore) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Object, error) {
	o, err := s.Store.Put(ctx, key, r, opts)
	if err == nil {
		s.mu.Lock()
		s.puts[key] = append(s.puts[key], time.Now())
		s.mu.Unlock()
	}
	return o, err
}

func (s *recordingStore) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	s.deletes = append(s.deletes, key)
	s.mu.Unlock()
	return s.Store.Delete(ctx, key)
}

// twoOutputs saves one image at once (node 2) and another after two more nodes (5).
const twoOutputs = `{
 "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 255}},
 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "first"}},
 "3": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 65280}},
 "4": {"class_type": "ImageInvert", "inputs": {"image": ["3", 0]}},
 "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "second"}}
}`

func setupRecording(t *testing.T, delay time.Duration) (*bundle, *recordingStore) {
	t.Helper()
	b := setup(t, setupOpts{sim: comfysim.Options{NodeDelay: delay}, noWorker: true})
	rec := &recordingStore{Store: b.store, puts: map[string][]time.Time{}}
	b.stop = startWorker(t, b, func(c *worker.Config) { c.Storage = rec })
	return b, rec
}

// TestOutputCopiedWhileThePromptRuns: the first image is in storage before the node
// has finished the prompt (it is copied when the node reports it, not after the
// history is read), each output is stored once, and nothing is deleted.
func TestOutputCopiedWhileThePromptRuns(t *testing.T) {
	t.Parallel()
	b, rec := setupRecording(t, 500*time.Millisecond)
	j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(twoOutputs)}).ID)
	require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
	require.Len(t, j.Outputs, 2)

	c, err := comfy.New(comfy.Config{BaseURL: b.simURL})
	require.NoError(t, err)
	defer c.Close()
	h, err := c.History(b.ctx, j.ID)
	require.NoError(t, err)
	var end time.Time
	for _, m := range h.Status.Messages {
		if m.Type == "execution_success" {
			end = m.Timestamp()
		}
	}
	require.False(t, end.IsZero(), "no execution_success in the history")

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var first time.Time
	for _, o := range j.Outputs {
		key, ok := storage.Unlocate(b.store, storage.Location{Bucket: o.Bucket, Key: o.Key})
		require.True(t, ok)
		require.Len(t, rec.puts[key], 1, "output %s stored once", key)
		if first.IsZero() || rec.puts[key][0].Before(first) {
			first = rec.puts[key][0]
		}
		require.Equal(t, b.view(t, o.Filename, "", "output"), b.output(t, o), "the stored bytes are the node's")
	}
	require.Len(t, rec.puts, 2, "no other object stored")
	require.Empty(t, rec.deletes)
	// The node spent at least one more node's delay (500 ms) after the first save.
	require.True(t, first.Before(end), "first output stored %v, prompt ended %v: not copied while it ran", first, end)
}

// TestEarlyCopyOfAFailedJobIsDeleted: an image saved before a later node fails was
// copied early; the job fails and the copy is removed from storage.
func TestEarlyCopyOfAFailedJobIsDeleted(t *testing.T) {
	t.Parallel()
	b, rec := setupRecording(t, 300*time.Millisecond)
	b.sim.FailNode("4", "ValueError", "not this time")
	j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(twoOutputs)}).ID)
	require.Equal(t, job.StatusFailed, j.Status)
	require.Empty(t, j.Outputs)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Len(t, rec.puts, 1, "the first image was copied while the prompt ran")
	for key := range rec.puts {
		require.Equal(t, []string{key}, rec.deletes, "and deleted when the job failed")
		_, err := b.store.Stat(b.ctx, key)
		require.ErrorIs(t, err, storage.ErrNotFound)
	}
}

// imageThenText saves an image first (node 2), then spends three more nodes before
// its last output, a text (PreviewAny).
const imageThenText = `{
 "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 255}},
 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "only"}},
 "3": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 65280}},
 "4": {"class_type": "ImageInvert", "inputs": {"image": ["3", 0]}},
 "5": {"class_type": "PreviewAny", "inputs": {"source": ["4", 0]}}
}`

// TestNothingLeftToUploadSkipsUploading: when every file was stored while the prompt
// ran, the job goes from running to succeeded in one write, without an uploading
// state that would last no time.
func TestNothingLeftToUploadSkipsUploading(t *testing.T) {
	t.Parallel()
	b, rec := setupRecording(t, 400*time.Millisecond)
	j := b.submit(t, job.Spec{Workflow: json.RawMessage(imageThenText)})
	events, err := b.producer.Watch(b.ctx, j.ID)
	require.NoError(t, err)
	var seen []job.Status
	for ev := range events {
		if ev.Job == nil {
			continue
		}
		if len(seen) == 0 || seen[len(seen)-1] != ev.Job.Status {
			seen = append(seen, ev.Job.Status)
		}
		if ev.Job.Status.Terminal() {
			break
		}
	}
	j = b.wait(t, j.ID)
	require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
	require.Len(t, j.Outputs, 2, "the image and the text")
	require.Contains(t, seen, job.StatusRunning)
	require.NotContains(t, seen, job.StatusUploading, "statuses: %v", seen)
	require.NotNil(t, j.StartedAt)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Len(t, rec.puts, 1)
}
