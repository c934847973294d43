package comfy_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
)

// TestConformance runs one set of protocol tests against the simulator of every
// ComfyUI version it knows, always, and against a real ComfyUI when
// COMFYQ_TEST_COMFY_URL names one (for example http://127.0.0.1:8188 of a ComfyUI
// 0.3.64 or 0.38 started with --cpu). The workflows are model-free, so any ComfyUI
// install runs them. What they check is what §10 of docs/comfyui-protocol.md recorded
// from a real server; where versions differ the suite asks the node what it speaks.
func TestConformance(t *testing.T) {
	for _, v := range comfysim.Versions() {
		t.Run("comfysim-"+v, func(t *testing.T) {
			t.Parallel()
			// Nodes take 50ms, so a running prompt can be interrupted between them.
			sim, base := simtest.NewServer(t, comfysim.Options{ComfyUIVersion: v, NodeDelay: 50 * time.Millisecond})
			runConformance(t, base, sim.Crash)
		})
	}
	t.Run("comfyui", func(t *testing.T) {
		base := os.Getenv("COMFYQ_TEST_COMFY_URL")
		if base == "" {
			t.Skip("COMFYQ_TEST_COMFY_URL not set: set it to a ComfyUI base URL (0.3.64 or 0.38) to run the conformance suite against a real node")
		}
		runConformance(t, base, nil)
	})
}

// runConformance runs the suite against one node. Subtests run in order: the cache
// test relies on the prompt before it (ComfyUI's classic cache keeps only what the
// previous prompt used). File names get a random prefix: a real node keeps its files.
// restart, when not nil, restarts the node (the simulator's Crash); the restart case
// runs only then.
func runConformance(t *testing.T, base string, restart func()) {
	c := newClient(t, base)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	tag := randomTag()
	caps, err := c.DetectCapabilities(ctx)
	require.NoError(t, err)
	t.Logf("node: ComfyUI %s, jobs API %v", caps.Version, caps.JobsAPI)

	var first *comfy.HistoryEntry
	var firstID string
	t.Run("EmptyImage to SaveImage", func(t *testing.T) {
		log := newEventLog()
		firstID = uuid.NewString()
		h, err := c.Run(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "conf_"+tag, 0), PromptID: firstID},
			comfy.FollowOptions{OnEvent: log.on})
		require.NoError(t, err)
		first = h
		require.Equal(t, []string{
			comfy.EventExecutionStart, comfy.EventExecutionCached,
			comfy.EventExecuting, comfy.EventExecuting, comfy.EventExecuted,
			comfy.EventExecutionSuccess, comfy.EventExecuting,
		}, log.types(comfy.EventProgressState, comfy.EventProgress))
		requireEvent(t, log, comfy.EventExecutionCached, func(v any) {
			require.Empty(t, v.(*comfy.ExecutionCached).Nodes)
		})
		files := h.Files()
		require.Len(t, files, 1)
		require.Equal(t, comfy.FileRef{Filename: "conf_" + tag + "_00001_.png", Subfolder: "", Type: "output"}, files[0].FileRef)
	})

	t.Run("history shape", func(t *testing.T) {
		require.NotNil(t, first)
		h, err := c.History(ctx, firstID)
		require.NoError(t, err)
		require.Equal(t, firstID, h.Prompt.PromptID)
		require.NotEmpty(t, h.Prompt.Number)
		require.Equal(t, []string{"2"}, h.Prompt.OutputsToExecute)
		require.Equal(t, c.ClientID(), h.Prompt.ExtraData["client_id"])
		require.Equal(t, "EmptyImage", h.Prompt.Prompt["1"].ClassType)
		require.Equal(t, "success", h.Status.StatusStr)
		require.True(t, h.Status.Completed)
		var types []string
		for _, m := range h.Status.Messages {
			types = append(types, m.Type)
			require.False(t, m.Timestamp().IsZero(), "history messages carry timestamps")
			require.Equal(t, firstID, m.Event().PromptID)
		}
		require.Equal(t, []string{"execution_start", "execution_cached", "execution_success"}, types)
		require.JSONEq(t, `{"node_id":"2","display_node":"2","parent_node":null,"real_node_id":"2"}`, string(h.Meta["2"]))
		list, err := c.HistoryList(ctx, 1, 0)
		require.NoError(t, err)
		require.Contains(t, list, firstID, "max_items=1 gives the newest entry")
		_, err = c.History(ctx, uuid.NewString())
		require.ErrorIs(t, err, comfy.ErrNotFound)
	})

	t.Run("identical re-run is a cache hit", func(t *testing.T) {
		require.NotNil(t, first)
		log := newEventLog()
		h, err := c.Run(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "conf_"+tag, 0), PromptID: uuid.NewString()},
			comfy.FollowOptions{OnEvent: log.on})
		require.NoError(t, err)
		require.Equal(t, first.Files(), h.Files(), "the earlier file names, no new file")
		require.Equal(t, []string{
			comfy.EventExecutionStart, comfy.EventExecutionCached, comfy.EventExecuted,
			comfy.EventExecutionSuccess, comfy.EventExecuting,
		}, log.types(comfy.EventProgressState, comfy.EventProgress), "no executing for cached nodes")
		requireEvent(t, log, comfy.EventExecutionCached, func(v any) {
			require.Equal(t, []string{"1", "2"}, v.(*comfy.ExecutionCached).Nodes)
		})
	})

	t.Run("view bytes and content type", func(t *testing.T) {
		require.NotNil(t, first)
		f, err := c.View(ctx, first.Files()[0].FileRef, nil)
		require.NoError(t, err)
		defer f.Body.Close()
		data, err := io.ReadAll(f.Body)
		require.NoError(t, err)
		require.Equal(t, "image/png", f.ContentType)
		if f.Size >= 0 {
			require.Equal(t, int64(len(data)), f.Size)
		}
		img, err := png.Decode(bytes.NewReader(data))
		require.NoError(t, err)
		require.Equal(t, image.Rect(0, 0, 64, 64), img.Bounds())
		for y := range 64 {
			for x := range 64 {
				r, g, b, _ := img.At(x, y).RGBA()
				require.Zero(t, r|g|b, "EmptyImage color 0 is black")
			}
		}
		require.True(t, bytes.Contains(data, []byte("tEXtprompt")), "SaveImage embeds the prompt")
		_, err = c.View(ctx, comfy.FileRef{Filename: "conf_" + tag + "_missing.png", Type: "output"}, nil)
		require.ErrorIs(t, err, comfy.ErrNotFound)
	})

	t.Run("upload then LoadImage ImageInvert SaveImage", func(t *testing.T) {
		src := gradientPNG(t)
		name := "conf_" + tag + "_gradient.png"
		ref, err := c.UploadImage(ctx, comfy.UploadRequest{Name: name, Body: bytes.NewReader(src)})
		require.NoError(t, err)
		require.Equal(t, comfy.FileRef{Filename: name, Subfolder: "", Type: "input"}, ref)
		wf := mustWorkflow(t, `{"1":{"class_type":"LoadImage","inputs":{"image":""}},
		  "2":{"class_type":"ImageInvert","inputs":{"image":["1",0]}},
		  "3":{"class_type":"SaveImage","inputs":{"images":["2",0],"filename_prefix":""}}}`)
		require.NoError(t, wf.Set("1.inputs.image", ref.LoadImageValue()))
		require.NoError(t, wf.Set("3.inputs.filename_prefix", "conf_"+tag+"_inverted"))
		log := newEventLog()
		h, err := c.Run(ctx, comfy.PromptRequest{Prompt: wf, PromptID: uuid.NewString()}, comfy.FollowOptions{OnEvent: log.on})
		require.NoError(t, err)
		require.Equal(t, []string{
			comfy.EventExecutionStart, comfy.EventExecutionCached,
			comfy.EventExecuting, comfy.EventExecuting, comfy.EventExecuting, comfy.EventExecuted,
			comfy.EventExecutionSuccess, comfy.EventExecuting,
		}, log.types(comfy.EventProgressState, comfy.EventProgress))
		files := h.Files()
		require.Len(t, files, 1)
		require.Equal(t, "conf_"+tag+"_inverted_00001_.png", files[0].Filename)
		checkInverted(t, c, ctx, files[0].FileRef, src)
	})

	t.Run("unknown class is rejected", func(t *testing.T) {
		_, err := c.QueuePrompt(ctx, comfy.PromptRequest{Prompt: mustWorkflow(t, `{"1":{"class_type":"NoSuchNode","inputs":{}}}`)})
		var ve *comfy.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Equal(t, 400, ve.StatusCode)
		if caps.JobsAPI { // 0.38 (execution.py validate_prompt)
			require.JSONEq(t, `{"error":{"type":"missing_node_type","message":"Node 'NoSuchNode' not found. The custom node may not be installed.","details":"Node ID '#1'","extra_info":{"node_id":"1","class_type":"NoSuchNode","node_title":"NoSuchNode"}},"node_errors":{}}`, string(ve.Raw))
			return
		}
		require.JSONEq(t, `{"error":{"type":"invalid_prompt","message":"Cannot execute because node NoSuchNode does not exist.","details":"Node ID '#1'","extra_info":{}},"node_errors":{}}`, string(ve.Raw))
	})

	t.Run("prompt without output is rejected", func(t *testing.T) {
		_, err := c.QueuePrompt(ctx, comfy.PromptRequest{Prompt: mustWorkflow(t, `{"1":{"class_type":"EmptyImage","inputs":{"width":64,"height":64,"batch_size":1,"color":0}}}`)})
		var ve *comfy.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Equal(t, 400, ve.StatusCode)
		require.JSONEq(t, `{"error":{"type":"prompt_no_outputs","message":"Prompt has no outputs","details":"","extra_info":{}},"node_errors":{}}`, string(ve.Raw))
	})

	t.Run("queue and system endpoints", func(t *testing.T) {
		q, err := c.Queue(ctx)
		require.NoError(t, err)
		require.NotNil(t, q)
		stats, err := c.SystemStats(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, stats.System.ComfyUIVersion)
		feats, err := c.Features(ctx)
		require.NoError(t, err)
		require.Contains(t, feats, "supports_preview_metadata")
		info, err := c.ObjectInfoClass(ctx, "EmptyImage")
		require.NoError(t, err)
		require.Equal(t, []string{"width", "height", "batch_size", "color"}, info.InputOrder.Required)
	})

	runConformanceMore(t, ctx, c, caps, tag, restart)
}

func randomTag() string {
	var b [4]byte
	for i := range b {
		b[i] = byte(rand.N(256))
	}
	return strings.ToLower(hex.EncodeToString(b[:]))
}
