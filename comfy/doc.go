// Package comfy is a client for ComfyUI's HTTP and WebSocket API (version 0.3.64, and
// tolerant of later versions), plus the API-format workflow type and its editing, and
// UI-format → API-format conversion.
//
// # Overview
//
// A Client talks to one ComfyUI node: HTTP for every endpoint, and a single WebSocket,
// shared by all prompts, for the event stream. ComfyUI keeps its queue and history in
// memory and does not buffer WebSocket messages, so the client treats the socket as a
// hint and /history as the truth: a prompt is followed over the socket, and checked
// over HTTP whenever the socket is down, silent or has reconnected.
//
//	c, err := comfy.New(comfy.Config{BaseURL: "http://127.0.0.1:8188"})
//	if err != nil { … }
//	defer c.Close()
//	wf, err := comfy.ParseWorkflow(data)        // API format, numbers kept exact
//	_ = wf.Set("3.inputs.seed", 42)             // by node id, title or class
//	h, err := c.Run(ctx, comfy.PromptRequest{Prompt: wf, PromptID: uuid.NewString()}, comfy.FollowOptions{})
//	for _, f := range h.Files() {
//		file, err := c.View(ctx, f.FileRef, nil) // streamed
//		…
//	}
//
// # Running prompts
//
// Run subscribes to the prompt id, makes sure the socket is connected, queues the
// prompt (POST /prompt) and follows it. Follow returns the history entry when the
// prompt finished, with:
//
//   - nil on success;
//   - an *ExecutionError (node, exception type and message, traceback excerpt) when a
//     node raised; IsOOM tells out-of-memory errors apart;
//   - an error wrapping ErrInterrupted when the prompt was interrupted;
//   - ErrPromptLost when the prompt is neither queued, running nor in the history (the
//     node restarted: its queue and history are in memory only);
//   - an error wrapping ErrUnavailable when the node stayed unreachable.
//
// A prompt ComfyUI rejects gives a *ValidationError with ComfyUI's node_errors; nothing
// was queued. Completion is ComfyUI's `executing` message with node null for the
// prompt, which is sent after the history entry is written; Follow then reads
// /history/{id}. Follow never hangs: a stall watchdog checks /queue and /history after
// FollowOptions.StallTimeout without events, after every reconnect, and every
// PollInterval while the socket is down.
//
// Choose the prompt id yourself (a UUID): subscribe before queueing, since messages can
// arrive before the POST answer, and find the prompt again with Locate after a restart.
// Sending an identical prompt again is a full cache hit in ComfyUI: nothing runs and
// the history lists the earlier files. Use Workflow.RandomizeSeeds to get new images.
//
// # Events
//
// Subscribe(promptID) and SubscribeAll return a Subscription whose channel C carries
// Events; Event.Decode gives the typed payload (*Executing, *Progress, *Executed,
// *ExecutionError, …) and binary frames arrive decoded as *BinaryFrame (previews of
// type 1 and 4, progress text of type 3). Events for a prompt nobody has subscribed to
// yet are kept for a short while (256 events, 30 s) and delivered to its first
// subscriber. A slow reader never blocks the socket: its buffer is bounded, progress and
// previews are dropped first, and the subscription is marked Lossy.
//
// The socket reconnects on its own with backoff and jitter, under the same clientId.
// Before it redials it closes the old socket completely, because ComfyUI unregisters
// a socket by clientId when the old handler ends and would otherwise silence the new
// one. Every subscription then receives EventDisconnected and EventReconnected:
// messages sent in between are lost, and followers check /history.
//
// # Errors
//
// Errors wrap sentinels for errors.Is: ErrNotFound (404, or the {} ComfyUI returns for
// unknown prompts and classes), ErrUnavailable (dial errors, resets, timeouts, 502/503/
// 504, failed WebSocket handshakes: retry elsewhere), ErrInterrupted, ErrPromptLost,
// ErrClosed. Other statuses are *HTTPError.
//
// # Files
//
// View streams /view without buffering; UploadImage and UploadMask stream multipart
// bodies through a pipe. NodeOutput.Files lists every file of a node's UI output under
// any key (images, audio, 3d, VideoHelperSuite's gifs, unknown keys), and FileRef
// values go straight back to View.
//
// # Deployment
//
// Config.BaseURL may carry a path prefix (a reverse proxy serving ComfyUI under
// /comfy): every route, the WebSocket included, is reached under it. Config.Header is
// sent on every request and on the WebSocket handshake, for auth proxies. No Origin
// header is sent: ComfyUI refuses loopback requests with a foreign Origin.
//
// # Workflows
//
// Workflow is the API format POST /prompt takes. ParseWorkflow keeps number literals
// exact (seeds up to 2^64−1) and unknown fields; Validate checks links locally; Set and
// Get address inputs as "NODE.inputs.NAME" where NODE is an id, a unique title or a
// unique class. ConvertUI turns a UI-format workflow (what ComfyUI's Save writes) into
// the API format using /object_info.
//
// The package comfysim provides a protocol-faithful ComfyUI simulator for tests.
package comfy
