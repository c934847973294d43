package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
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
No GPU, no models.`,
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
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", *listen, err)
		}
		srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
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
