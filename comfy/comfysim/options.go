package comfysim

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// ErrInvalidOptions is returned by New for options it cannot honour.
var ErrInvalidOptions = errors.New("comfysim: invalid options")

// Options configure a simulated ComfyUI node. The zero value is valid: every
// field falls back to the default documented on it.
type Options struct {
	// ComfyUIVersion is the ComfyUI release whose protocol is simulated:
	// Version0364 ("0.3.64", the default, so that existing callers keep the
	// behaviour they were written against) or Version0381 ("0.38.1").
	// `comfyq sim` and `comfyq dev` default to NewestVersion.
	ComfyUIVersion string
	// NodeDelay is the time each executed node other than KSampler takes.
	// Default 1ms. Negative is invalid.
	NodeDelay time.Duration
	// StepDelay is the time each KSampler step takes. Default 1ms.
	StepDelay time.Duration
	// VideoSize is the size in bytes of each video output (SaveVideo,
	// SaveWEBM). Default 64 KiB. Video and audio outputs are virtual files:
	// never held in memory nor written to disk, their bytes are generated
	// deterministically from a seed when /view serves them, so sizes of
	// 1 GiB and more cost nothing until read.
	VideoSize int64
	// AudioSize is the size in bytes of each audio output (SaveAudio, one
	// .flac per batch item). Default 16 KiB. Virtual, like VideoSize.
	AudioSize int64
	// Models are the checkpoint names offered by CheckpointLoaderSimple's
	// ckpt_name combo (served sorted, like ComfyUI's file lists) and by
	// GET /models/checkpoints. Default ["sim-v1-5.safetensors"].
	Models []string
	// PreviewMethod is ComfyUI's --preview-method: "none" (the default, as
	// ComfyUI) sends no sampler previews; "auto" makes KSampler send a JPEG
	// preview per step: binary type 1 frames, or type 4 (with metadata) to
	// clients that negotiated supports_preview_metadata.
	PreviewMethod string
	// CacheMode is the execution cache between prompts: "classic" (keep
	// only results the current prompt reuses; ComfyUI 0.3.64's default and
	// so the default with Version0364), "ram_pressure" (keep every result
	// across prompts, evicting only under memory pressure, which a simulator
	// never has; 0.38's default and so the default with Version0381), "lru"
	// (keep up to CacheSize results across prompts, --cache-lru) or "none"
	// (keep nothing, --cache-none).
	CacheMode string
	// CacheSize is the number of node results kept when CacheMode is "lru".
	// Default 100.
	CacheSize int
	// Dir holds the input/, output/ and temp/ directories. Default: a
	// temporary directory owned by the server and removed by Close.
	Dir string
	// Logger receives the simulator's logs. Default: logs are discarded.
	Logger *slog.Logger
}

// DefaultOptions returns the options New uses for zero fields, spelled out.
func DefaultOptions() Options {
	return Options{
		NodeDelay:      time.Millisecond,
		StepDelay:      time.Millisecond,
		ComfyUIVersion: Version0364,
		VideoSize:      64 << 10,
		AudioSize:      16 << 10,
		Models:         []string{"sim-v1-5.safetensors"},
		PreviewMethod:  "none",
		CacheMode:      "classic",
		CacheSize:      100,
	}
}

// withDefaults validates o and fills its zero fields.
func (o Options) withDefaults() (Options, error) {
	d := DefaultOptions()
	if o.NodeDelay < 0 || o.StepDelay < 0 {
		return o, fmt.Errorf("%w: negative delay", ErrInvalidOptions)
	}
	if o.VideoSize < 0 || o.AudioSize < 0 {
		return o, fmt.Errorf("%w: negative output size", ErrInvalidOptions)
	}
	if o.CacheSize < 0 {
		return o, fmt.Errorf("%w: negative CacheSize", ErrInvalidOptions)
	}
	switch {
	case o.ComfyUIVersion == "":
		o.ComfyUIVersion = d.ComfyUIVersion
	case !validVersion(o.ComfyUIVersion):
		return o, fmt.Errorf("%w: ComfyUIVersion %q (want one of %v)", ErrInvalidOptions, o.ComfyUIVersion, Versions())
	}
	if o.NodeDelay == 0 {
		o.NodeDelay = d.NodeDelay
	}
	if o.StepDelay == 0 {
		o.StepDelay = d.StepDelay
	}
	if o.VideoSize == 0 {
		o.VideoSize = d.VideoSize
	}
	if o.AudioSize == 0 {
		o.AudioSize = d.AudioSize
	}
	if o.Models == nil {
		o.Models = d.Models
	}
	o.Models = slices.Clone(o.Models)
	switch o.PreviewMethod {
	case "":
		o.PreviewMethod = d.PreviewMethod
	case "none", "auto":
	default:
		return o, fmt.Errorf("%w: PreviewMethod %q (want none or auto)", ErrInvalidOptions, o.PreviewMethod)
	}
	switch o.CacheMode {
	case "":
		o.CacheMode = d.CacheMode
		if o.ComfyUIVersion != Version0364 {
			o.CacheMode = "ram_pressure"
		}
	case "classic", "none", "lru", "ram_pressure":
	default:
		return o, fmt.Errorf("%w: CacheMode %q (want classic, ram_pressure, none or lru)", ErrInvalidOptions, o.CacheMode)
	}
	if o.CacheSize == 0 {
		o.CacheSize = d.CacheSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// ViewFault makes GET /view misbehave, for tests of download retries.
type ViewFault struct {
	// Delay is waited before answering each /view request.
	Delay time.Duration
	// FailStatus is the status of failed requests (default 500).
	FailStatus int
	// FailCount is how many of the next /view requests fail with FailStatus.
	FailCount int
	// CutAfter, when positive, closes the connection abruptly after that many
	// body bytes (the full Content-Length having been announced).
	CutAfter int64
}

// Stats are totals since New, kept across Crash. Benchmarks compute the
// node's busy fraction with BusyFraction.
type Stats struct {
	PromptsAccepted    int64         // POST /prompt answered 200
	PromptsRejected    int64         // POST /prompt answered 400
	PromptsExecuted    int64         // executions that ended (success, error or interrupt)
	PromptsSucceeded   int64         // ended with execution_success
	PromptsFailed      int64         // ended with execution_error
	PromptsInterrupted int64         // ended with execution_interrupted
	PromptsCached      int64         // successful executions that ran no node (full cache hit)
	NodesExecuted      int64         // nodes whose function ran
	NodesCached        int64         // node ids reported in execution_cached
	BusyTime           time.Duration // sum of execution wall times (execution_start to history written)
	FirstStart         time.Time     // first execution_start, zero before any
	LastEnd            time.Time     // end of the last finished execution
}

// BusyFraction is BusyTime over the span from FirstStart to LastEnd: 1 means
// the node never idled between its first and last execution.
func (st Stats) BusyFraction() float64 {
	span := st.LastEnd.Sub(st.FirstStart)
	if span <= 0 {
		return 0
	}
	return float64(st.BusyTime) / float64(span)
}
