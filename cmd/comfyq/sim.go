package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

func simCommand(b base) *cli.Command {
	o := &simOptions{base: b}
	d := comfysim.DefaultOptions()
	return &cli.Command{
		Name:      "sim",
		Usage:     "run a simulated ComfyUI node (for tests, demos and benchmarks)",
		ArgsUsage: "[--listen 127.0.0.1:8188] [--node-delay 1ms] [--step-delay 1ms] …",
		Description: `Serves a protocol-faithful ComfyUI simulator (--comfyui-version 0.3.64 or
0.38.1, default the newest): the same HTTP endpoints,
WebSocket messages, errors, caching and history, for a set of model-free and
simulated node classes (EmptyImage, LoadImage, ImageInvert, ImageScale, SaveImage,
PreviewImage, CheckpointLoaderSimple, CLIPTextEncode, EmptyLatentImage, KSampler,
VAEDecode, CreateVideo/SaveVideo, SaveAudio, PreviewAny, …). Outputs are real PNG
files; video and audio outputs are generated on the fly at the configured size.
No GPU, no models.

Faults for demos and tests: --fail-node CLASS_OR_ID=ExceptionType (e.g.
KSampler=torch.OutOfMemoryError) makes that node raise; --view-delay and
--view-fail-count slow or fail /view. With --control, POST endpoints under
/comfysim/ inject faults at run time:
  /comfysim/crash               lose queue, history and sockets (a restarted ComfyUI)
  /comfysim/down?on=true|false  refuse every request
  /comfysim/drop-websockets     close every WebSocket mid-run
  /comfysim/silence?for=10s     keep sockets open but send nothing
  /comfysim/fail-node?node=KSampler&type=torch.OutOfMemoryError&message=…
  /comfysim/clear-faults
  /comfysim/stats               (GET) executions and busy time as JSON

Example:

  comfyq sim --listen 127.0.0.1:8188 --step-delay 20ms --fail-node KSampler=torch.OutOfMemoryError --control`,
		Flags: flagList([]cli.Flag{
			stringFlag(&o.Listen, "listen", "COMFYQ_SIM_LISTEN", "127.0.0.1:8188", "address to listen on"),
			stringFlag(&o.Version, "comfyui-version", "COMFYQ_SIM_COMFYUI_VERSION", comfysim.NewestVersion,
				"ComfyUI release to simulate: "+strings.Join(comfysim.Versions(), " or ")),
			durationFlag(&o.NodeDelay, "node-delay", "COMFYQ_SIM_NODE_DELAY", d.NodeDelay, "time each executed node takes"),
			durationFlag(&o.StepDelay, "step-delay", "COMFYQ_SIM_STEP_DELAY", d.StepDelay, "time each KSampler step takes"),
			int64Flag(&o.VideoSize, "video-size", "", d.VideoSize, "bytes of each video output"),
			int64Flag(&o.AudioSize, "audio-size", "", d.AudioSize, "bytes of each audio output"),
			listFlag(&o.Models, "model", "", "checkpoint name offered by CheckpointLoaderSimple (default sim-v1-5.safetensors)"),
			stringFlag(&o.PreviewMethod, "preview-method", "", d.PreviewMethod, "none, or auto to send a JPEG preview per sampler step"),
			stringFlag(&o.Cache, "cache", "", "", "execution cache: classic, ram_pressure, lru or none (default: the version's, classic for 0.3.64, ram_pressure for 0.38.1)"),
			listFlag(&o.FailNodes, "fail-node", "", "make a node raise: CLASS_OR_ID=ExceptionType[:message]"),
			durationFlag(&o.ViewDelay, "view-delay", "", 0, "delay before answering each /view request"),
			intFlag(&o.ViewFailCount, "view-fail-count", "", 0, "fail the next N /view requests with 500"),
			boolFlag(&o.Control, "control", "", false, "serve fault-injection endpoints under /comfysim/ (never on a public address)"),
			stringFlag(&o.Dir, "dir", "", "", "directory for input/, output/ and temp/ (default: a temporary directory)"),
		}, o.log.flags()),
		Action: action(o, nil),
	}
}

// simOptions are the flags of comfyq sim.
type simOptions struct {
	base
	Listen, Version, PreviewMethod, Cache, Dir string
	NodeDelay, StepDelay, ViewDelay            time.Duration
	VideoSize, AudioSize                       int64
	Models, FailNodes                          []string
	ViewFailCount                              int
	Control                                    bool
	log                                        logOptions
}

func (o *simOptions) Validate() error {
	if !slices.Contains(comfysim.Versions(), o.Version) {
		return usagef("--comfyui-version %q: want %s", o.Version, strings.Join(comfysim.Versions(), " or "))
	}
	for _, f := range o.FailNodes {
		if node, exc, ok := strings.Cut(f, "="); !ok || node == "" || exc == "" {
			return usagef("--fail-node %q: want CLASS_OR_ID=ExceptionType[:message]", f)
		}
	}
	if o.ViewFailCount < 0 || o.ViewDelay < 0 {
		return usagef("--view-delay and --view-fail-count must not be negative")
	}
	return o.log.Validate()
}

func (o *simOptions) Run(ctx context.Context) error {
	log := o.log.logger(o.Err)
	sim, err := comfysim.New(comfysim.Options{
		ComfyUIVersion: o.Version,
		NodeDelay:      o.NodeDelay, StepDelay: o.StepDelay, VideoSize: o.VideoSize, AudioSize: o.AudioSize,
		Models: o.Models, PreviewMethod: o.PreviewMethod, CacheMode: o.Cache, Dir: o.Dir, Logger: log,
	})
	if err != nil {
		return err
	}
	defer sim.Close()
	for _, f := range o.FailNodes {
		node, exc, _ := strings.Cut(f, "=")
		exc, msg, _ := strings.Cut(exc, ":")
		if msg == "" {
			msg = "injected by comfyq sim --fail-node"
		}
		sim.FailNode(node, exc, msg)
	}
	if o.ViewDelay > 0 || o.ViewFailCount > 0 {
		sim.SetViewFault(comfysim.ViewFault{Delay: o.ViewDelay, FailCount: o.ViewFailCount})
	}
	var handler http.Handler = sim
	if o.Control {
		handler = simControl(sim)
		log.Warn("fault-injection endpoints enabled under /comfysim/")
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Info("simulated ComfyUI node listening", "comfyui_version", sim.Version(), "url", "http://"+ln.Addr().String(), "files", sim.Dir())
	fmt.Fprintf(o.Out, "comfysim listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// simControl serves the simulator with fault-injection endpoints under /comfysim/.
func simControl(sim *comfysim.Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", sim)
	post := func(path string, f func(r *http.Request) error) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			if err := f(r); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
	}
	post("/comfysim/crash", func(*http.Request) error { sim.Crash(); return nil })
	post("/comfysim/drop-websockets", func(*http.Request) error { sim.DropWebSockets(); return nil })
	post("/comfysim/clear-faults", func(*http.Request) error { sim.ClearFaults(); return nil })
	post("/comfysim/down", func(r *http.Request) error {
		on, err := strconv.ParseBool(r.URL.Query().Get("on"))
		if err != nil {
			return errors.New("want ?on=true or ?on=false")
		}
		sim.SetDown(on)
		return nil
	})
	post("/comfysim/silence", func(r *http.Request) error {
		d, err := time.ParseDuration(r.URL.Query().Get("for"))
		if err != nil || d <= 0 {
			return errors.New("want ?for=DURATION, e.g. 10s")
		}
		sim.SilenceWebSockets(d)
		return nil
	})
	post("/comfysim/fail-node", func(r *http.Request) error {
		q := r.URL.Query()
		if q.Get("node") == "" || q.Get("type") == "" {
			return errors.New("want ?node=CLASS_OR_ID&type=ExceptionType[&message=…]")
		}
		msg := q.Get("message")
		if msg == "" {
			msg = "injected through /comfysim/fail-node"
		}
		sim.FailNode(q.Get("node"), q.Get("type"), msg)
		return nil
	})
	mux.HandleFunc("GET /comfysim/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(sim.Stats())
	})
	return mux
}
