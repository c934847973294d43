package comfy_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/comfysim"
)

func TestDetectCapabilities(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		version string
		jobs    bool
	}{{comfysim.Version0364, false}, {comfysim.Version0381, true}} {
		t.Run(tc.version, func(t *testing.T) {
			t.Parallel()
			b := setup(t, comfysim.Options{ComfyUIVersion: tc.version})
			ctx := testCtx(t)
			require.Equal(t, comfy.Capabilities{}, b.client.Capabilities(), "nothing known before detection")
			caps, err := b.client.DetectCapabilities(ctx)
			require.NoError(t, err)
			require.Equal(t, comfy.Capabilities{Version: tc.version, JobsAPI: tc.jobs}, caps)
			require.Equal(t, caps, b.client.Capabilities())
		})
	}
}

// TestLocateAndCancelBothVersions runs the same scenario on both versions: Locate
// reports queued, running, done and absent, and Cancel stops a running and a pending
// prompt.
func TestLocateAndCancelBothVersions(t *testing.T) {
	t.Parallel()
	for _, v := range comfysim.Versions() {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			b := setup(t, comfysim.Options{ComfyUIVersion: v, StepDelay: 10 * time.Millisecond})
			ctx := testCtx(t)
			c := b.client
			_, err := c.DetectCapabilities(ctx)
			require.NoError(t, err)

			done, running, pending := uuid.NewString(), uuid.NewString(), uuid.NewString()
			_, err = c.QueuePrompt(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "loc", 0), PromptID: done})
			require.NoError(t, err)
			require.Eventually(t, func() bool { return b.sim.Stats().PromptsExecuted == 1 }, 10*time.Second, 2*time.Millisecond)
			_, err = c.QueuePrompt(ctx, comfy.PromptRequest{Prompt: txt2img(t, 1, 1000), PromptID: running})
			require.NoError(t, err)
			_, err = c.QueuePrompt(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "loc", 1), PromptID: pending})
			require.NoError(t, err)

			require.Eventually(t, func() bool {
				loc, _, lerr := c.Locate(ctx, running)
				return lerr == nil && loc == comfy.PromptRunning
			}, 10*time.Second, 2*time.Millisecond)
			loc, _, err := c.Locate(ctx, pending)
			require.NoError(t, err)
			require.Equal(t, comfy.PromptQueued, loc)
			loc, entry, err := c.Locate(ctx, done)
			require.NoError(t, err)
			require.Equal(t, comfy.PromptDone, loc)
			require.True(t, entry.Succeeded())
			require.Len(t, entry.Files(), 1)
			require.Equal(t, "output", entry.Files()[0].Type)
			loc, _, err = c.Locate(ctx, uuid.NewString())
			require.NoError(t, err)
			require.Equal(t, comfy.PromptAbsent, loc)

			ok, err := c.Cancel(ctx, pending)
			require.NoError(t, err)
			require.True(t, ok)
			ok, err = c.Cancel(ctx, running)
			require.NoError(t, err)
			require.True(t, ok)
			require.Eventually(t, func() bool { return b.sim.Stats().PromptsInterrupted == 1 }, 10*time.Second, 2*time.Millisecond)
			loc, entry, err = c.Locate(ctx, running)
			require.NoError(t, err)
			require.Equal(t, comfy.PromptDone, loc)
			require.True(t, entry.Interrupted())
			loc, _, err = c.Locate(ctx, pending)
			require.NoError(t, err)
			require.Equal(t, comfy.PromptAbsent, loc, "a cancelled pending prompt is dequeued")
		})
	}
}

// TestCancelFinishedPromptIsNoOp: on a node with the jobs API, cancelling a prompt
// that has just finished does not interrupt the one that started after it.
func TestCancelFinishedPromptIsNoOp(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{ComfyUIVersion: comfysim.Version0381, StepDelay: 5 * time.Millisecond})
	ctx := testCtx(t)
	c := b.client
	_, err := c.DetectCapabilities(ctx)
	require.NoError(t, err)
	first, next := uuid.NewString(), uuid.NewString()
	_, err = c.QueuePrompt(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "first", 0), PromptID: first})
	require.NoError(t, err)
	_, err = c.QueuePrompt(ctx, comfy.PromptRequest{Prompt: txt2img(t, 3, 60), PromptID: next})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		loc, _, lerr := c.Locate(ctx, next)
		return lerr == nil && loc == comfy.PromptRunning
	}, 10*time.Second, time.Millisecond)
	ok, err := c.Cancel(ctx, first)
	require.NoError(t, err)
	require.False(t, ok, "the first prompt had finished: nothing to cancel")
	require.Eventually(t, func() bool { return b.sim.Stats().PromptsExecuted == 2 }, 10*time.Second, 2*time.Millisecond)
	require.Zero(t, b.sim.Stats().PromptsInterrupted, "the running prompt was not interrupted")
	h, err := c.History(ctx, next)
	require.NoError(t, err)
	require.True(t, h.Succeeded())
}
