package comfy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy"
)

// longChain is a model-free prompt that keeps a CPU node busy for a while: a large
// image blurred several times, then previewed.
func longChain(t testing.TB, size int) comfy.Workflow {
	var b strings.Builder
	fmt.Fprintf(&b, `{"1":{"class_type":"EmptyImage","inputs":{"width":%d,"height":%d,"batch_size":1,"color":255}}`, size, size)
	prev := "1"
	for i := 2; i <= 13; i++ {
		fmt.Fprintf(&b, `,"%d":{"class_type":"ImageBlur","inputs":{"image":["%s",0],"blur_radius":31,"sigma":10.0}}`, i, prev)
		prev = fmt.Sprint(i)
	}
	fmt.Fprintf(&b, `,"14":{"class_type":"PreviewImage","inputs":{"images":["%s",0]}}}`, prev)
	return mustWorkflow(t, b.String())
}

// runConformanceMore are the cases of issue 15: execution errors, interrupting a
// running prompt, temp outputs, batches with several output nodes, and a node restart
// with prompts queued.
func runConformanceMore(t *testing.T, ctx context.Context, c *comfy.Client, caps comfy.Capabilities, tag string, restart func()) {
	t.Run("execution error", func(t *testing.T) {
		// An RGBA source composited onto an RGB destination: torch refuses to add the
		// two (nodes_mask.py composite).
		wf := mustWorkflow(t, `{"1":{"class_type":"EmptyImage","inputs":{"width":16,"height":16,"batch_size":1,"color":0}},
		  "2":{"class_type":"SolidMask","inputs":{"value":0.5,"width":16,"height":16}},
		  "3":{"class_type":"JoinImageWithAlpha","inputs":{"image":["1",0],"alpha":["2",0]}},
		  "4":{"class_type":"ImageCompositeMasked","inputs":{"destination":["1",0],"source":["3",0],"x":0,"y":0,"resize_source":false}},
		  "5":{"class_type":"PreviewImage","inputs":{"images":["4",0]}}}`)
		log := newEventLog()
		h, err := c.Run(ctx, comfy.PromptRequest{Prompt: wf, PromptID: uuid.NewString()}, comfy.FollowOptions{OnEvent: log.on})
		var ee *comfy.ExecutionError
		require.ErrorAs(t, err, &ee)
		require.Equal(t, "4", ee.NodeID)
		require.Equal(t, "ImageCompositeMasked", ee.NodeType)
		require.Equal(t, "RuntimeError", ee.ExceptionType)
		require.Contains(t, ee.ExceptionMessage, "must match the size of tensor b")
		require.NotEmpty(t, ee.Traceback)
		require.ElementsMatch(t, []string{"1", "2", "3"}, ee.Executed)
		require.Equal(t, "error", h.Status.StatusStr)
		require.False(t, h.Status.Completed)
		require.False(t, log.has(comfy.EventExecutionSuccess))
	})

	t.Run("interrupt of a running prompt", func(t *testing.T) {
		id := uuid.NewString()
		log := newEventLog()
		done := runAsync(ctx, c, comfy.PromptRequest{Prompt: longChain(t, 1024), PromptID: id}, comfy.FollowOptions{OnEvent: log.on})
		requireEventually(t, func() bool {
			loc, _, err := c.Locate(ctx, id)
			return err == nil && loc == comfy.PromptRunning && log.has(comfy.EventExecuting)
		})
		ok, err := c.Cancel(ctx, id)
		require.NoError(t, err)
		require.True(t, ok)
		res := wait(t, done)
		require.ErrorIs(t, res.err, comfy.ErrInterrupted)
		require.True(t, res.h.Interrupted())
		requireEvent(t, log, comfy.EventExecutionInterrupted, func(v any) {
			ei := v.(*comfy.ExecutionInterrupted)
			require.NotEqual(t, "1", ei.NodeID, "interrupted between nodes: the first one had finished")
			require.Contains(t, ei.Executed, "1")
		})
		loc, _, err := c.Locate(ctx, id)
		require.NoError(t, err)
		require.Equal(t, comfy.PromptDone, loc)
		if caps.JobsAPI {
			j, err := c.Job(ctx, id)
			require.NoError(t, err)
			require.Equal(t, comfy.JobCancelled, j.Status, "an interrupted job is cancelled in the jobs API")
		}
	})

	t.Run("temp outputs, a batch and several output nodes", func(t *testing.T) {
		wf := mustWorkflow(t, fmt.Sprintf(`{"1":{"class_type":"EmptyImage","inputs":{"width":8,"height":8,"batch_size":3,"color":%d}},
		  "2":{"class_type":"SaveImage","inputs":{"images":["1",0],"filename_prefix":"conf_%s_batch"}},
		  "3":{"class_type":"PreviewImage","inputs":{"images":["1",0]}}}`, 0x123456, tag))
		log := newEventLog()
		h, err := c.Run(ctx, comfy.PromptRequest{Prompt: wf, PromptID: uuid.NewString()}, comfy.FollowOptions{OnEvent: log.on})
		require.NoError(t, err)
		var saved, temp []comfy.FileRef
		for _, f := range h.Files() {
			switch f.NodeID {
			case "2":
				saved = append(saved, f.FileRef)
			case "3":
				temp = append(temp, f.FileRef)
			}
		}
		require.Len(t, saved, 3)
		require.Len(t, temp, 3)
		for i, f := range saved {
			require.Equal(t, fmt.Sprintf("conf_%s_batch_%05d_.png", tag, i+1), f.Filename)
			require.Equal(t, "output", f.Type)
		}
		for _, f := range temp {
			require.Equal(t, "temp", f.Type)
			require.True(t, strings.HasPrefix(f.Filename, "ComfyUI_temp_"), f.Filename)
			v, err := c.View(ctx, f, nil)
			require.NoError(t, err)
			v.Body.Close()
		}
		n := 0
		for _, typ := range log.types() {
			if typ == comfy.EventExecuted {
				n++
			}
		}
		require.Equal(t, 2, n, "one executed per output node")
	})

	t.Run("node restart with prompts queued", func(t *testing.T) {
		if restart == nil {
			t.Skip("a real node cannot be restarted by the suite")
		}
		running, pending := uuid.NewString(), uuid.NewString()
		_, err := c.QueuePrompt(ctx, comfy.PromptRequest{Prompt: longChain(t, 512), PromptID: running})
		require.NoError(t, err)
		_, err = c.QueuePrompt(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "conf_"+tag+"_pending", 0), PromptID: pending})
		require.NoError(t, err)
		requireEventually(t, func() bool {
			loc, _, lerr := c.Locate(ctx, running)
			return lerr == nil && loc == comfy.PromptRunning
		})
		restart()
		for _, id := range []string{running, pending} {
			loc, _, lerr := c.Locate(ctx, id)
			require.NoError(t, lerr)
			require.Equal(t, comfy.PromptAbsent, loc, "a restart loses the queue")
		}
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = c.Follow(fctx, running, comfy.FollowOptions{})
		require.True(t, errors.Is(err, comfy.ErrPromptLost), "Follow reports the loss: %v", err)
		h, err := c.Run(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "conf_"+tag+"_pending", 0), PromptID: pending}, comfy.FollowOptions{})
		require.NoError(t, err, "the same prompt id is accepted again")
		require.True(t, h.Succeeded())
	})
}

func requireEventually(t *testing.T, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 30*time.Second, 2*time.Millisecond)
}
