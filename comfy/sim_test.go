package comfy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
)

// bundle is what a simulator-backed test needs (river's setup pattern).
type bundle struct {
	sim    *comfysim.Server
	url    string
	client *comfy.Client
}

func setup(t *testing.T, opts comfysim.Options, mod ...func(*comfy.Config)) *bundle {
	t.Helper()
	sim, base := simtest.NewServer(t, opts)
	return &bundle{sim: sim, url: base, client: newClient(t, base, mod...)}
}

func newClient(t *testing.T, base string, mod ...func(*comfy.Config)) *comfy.Client {
	t.Helper()
	cfg := comfy.Config{
		BaseURL:        base,
		RequestTimeout: 10 * time.Second,
		ReconnectMin:   5 * time.Millisecond,
		ReconnectMax:   50 * time.Millisecond,
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := comfy.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustWorkflow(t testing.TB, s string) comfy.Workflow {
	t.Helper()
	wf, err := comfy.ParseWorkflow([]byte(s))
	require.NoError(t, err)
	return wf
}

// emptyImage is §10's model-free workflow: EmptyImage → SaveImage.
func emptyImage(t testing.TB, prefix string, color int) comfy.Workflow {
	return mustWorkflow(t, fmt.Sprintf(`{"1":{"class_type":"EmptyImage","inputs":{"width":64,"height":64,"batch_size":1,"color":%d}},
	  "2":{"class_type":"SaveImage","inputs":{"images":["1",0],"filename_prefix":%q}}}`, color, prefix))
}

// txt2img is a model pipeline the simulator runs (KSampler sends progress and, with
// PreviewMethod "auto", previews).
func txt2img(t testing.TB, seed, steps int) comfy.Workflow {
	return mustWorkflow(t, fmt.Sprintf(`{
	 "4":{"class_type":"CheckpointLoaderSimple","inputs":{"ckpt_name":"sim-v1-5.safetensors"}},
	 "6":{"class_type":"CLIPTextEncode","inputs":{"text":"a red fox","clip":["4",1]}},
	 "7":{"class_type":"CLIPTextEncode","inputs":{"text":"","clip":["4",1]}},
	 "5":{"class_type":"EmptyLatentImage","inputs":{"width":64,"height":64,"batch_size":1}},
	 "3":{"class_type":"KSampler","inputs":{"seed":%d,"steps":%d,"cfg":8,"sampler_name":"euler","scheduler":"normal","denoise":1,
	      "model":["4",0],"positive":["6",0],"negative":["7",0],"latent_image":["5",0]}},
	 "8":{"class_type":"VAEDecode","inputs":{"samples":["3",0],"vae":["4",2]}},
	 "9":{"class_type":"SaveImage","inputs":{"filename_prefix":"fox","images":["8",0]}}}`, seed, steps))
}

// eventLog collects the events a follower sees and signals the ones a test waits for.
type eventLog struct {
	mu     sync.Mutex
	events []comfy.Event
	seen   chan string // each event type, non-blocking
}

func newEventLog() *eventLog { return &eventLog{seen: make(chan string, 4096)} }

func (l *eventLog) on(ev comfy.Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
	select {
	case l.seen <- ev.Type:
	default:
	}
}

func (l *eventLog) types(skip ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
outer:
	for _, ev := range l.events {
		for _, s := range skip {
			if ev.Type == s {
				continue outer
			}
		}
		out = append(out, ev.Type)
	}
	return out
}

func (l *eventLog) has(typ string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.events {
		if ev.Type == typ {
			return true
		}
	}
	return false
}

func (l *eventLog) waitFor(t *testing.T, typ string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case got := <-l.seen:
			if got == typ {
				return
			}
		case <-deadline:
			t.Fatalf("no %s event", typ)
		}
	}
}

func requireEvent(t *testing.T, log *eventLog, typ string, check func(any)) {
	t.Helper()
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, ev := range log.events {
		if ev.Type == typ {
			v, err := ev.Decode()
			require.NoError(t, err)
			check(v)
			return
		}
	}
	t.Fatalf("no %s event", typ)
}

type runResult struct {
	h   *comfy.HistoryEntry
	err error
}

func runAsync(ctx context.Context, c *comfy.Client, req comfy.PromptRequest, opts comfy.FollowOptions) <-chan runResult {
	ch := make(chan runResult, 1)
	go func() {
		h, err := c.Run(ctx, req, opts)
		ch <- runResult{h, err}
	}()
	return ch
}

func wait(t *testing.T, ch <-chan runResult) runResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
		return runResult{}
	}
}

func TestSimRunAndEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	c, ctx := b.client, testCtx(t)

	stats, err := c.SystemStats(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, stats.System.ComfyUIVersion)
	require.NotEmpty(t, stats.Devices)
	feats, err := c.Features(ctx)
	require.NoError(t, err)
	require.Equal(t, true, feats["supports_preview_metadata"])
	require.Contains(t, feats, "max_upload_size")

	info, err := c.ObjectInfo(ctx)
	require.NoError(t, err)
	require.True(t, info["SaveImage"].OutputNode)
	ks, err := c.ObjectInfoClass(ctx, "KSampler")
	require.NoError(t, err)
	require.Equal(t, "KSampler", ks.Name)
	_, err = c.ObjectInfoClass(ctx, "NoSuchNode")
	require.ErrorIs(t, err, comfy.ErrNotFound)

	log := newEventLog()
	id := uuid.NewString()
	h, err := c.Run(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "test", 0), PromptID: id}, comfy.FollowOptions{OnEvent: log.on})
	require.NoError(t, err)
	require.Equal(t, id, h.PromptID)
	require.True(t, h.Succeeded())
	require.Equal(t, []string{"execution_start", "execution_cached", "executing", "executing", "executed", "execution_success", "executing"},
		log.types(comfy.EventProgressState, comfy.EventProgress), "§10 message order")
	files := h.Files()
	require.Len(t, files, 1)
	require.Equal(t, "2", files[0].NodeID)
	require.Equal(t, comfy.FileRef{Filename: "test_00001_.png", Subfolder: "", Type: "output"}, files[0].FileRef)
	require.Equal(t, json.Number("64"), h.Prompt.Prompt["1"].Inputs["width"])
	require.Equal(t, []string{"2"}, h.Prompt.OutputsToExecute)

	f, err := c.View(ctx, files[0].FileRef, nil)
	require.NoError(t, err)
	data, err := io.ReadAll(f.Body)
	require.NoError(t, err)
	require.NoError(t, f.Body.Close())
	require.Equal(t, "image/png", f.ContentType)
	require.Equal(t, "test_00001_.png", f.Filename)
	img, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 64, 64), img.Bounds())

	_, err = c.View(ctx, comfy.FileRef{Filename: "nope.png", Type: "output"}, nil)
	require.ErrorIs(t, err, comfy.ErrNotFound)
	_, err = c.View(ctx, comfy.FileRef{Filename: "../x.png", Type: "output"}, nil)
	var he *comfy.HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, http.StatusBadRequest, he.StatusCode)
	_, err = c.View(ctx, comfy.FileRef{Filename: "x.png", Type: "models"}, nil)
	require.ErrorAs(t, err, &he)
	require.Equal(t, http.StatusBadRequest, he.StatusCode)

	list, err := c.HistoryList(ctx, 10, 0)
	require.NoError(t, err)
	require.Contains(t, list, id)
	loc, entry, err := c.Locate(ctx, id)
	require.NoError(t, err)
	require.Equal(t, comfy.PromptDone, loc)
	require.Equal(t, id, entry.PromptID)
	// Follow on a finished prompt returns at once from /history.
	h2, err := c.Follow(ctx, id, comfy.FollowOptions{StallTimeout: time.Hour})
	require.NoError(t, err)
	require.Equal(t, h.Outputs, h2.Outputs)

	require.NoError(t, c.DeleteHistory(ctx, id))
	_, err = c.History(ctx, id)
	require.ErrorIs(t, err, comfy.ErrNotFound)
	loc, _, err = c.Locate(ctx, id)
	require.NoError(t, err)
	require.Equal(t, comfy.PromptAbsent, loc)
	require.NoError(t, c.ClearHistory(ctx))
	list, err = c.HistoryList(ctx, 0, 0)
	require.NoError(t, err)
	require.Empty(t, list)
	require.NoError(t, c.Free(ctx, true, true))
}

func TestSimSeedPrecision(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ctx := testCtx(t)
	wf := txt2img(t, 0, 2)
	require.NoError(t, wf.Set("3.inputs.seed", uint64(18446744073709551615)))
	h, err := b.client.Run(ctx, comfy.PromptRequest{Prompt: wf, PromptID: uuid.NewString()}, comfy.FollowOptions{})
	require.NoError(t, err)
	require.Equal(t, json.Number("18446744073709551615"), h.Prompt.Prompt["3"].Inputs["seed"], "the seed survives the round trip exactly")
}

func TestSimFollowWithoutPrompt(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ctx := testCtx(t)
	id := uuid.NewString()
	h, err := b.client.Run(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "lean", 0), PromptID: id}, comfy.FollowOptions{WithoutPrompt: true})
	require.NoError(t, err)
	require.True(t, h.Succeeded())
	require.Equal(t, id, h.PromptID)
	require.Equal(t, id, h.Prompt.PromptID)
	require.NotEmpty(t, h.Prompt.Number)
	require.Equal(t, []string{"2"}, h.Prompt.OutputsToExecute)
	require.Nil(t, h.Prompt.Prompt, "the workflow is left out")
	require.Nil(t, h.Prompt.ExtraData, "the extra data is left out")
	require.Len(t, h.Files(), 1)
	require.NotEmpty(t, h.Status.Messages)

	full, err := b.client.History(ctx, id)
	require.NoError(t, err)
	require.Equal(t, full.Outputs, h.Outputs)
	require.Equal(t, full.Status, h.Status)
	require.Equal(t, full.Meta, h.Meta)
	require.NotEmpty(t, full.Prompt.Prompt, "History keeps the workflow")
}

// With FromEvents, a prompt that succeeded with every event seen is returned without
// a /history read (its entry has no workflow), and the entry holds what the
// history does: the outputs of every output node, cached ones too, and the status
// messages with the node's timestamps. A reconnect during the prompt makes Follow read
// /history instead.
func TestSimFollowFromEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{StepDelay: 2 * time.Millisecond})
	ctx := testCtx(t)
	caps, err := b.client.DetectCapabilities(ctx)
	require.NoError(t, err)
	// Before 0.38.1 the history also lists cached intermediate nodes' UI output, which
	// no executed announces: a prompt with cached nodes is read from /history there.
	cachedFromEvents := caps.Version != comfysim.Version0364
	two := func(seed int) comfy.Workflow {
		wf := txt2img(t, seed, 4)
		wf["10"] = &comfy.Node{ClassType: "SaveImage", Inputs: map[string]any{"images": []any{"8", 0}, "filename_prefix": "second"}}
		wf["11"] = &comfy.Node{ClassType: "PreviewImage", Inputs: map[string]any{"images": []any{"8", 0}}}
		return wf
	}
	same := func(h *comfy.HistoryEntry) {
		t.Helper()
		// Made from the events, the entry can come before the node writes its history.
		var full *comfy.HistoryEntry
		require.Eventually(t, func() bool {
			var histErr error
			full, histErr = b.client.History(ctx, h.PromptID)
			return histErr == nil
		}, 10*time.Second, 5*time.Millisecond)
		require.Equal(t, full.Outputs, h.Outputs, "the outputs the history has")
		require.Len(t, h.Outputs, 3)
		require.Equal(t, full.Status.StatusStr, h.Status.StatusStr)
		require.Equal(t, full.Status.Completed, h.Status.Completed)
		require.Len(t, h.Status.Messages, len(full.Status.Messages))
		for i, m := range full.Status.Messages {
			require.Equal(t, m.Type, h.Status.Messages[i].Type)
			require.Equal(t, m.Timestamp(), h.Status.Messages[i].Timestamp(), m.Type)
		}
		require.True(t, h.Succeeded())
	}
	for i, wf := range []comfy.Workflow{two(1), two(1), two(2)} {
		name := []string{"fresh", "all cached", "sampler again"}[i]
		id := uuid.NewString()
		h, runErr := b.client.Run(ctx, comfy.PromptRequest{Prompt: wf, PromptID: id}, comfy.FollowOptions{FromEvents: true})
		require.NoError(t, runErr, name)
		require.Equal(t, id, h.PromptID, name)
		if i == 0 || cachedFromEvents {
			require.Nil(t, h.Prompt.Prompt, "%s: made from the events, not read from /history", name)
		} else {
			require.NotNil(t, h.Prompt.Prompt, "%s on %s: read from /history", name, caps.Version)
		}
		same(h)
	}

	// The socket drops while the prompt runs: its entry is read from /history.
	id := uuid.NewString()
	sub := b.client.Subscribe(id)
	require.NoError(t, b.client.Connect(ctx))
	_, err = b.client.QueuePrompt(ctx, comfy.PromptRequest{Prompt: txt2img(t, 3, 40), PromptID: id})
	require.NoError(t, err)
	go func() {
		for b.sim.Executions(id) == 0 {
			time.Sleep(time.Millisecond)
		}
		b.sim.DropWebSockets()
	}()
	h, err := b.client.Follow(ctx, id, comfy.FollowOptions{Subscription: sub, Queued: true, FromEvents: true})
	require.NoError(t, err)
	require.NotNil(t, h.Prompt.Prompt, "a gap in the events: read from /history")
	require.True(t, h.Succeeded())
}

func TestSimUploadLoadInvert(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	c, ctx := b.client, testCtx(t)
	src := gradientPNG(t)
	ref, err := c.UploadImage(ctx, comfy.UploadRequest{Name: "check_gradient.png", Body: bytes.NewReader(src)})
	require.NoError(t, err)
	require.Equal(t, comfy.FileRef{Filename: "check_gradient.png", Subfolder: "", Type: "input"}, ref)
	// Same bytes again: kept as is. Different bytes: renamed.
	again, err := c.UploadImage(ctx, comfy.UploadRequest{Name: "check_gradient.png", Body: bytes.NewReader(src)})
	require.NoError(t, err)
	require.Equal(t, ref, again)
	other, err := c.UploadImage(ctx, comfy.UploadRequest{Name: "check_gradient.png", Body: bytes.NewReader(emptyPNG(t))})
	require.NoError(t, err)
	require.Equal(t, "check_gradient (1).png", other.Filename)
	sub, err := c.UploadImage(ctx, comfy.UploadRequest{Name: "x.png", Subfolder: "batch", Body: bytes.NewReader(src), Overwrite: true})
	require.NoError(t, err)
	require.Equal(t, "batch/x.png", sub.LoadImageValue())

	wf := mustWorkflow(t, `{"1":{"class_type":"LoadImage","inputs":{"image":"check_gradient.png"}},
	  "2":{"class_type":"ImageInvert","inputs":{"image":["1",0]}},
	  "3":{"class_type":"SaveImage","inputs":{"images":["2",0],"filename_prefix":"inverted"}}}`)
	require.NoError(t, wf.Set("LoadImage.inputs.image", ref.LoadImageValue()))
	h, err := c.Run(ctx, comfy.PromptRequest{Prompt: wf, PromptID: uuid.NewString()}, comfy.FollowOptions{})
	require.NoError(t, err)
	files := h.Files()
	require.Len(t, files, 1)
	require.Equal(t, "inverted_00001_.png", files[0].Filename)
	checkInverted(t, c, ctx, files[0].FileRef, src)

	mask, err := c.UploadMask(ctx, comfy.UploadRequest{Name: "masked.png", Body: bytes.NewReader(src)}, ref)
	require.NoError(t, err)
	require.Equal(t, "masked.png", mask.Filename)
	f, err := c.View(ctx, mask, nil)
	require.NoError(t, err)
	f.Body.Close()
}

func gradientPNG(t testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for y := range 32 {
		for x := range 32 {
			img.Set(x, y, color.RGBA{uint8(x * 8), uint8(y * 8), uint8((x + y) * 4), 255})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

func emptyPNG(t testing.TB) []byte {
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 8, 8))))
	return buf.Bytes()
}

// checkInverted compares an output with 255 − source per RGB channel (±1: ComfyUI works
// in float32 and truncates).
func checkInverted(t *testing.T, c *comfy.Client, ctx context.Context, ref comfy.FileRef, src []byte) {
	t.Helper()
	f, err := c.View(ctx, ref, nil)
	require.NoError(t, err)
	defer f.Body.Close()
	out, err := png.Decode(f.Body)
	require.NoError(t, err)
	in, err := png.Decode(bytes.NewReader(src))
	require.NoError(t, err)
	require.Equal(t, in.Bounds(), out.Bounds())
	for y := in.Bounds().Min.Y; y < in.Bounds().Max.Y; y++ {
		for x := in.Bounds().Min.X; x < in.Bounds().Max.X; x++ {
			r1, g1, b1, _ := in.At(x, y).RGBA()
			r2, g2, b2, _ := out.At(x, y).RGBA()
			for _, p := range [][2]uint32{{r1, r2}, {g1, g2}, {b1, b2}} {
				want, got := 255-int(p[0]>>8), int(p[1]>>8)
				require.InDelta(t, want, got, 1, "pixel %d,%d", x, y)
			}
		}
	}
}

func TestSimValidationErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{ComfyUIVersion: comfysim.Version0364}) // 0.38 answers missing_node_type
	c, ctx := b.client, testCtx(t)
	_, err := c.QueuePrompt(ctx, comfy.PromptRequest{Prompt: mustWorkflow(t, `{"1":{"class_type":"NoSuchNode","inputs":{}}}`)})
	var ve *comfy.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, comfy.APIError{Type: "invalid_prompt", Message: "Cannot execute because node NoSuchNode does not exist.",
		Details: "Node ID '#1'", ExtraInfo: map[string]any{}}, ve.Err)
	require.Empty(t, ve.NodeErrors)
	require.Equal(t, "comfy: prompt rejected: invalid_prompt: Cannot execute because node NoSuchNode does not exist. (Node ID '#1')", err.Error())

	_, err = c.Run(ctx, comfy.PromptRequest{Prompt: mustWorkflow(t, `{"1":{"class_type":"EmptyImage","inputs":{"width":64,"height":64,"batch_size":1,"color":0}}}`),
		PromptID: uuid.NewString()}, comfy.FollowOptions{})
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "prompt_no_outputs", ve.Err.Type)

	wf := txt2img(t, 1, 2)
	require.NoError(t, wf.Set("4.inputs.ckpt_name", "missing.safetensors"))
	_, err = c.QueuePrompt(ctx, comfy.PromptRequest{Prompt: wf})
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "prompt_outputs_failed_validation", ve.Err.Type)
	require.Equal(t, "value_not_in_list", ve.NodeErrors["4"].Errors[0].Type)
	require.Equal(t, []string{"9"}, ve.NodeErrors["4"].DependentOutputs)
}

func TestSimExecutionError(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	b.sim.FailNode("SaveImage", "torch.OutOfMemoryError", "Allocation on device")
	h, err := b.client.Run(testCtx(t), comfy.PromptRequest{Prompt: emptyImage(t, "oom", 0), PromptID: uuid.NewString()}, comfy.FollowOptions{})
	var ee *comfy.ExecutionError
	require.ErrorAs(t, err, &ee)
	require.ErrorIs(t, err, comfy.ErrExecution)
	require.NotNil(t, h, "the history entry comes with the error")
	require.Equal(t, "error", h.Status.StatusStr)
	require.Equal(t, "2", ee.NodeID)
	require.Equal(t, "SaveImage", ee.NodeType)
	require.Equal(t, []string{"1"}, ee.Executed)
	require.True(t, ee.IsOOM())
	require.Equal(t, "comfy: node 2 (SaveImage) raised torch.OutOfMemoryError: Allocation on device", ee.Error())
}

// Messages for a prompt can arrive before the POST answer: the early buffer keeps them
// for the follower that subscribes after QueuePrompt returned.
func TestSimEarlyMessagesBeforePostAnswer(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	c, ctx := b.client, testCtx(t)
	require.NoError(t, c.Connect(ctx))
	id := uuid.NewString()
	all := c.SubscribeAll()
	_, err := c.QueuePrompt(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "early", 0), PromptID: id})
	require.NoError(t, err)
	// Wait until the whole run went over the socket, with nobody subscribed to id.
	for ev := range all.C {
		if ev.PromptID == id && ev.Type == comfy.EventExecuting {
			if v, decErr := ev.Decode(); decErr == nil && v.(*comfy.Executing).Done() {
				break
			}
		}
	}
	all.Close()
	// Nobody was subscribed to id: its events wait in the early buffer and are
	// delivered, in order, to the first subscriber.
	sub := c.Subscribe(id)
	var types []string
	for {
		ev := next(t, sub)
		if ev.Type == comfy.EventProgressState {
			continue
		}
		types = append(types, ev.Type)
		if ev.Type == comfy.EventExecuting {
			if v, decErr := ev.Decode(); decErr == nil && v.(*comfy.Executing).Done() {
				break
			}
		}
	}
	require.Equal(t, []string{"execution_start", "execution_cached", "executing", "executing", "executed", "execution_success", "executing"}, types)
	sub.Close()

	// Follow, called after QueuePrompt returned, gets them too.
	id2 := uuid.NewString()
	_, err = c.QueuePrompt(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "early", 1), PromptID: id2})
	require.NoError(t, err)
	h, err := c.Follow(ctx, id2, comfy.FollowOptions{StallTimeout: time.Hour})
	require.NoError(t, err)
	require.True(t, h.Succeeded())
}

func TestSimSilentSocketStallWatchdog(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	c, ctx := b.client, testCtx(t)
	require.NoError(t, c.Connect(ctx))
	b.sim.SilenceWebSockets(time.Hour)
	log := newEventLog()
	h, err := c.Run(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "silent", 0), PromptID: uuid.NewString()},
		comfy.FollowOptions{StallTimeout: 50 * time.Millisecond, OnEvent: log.on})
	require.NoError(t, err)
	require.True(t, h.Succeeded())
	require.Empty(t, log.types(), "nothing came over the socket; the watchdog found the history")
	require.True(t, c.Connected())
}

func TestSimSocketDroppedMidRun(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{NodeDelay: 200 * time.Millisecond})
	c, ctx := b.client, testCtx(t)
	log := newEventLog()
	id := uuid.NewString()
	ch := runAsync(ctx, c, comfy.PromptRequest{Prompt: emptyImage(t, "drop", 0), PromptID: id},
		comfy.FollowOptions{StallTimeout: time.Hour, OnEvent: log.on})
	log.waitFor(t, comfy.EventExecuting)
	b.sim.DropWebSockets()
	r := wait(t, ch)
	require.NoError(t, r.err)
	require.True(t, r.h.Succeeded())
	require.Equal(t, "drop_00001_.png", r.h.Files()[0].Filename)
	require.True(t, log.has(comfy.EventDisconnected))
	require.Equal(t, 1, b.sim.Executions(id))
}

func TestSimReconnectEvent(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	c, ctx := b.client, testCtx(t)
	sub := c.Subscribe("p")
	require.NoError(t, c.Connect(ctx))
	b.sim.DropWebSockets()
	require.Equal(t, comfy.EventDisconnected, next(t, sub).Type)
	require.Equal(t, comfy.EventReconnected, next(t, sub).Type)
	// The new socket works: a run is followed over it.
	h, err := c.Run(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "after", 0), PromptID: uuid.NewString()}, comfy.FollowOptions{StallTimeout: time.Hour})
	require.NoError(t, err)
	require.True(t, h.Succeeded())
}

func next(t *testing.T, sub *comfy.Subscription) comfy.Event {
	t.Helper()
	select {
	case ev, ok := <-sub.C:
		require.True(t, ok)
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event")
		return comfy.Event{}
	}
}

func TestSimNodeCrashLosesPrompt(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{NodeDelay: time.Hour})
	c, ctx := b.client, testCtx(t)
	log := newEventLog()
	ch := runAsync(ctx, c, comfy.PromptRequest{Prompt: emptyImage(t, "crash", 0), PromptID: uuid.NewString()},
		comfy.FollowOptions{StallTimeout: time.Hour, OnEvent: log.on})
	log.waitFor(t, comfy.EventExecuting)
	b.sim.Crash()
	r := wait(t, ch)
	require.ErrorIs(t, r.err, comfy.ErrPromptLost)
	require.Nil(t, r.h)
}

func TestSimNodeDown(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{NodeDelay: time.Hour})
	c, ctx := b.client, testCtx(t)
	log := newEventLog()
	ch := runAsync(ctx, c, comfy.PromptRequest{Prompt: emptyImage(t, "down", 0), PromptID: uuid.NewString()},
		comfy.FollowOptions{StallTimeout: time.Hour, PollInterval: 10 * time.Millisecond, DownTimeout: 100 * time.Millisecond, OnEvent: log.on})
	log.waitFor(t, comfy.EventExecuting)
	b.sim.SetDown(true)
	r := wait(t, ch)
	require.ErrorIs(t, r.err, comfy.ErrUnavailable, "a node down longer than DownTimeout")

	_, err := c.Run(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "down", 0), PromptID: uuid.NewString()}, comfy.FollowOptions{})
	require.ErrorIs(t, err, comfy.ErrUnavailable)
	_, err = c.Queue(ctx)
	require.ErrorIs(t, err, comfy.ErrUnavailable)
	require.False(t, c.Connected())

	b.sim.SetDown(false)
	require.NoError(t, c.Connect(ctx), "the socket comes back on its own")
	_, err = c.Queue(ctx)
	require.NoError(t, err)
}

func TestSimCacheHitKeepsOldFilenames(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	c, ctx := b.client, testCtx(t)
	first, err := c.Run(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "cached", 0), PromptID: uuid.NewString()}, comfy.FollowOptions{})
	require.NoError(t, err)
	log := newEventLog()
	second, err := c.Run(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "cached", 0), PromptID: uuid.NewString()}, comfy.FollowOptions{OnEvent: log.on})
	require.NoError(t, err)
	require.Equal(t, first.Files(), second.Files(), "a full cache hit lists the earlier files")
	require.Equal(t, []string{"execution_start", "execution_cached", "executed", "execution_success", "executing"},
		log.types(comfy.EventProgressState, comfy.EventProgress), "no executing for cached nodes")
	require.Equal(t, int64(1), b.sim.Stats().PromptsCached)

	// A new seed-like change re-runs: a new file.
	third, err := c.Run(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "cached", 7), PromptID: uuid.NewString()}, comfy.FollowOptions{})
	require.NoError(t, err)
	require.Equal(t, "cached_00002_.png", third.Files()[0].Filename)
}

func TestSimInterruptOneAmongSeveral(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{StepDelay: 20 * time.Millisecond})
	c, ctx := b.client, testCtx(t)
	require.NoError(t, c.Connect(ctx))
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	logs := []*eventLog{newEventLog(), newEventLog(), newEventLog()}
	var chans []<-chan runResult
	for i, id := range ids {
		// Different seeds; the middle one is long.
		steps := 3
		if i == 1 {
			steps = 10000
		}
		chans = append(chans, runAsync(ctx, c, comfy.PromptRequest{Prompt: txt2img(t, i, steps), PromptID: id},
			comfy.FollowOptions{OnEvent: logs[i].on}))
	}
	logs[1].waitFor(t, comfy.EventProgress)
	// Pending prompts show in /queue.
	q, err := c.Queue(ctx)
	require.NoError(t, err)
	running, _ := q.Contains(ids[1])
	require.True(t, running)
	require.NoError(t, c.Interrupt(ctx, ids[1]))
	var results []runResult
	for _, ch := range chans {
		results = append(results, wait(t, ch))
	}
	require.NoError(t, results[0].err)
	require.ErrorIs(t, results[1].err, comfy.ErrInterrupted)
	require.True(t, results[1].h.Interrupted())
	require.NoError(t, results[2].err, "only the interrupted prompt is affected")
	// An interrupt naming a prompt that is not running does nothing.
	require.NoError(t, c.Interrupt(ctx, "not-running"))
}

func TestSimQueueDeleteAndClear(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{StepDelay: 20 * time.Millisecond})
	c, ctx := b.client, testCtx(t)
	require.NoError(t, c.Connect(ctx))
	first := newEventLog()
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()}
	var chans []<-chan runResult
	for i, id := range ids {
		// Deleted prompts send no event: the stall check notices them.
		opts := comfy.FollowOptions{StallTimeout: 20 * time.Millisecond}
		wf := emptyImage(t, fmt.Sprint("q", i), i)
		num := float64(10 - i) // later ids run first: Pending must come back sorted
		if i == 0 {
			// A long sampler run keeps the queue behind it; an interrupt stops it
			// at the next step (a plain node cannot be interrupted mid-way).
			opts.OnEvent = first.on
			wf = txt2img(t, 1, 10000)
			num = 0
		}
		chans = append(chans, runAsync(ctx, c, comfy.PromptRequest{Prompt: wf, PromptID: id, Number: &num}, opts))
		if i == 0 {
			first.waitFor(t, comfy.EventProgress)
		}
	}
	require.Eventually(t, func() bool {
		q, err := c.Queue(ctx)
		return err == nil && len(q.Pending) == 3
	}, 20*time.Second, 5*time.Millisecond)
	q, err := c.Queue(ctx)
	require.NoError(t, err)
	require.Equal(t, ids[0], q.Running[0].PromptID)
	require.Equal(t, []string{ids[3], ids[2], ids[1]}, []string{q.Pending[0].PromptID, q.Pending[1].PromptID, q.Pending[2].PromptID})
	loc, _, err := c.Locate(ctx, ids[1])
	require.NoError(t, err)
	require.Equal(t, comfy.PromptQueued, loc)
	loc, _, err = c.Locate(ctx, ids[0])
	require.NoError(t, err)
	require.Equal(t, comfy.PromptRunning, loc)

	require.NoError(t, c.DeleteFromQueue(ctx, ids[1]))
	require.ErrorIs(t, wait(t, chans[1]).err, comfy.ErrPromptLost, "a deleted prompt is lost to its follower")
	require.NoError(t, c.ClearQueue(ctx))
	require.ErrorIs(t, wait(t, chans[2]).err, comfy.ErrPromptLost)
	require.ErrorIs(t, wait(t, chans[3]).err, comfy.ErrPromptLost)
	require.NoError(t, c.Interrupt(ctx, ""))
	require.ErrorIs(t, wait(t, chans[0]).err, comfy.ErrInterrupted)
}

func TestSimBinaryPreviews(t *testing.T) {
	t.Parallel()
	for _, meta := range []bool{false, true} {
		t.Run(fmt.Sprint("metadata=", meta), func(t *testing.T) {
			t.Parallel()
			b := setup(t, comfysim.Options{PreviewMethod: "auto"}, func(cfg *comfy.Config) { cfg.PreviewMetadata = meta })
			c, ctx := b.client, testCtx(t)
			log := newEventLog()
			id := uuid.NewString()
			_, err := c.Run(ctx, comfy.PromptRequest{Prompt: txt2img(t, 5, 3), PromptID: id}, comfy.FollowOptions{OnEvent: log.on})
			require.NoError(t, err)
			log.mu.Lock()
			defer log.mu.Unlock()
			var previews []*comfy.BinaryFrame
			for _, ev := range log.events {
				if ev.Type == comfy.EventPreviewImage {
					require.Equal(t, id, ev.PromptID)
					previews = append(previews, ev.Binary)
				}
			}
			require.Len(t, previews, 3, "one preview per step")
			for _, p := range previews {
				require.Equal(t, "image/jpeg", p.ContentType())
				require.True(t, bytes.HasPrefix(p.Image, []byte{0xff, 0xd8}), "JPEG bytes")
				if meta {
					require.Equal(t, uint32(comfy.BinaryPreviewImageWithMetadata), p.Type)
					require.Equal(t, "3", p.Metadata.NodeID)
					require.Equal(t, id, p.Metadata.PromptID)
				} else {
					require.Equal(t, uint32(comfy.BinaryPreviewImage), p.Type)
					require.Equal(t, uint32(comfy.ImageFormatJPEG), p.ImageFormat)
				}
			}
		})
	}
}

// A reverse proxy serves ComfyUI under /comfy and requires a header: every route and
// the WebSocket are reached under the prefix, with the header.
func TestSimBehindReverseProxyWithPrefixAndHeader(t *testing.T) {
	t.Parallel()
	sim, base := simtest.NewServer(t, comfysim.Options{})
	_ = sim
	target, err := url.Parse(base)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var paths []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Proxy-Token") != "s3cret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/comfy/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		paths = append(paths, "/"+rest)
		mu.Unlock()
		r.URL.Path = "/" + rest
		r.URL.RawPath = ""
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	c := newClient(t, proxy.URL+"/comfy", func(cfg *comfy.Config) {
		cfg.Header = http.Header{"X-Proxy-Token": {"s3cret"}}
	})
	require.Equal(t, "ws"+strings.TrimPrefix(proxy.URL, "http")+"/comfy/ws?clientId="+c.ClientID(), c.WebSocketURL())
	ctx := testCtx(t)
	log := newEventLog()
	h, err := c.Run(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "proxied", 0), PromptID: uuid.NewString()},
		comfy.FollowOptions{StallTimeout: time.Hour, OnEvent: log.on})
	require.NoError(t, err)
	require.True(t, log.has(comfy.EventExecutionSuccess), "events came through the proxied WebSocket")
	f, err := c.View(ctx, h.Files()[0].FileRef, nil)
	require.NoError(t, err)
	f.Body.Close()
	mu.Lock()
	require.Contains(t, paths, "/ws")
	require.Contains(t, paths, "/prompt")
	require.Contains(t, paths, "/view")
	mu.Unlock()

	// Without the header the proxy refuses both HTTP and the WebSocket.
	bare := newClient(t, proxy.URL+"/comfy")
	_, err = bare.Queue(ctx)
	var he *comfy.HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, http.StatusUnauthorized, he.StatusCode)
	require.ErrorIs(t, bare.Connect(ctx), comfy.ErrUnavailable)
}

func TestSimClientClose(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{NodeDelay: time.Hour})
	c, ctx := b.client, testCtx(t)
	log := newEventLog()
	ch := runAsync(ctx, c, comfy.PromptRequest{Prompt: emptyImage(t, "closing", 0), PromptID: uuid.NewString()}, comfy.FollowOptions{OnEvent: log.on})
	log.waitFor(t, comfy.EventExecuting)
	require.NoError(t, c.Close())
	require.ErrorIs(t, wait(t, ch).err, comfy.ErrClosed)
	require.NoError(t, c.Close())
	_, err := c.Run(ctx, comfy.PromptRequest{Prompt: emptyImage(t, "x", 0), PromptID: uuid.NewString()}, comfy.FollowOptions{})
	require.ErrorIs(t, err, comfy.ErrClosed)
}

func TestSimFollowHonoursContext(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{NodeDelay: time.Hour})
	c := b.client
	ctx, cancel := context.WithCancel(testCtx(t))
	log := newEventLog()
	ch := runAsync(ctx, c, comfy.PromptRequest{Prompt: emptyImage(t, "ctx", 0), PromptID: uuid.NewString()}, comfy.FollowOptions{OnEvent: log.on})
	log.waitFor(t, comfy.EventExecuting)
	cancel()
	require.ErrorIs(t, wait(t, ch).err, context.Canceled)
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatal("ctx not canceled")
	}
}

// §8: changing the seed re-runs the sampler and what follows it; the loader, the text
// encoders and the empty latent come from the cache.
func TestSimSeedChangeReusesCache(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	c, ctx := b.client, testCtx(t)
	_, err := c.Run(ctx, comfy.PromptRequest{Prompt: txt2img(t, 1, 2), PromptID: uuid.NewString()}, comfy.FollowOptions{})
	require.NoError(t, err)
	log := newEventLog()
	h, err := c.Run(ctx, comfy.PromptRequest{Prompt: txt2img(t, 2, 2), PromptID: uuid.NewString()}, comfy.FollowOptions{OnEvent: log.on})
	require.NoError(t, err)
	require.Equal(t, "fox_00002_.png", h.Files()[0].Filename)
	requireEvent(t, log, comfy.EventExecutionCached, func(v any) {
		require.ElementsMatch(t, []string{"4", "5", "6", "7"}, v.(*comfy.ExecutionCached).Nodes)
	})
}
