package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

func init() {
	register(&command{
		name:    "sim",
		summary: "run a simulated ComfyUI node (for tests, demos and benchmarks)",
		usage:   "[--listen 127.0.0.1:8188] [--node-delay 1ms] [--step-delay 1ms] …",
		help: `Serves a protocol-faithful ComfyUI 0.3.64 simulator: the same HTTP endpoints,
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
  /comfysim/stats               (GET) executions and busy time as JSON`,
		flags: simFlags,
	})
}

func simFlags(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	d := comfysim.DefaultOptions()
	listen := envString(fs, "listen", "COMFYQ_SIM_LISTEN", "127.0.0.1:8188", "address to listen on")
	nodeDelay := envDuration(fs, "node-delay", "COMFYQ_SIM_NODE_DELAY", d.NodeDelay, "time each executed node takes")
	stepDelay := envDuration(fs, "step-delay", "COMFYQ_SIM_STEP_DELAY", d.StepDelay, "time each KSampler step takes")
	videoSize := fs.Int64("video-size", d.VideoSize, "bytes of each video output")
	audioSize := fs.Int64("audio-size", d.AudioSize, "bytes of each audio output")
	models := repeated(fs, "model", "checkpoint name offered by CheckpointLoaderSimple (default sim-v1-5.safetensors)")
	preview := fs.String("preview-method", d.PreviewMethod, "none, or auto to send a JPEG preview per sampler step")
	cache := fs.String("cache", d.CacheMode, "execution cache: classic, lru or none")
	failNodes := repeated(fs, "fail-node", "make a node raise: CLASS_OR_ID=ExceptionType[:message]")
	viewDelay := fs.Duration("view-delay", 0, "delay before answering each /view request")
	viewFails := fs.Int("view-fail-count", 0, "fail the next N /view requests with 500")
	control := fs.Bool("control", false, "serve fault-injection endpoints under /comfysim/ (never on a public address)")
	dir := fs.String("dir", "", "directory for input/, output/ and temp/ (default: a temporary directory)")
	logger := logFlags(fs)
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected arguments %q", args)
		}
		log := logger()
		sim, err := comfysim.New(comfysim.Options{
			NodeDelay: *nodeDelay, StepDelay: *stepDelay, VideoSize: *videoSize, AudioSize: *audioSize,
			Models: models.values, PreviewMethod: *preview, CacheMode: *cache, Dir: *dir, Logger: log,
		})
		if err != nil {
			return err
		}
		defer sim.Close()
		for _, f := range failNodes.values {
			node, exc, ok := strings.Cut(f, "=")
			if !ok || node == "" || exc == "" {
				return usagef("--fail-node %q: want CLASS_OR_ID=ExceptionType[:message]", f)
			}
			exc, msg, _ := strings.Cut(exc, ":")
			if msg == "" {
				msg = "injected by comfyq sim --fail-node"
			}
			sim.FailNode(node, exc, msg)
		}
		if *viewDelay > 0 || *viewFails > 0 {
			sim.SetViewFault(comfysim.ViewFault{Delay: *viewDelay, FailCount: *viewFails})
		}
		var handler http.Handler = sim
		if *control {
			handler = simControl(sim)
			log.Warn("fault-injection endpoints enabled under /comfysim/")
		}
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", *listen, err)
		}
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		log.Info("simulated ComfyUI node listening", "url", "http://"+ln.Addr().String(), "files", sim.Dir())
		fmt.Fprintf(stdout(ctx), "comfysim listening on http://%s\n", ln.Addr())
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
