// Package comfysim is a protocol-faithful simulator of a ComfyUI node, for
// tests, benchmarks, demos and `comfyq sim`. Options.ComfyUIVersion picks the
// release: 0.3.64 (the zero value) or 0.38.1, which adds the jobs API
// (/api/jobs, atomic cancel), canonical-UUID prompt ids, the sensitive sixth
// queue element, the 0.38 object_info fields, system_stats and feature flags,
// missing_node_type errors and RAM-pressure caching; the differences and
// their sources are listed in docs/comfyui-protocol-versions.md.
//
// A Server is an http.Handler that serves the HTTP API and the /ws
// WebSocket exactly as docs/comfyui-protocol.md describes them: the same
// routes (each also under /api), status codes, error bodies, JSON bytes
// (Python's json.dumps spacing, key order and number forms), message types
// and order, routing of targeted and broadcast messages, caching between
// prompts and history. It executes a fixed set of real node classes whose
// object_info entries are those of a real 0.3.64 server (see
// objectinfo.json):
//
//	EmptyImage, LoadImage, ImageInvert, ImageScale, SaveImage, PreviewImage,
//	CheckpointLoaderSimple, CLIPTextEncode, EmptyLatentImage, KSampler,
//	VAEDecode, VAELoader, CreateVideo, SaveVideo, SaveWEBM,
//	EmptyLatentAudio, VAEDecodeAudio, SaveAudio, PreviewAny,
//	ImageBatch, ImageBlur, ImageCrop, ImageCompositeMasked, SolidMask,
//	JoinImageWithAlpha, ImageAddNoise, RepeatImageBatch, SaveAnimatedWEBP,
//	SaveAnimatedPNG
//
// Images travel between nodes as a small description (size, batch, colour
// or loaded pixels), not as tensors; SaveImage and PreviewImage write real
// PNG files carrying the prompt (and extra_pnginfo) text chunks. Video and
// audio outputs are virtual files of Options.VideoSize and
// Options.AudioSize bytes, generated when /view serves them.
//
// # Starting one
//
//	sim, base := simtest.NewServer(t, comfysim.Options{StepDelay: 5 * time.Millisecond}) // package comfysim/simtest
//	// POST base+"/prompt", dial base+"/ws?clientId=…", …
//
// or, outside tests, New and any http.Server:
//
//	sim, err := comfysim.New(comfysim.DefaultOptions())
//	…
//	defer sim.Close()
//	http.ListenAndServe("127.0.0.1:8188", sim)
//
// # Execution
//
// One executor goroutine takes prompts from a priority heap (Python's heapq,
// so /queue shows the same unsorted array) and runs them in the order of
// ComfyUI's ExecutionList (graph.py): a topological sort that prefers
// output nodes and the nodes that unblock them. Output nodes are added in
// prompt key order (ComfyUI uses a set, whose order Python leaves
// arbitrary). Each non-sampler node takes Options.NodeDelay, each KSampler
// step Options.StepDelay. An interrupt is seen when a node starts and at
// each sampler step, as in ComfyUI: a node that is running finishes first.
//
// Caching follows execution.py: a node's key is its class, its IS_CHANGED
// result (LoadImage: the file's SHA-256) and its inputs, constants by value
// and links as ancestor references, recursively; node ids are not part of
// it. Options.CacheMode selects CLASSIC (the 0.3.64 default), LRU or no
// retention between prompts; POST /free {"free_memory": true} drops every
// cache.
//
// # Faults
//
// Crash, SetDown, DropWebSockets, SilenceWebSockets, FailNode and
// SetViewFault inject the failures a job queue must survive; Executions and
// Stats observe what ran.
//
// # Where it knowingly differs from ComfyUI
//
//   - Where ComfyUI iterates a Python set (output nodes, `executed`,
//     `current_outputs`, the inputs checked by validation) the simulator
//     uses prompt key order or input_order: same members, deterministic
//     order.
//   - StepDelay ends early on an interrupt; ComfyUI notices one at the next
//     sampler step. Messages are the same.
//   - LoadImage refuses paths outside input/, output/ and temp/.
//   - GET /view?preview=webp returns a lossless WebP (no WebP encoder is
//     available in Go's standard library; quality is ignored).
//   - PNG bytes differ from PIL's (compression), their pixels and text
//     chunks do not. Pixels are simple functions of the graph: EmptyImage's
//     colour, inversion, scaling (nearest), a colour derived from the
//     sampler's inputs.
//   - Images above 2^28 pixels raise torch.OutOfMemoryError.
//   - Video and audio outputs exist only as virtual files served by /view.
package comfysim
