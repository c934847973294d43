package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v3"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/internal/redisproc"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/template"
	"github.com/comfyq/comfyq/templatestore"
	"github.com/comfyq/comfyq/webhook"
	"github.com/comfyq/comfyq/worker"
)

//go:embed examples/*.json
var exampleWorkflows embed.FS

func devCommand(b base) *cli.Command {
	o := &devOptions{base: b}
	return &cli.Command{
		Name:      "dev",
		Usage:     "run everything on this machine: Redis, simulated ComfyUI nodes, workers and the API",
		ArgsUsage: "[--listen 127.0.0.1:8080] [--sim-nodes 2 | --comfy URL …] [--redis URL] [--storage URL]",
		Description: `Starts the whole system in one process, for trying comfyq and for development:

  Redis    --redis URL if given; else a redis-server found on PATH, started on a free
           port with its data in --data-dir; else an embedded Redis-compatible server
           (miniredis: for trying things out only, nothing survives a restart)
  storage  --storage URL if given; else the directory <data-dir>/outputs, served by
           the API at /v1/files/…
  ComfyUI  --sim-nodes simulated nodes (default 2), or your real nodes with --comfy URL
  workers  one per node
  API      on --listen, with the dashboard at /monitoring/, /docs and /openapi.json

Example templates (txt2img, img2img, video) are registered at start, so this works
at once:

  comfyq submit --api http://127.0.0.1:8080 --template txt2img --param prompt="a red fox" --wait

On a loopback address (the default) it needs no API key unless --api-key is given,
and input and webhook URLs may name private addresses. On any other address
(--listen 0.0.0.0:8080) other machines can reach it: it requires an API key
(--api-key, or one generated at start and printed), and private URLs are refused
unless --allow-private-urls is given. It prints exactly where it listens. Ctrl-C
stops everything.`,
		Flags: flagList([]cli.Flag{
			stringFlag(&o.Listen, "listen", "COMFYQ_LISTEN", "127.0.0.1:8080", "API address"),
			stringFlag(&o.RedisURL, "redis", "COMFYQ_REDIS_URL", "", "Redis URL (default: start one)"),
			stringFlag(&o.StorageURL, "storage", "COMFYQ_STORAGE_URL", "", "output storage URL (default: <data-dir>/outputs)"),
			stringFlag(&o.DataDir, "data-dir", "COMFYQ_DATA_DIR", "", "where Redis data and outputs live (default: a new temporary directory)"),
			intFlag(&o.SimNodes, "sim-nodes", "COMFYQ_SIM_NODES", 2, "number of simulated ComfyUI nodes (when no --comfy is given)"),
			durationFlag(&o.SimStepDelay, "sim-step-delay", "COMFYQ_SIM_STEP_DELAY", 50*time.Millisecond, "time each simulated sampler step takes"),
			listFlag(&o.Nodes, "comfy", "COMFYQ_COMFY_URLS", "a real ComfyUI node, URL or NAME=URL, instead of simulated ones"),
			stringFlag(&o.APIKey, "api-key", "COMFYQ_API_KEY", "", "require this API key (default: none on loopback, a generated one on any other address)"),
			boolFlag(&o.AllowPrivate, "allow-private-urls", "COMFYQ_ALLOW_PRIVATE_URLS", false, "allow private input and webhook URLs on a non-loopback address (always allowed on loopback)"),
		}, o.webhooks.flags(), o.log.flags()),
		Action: action(o, nil),
	}
}

// devOptions are the flags of comfyq dev.
type devOptions struct {
	base
	Listen, RedisURL, StorageURL, DataDir, APIKey string
	SimNodes                                      int
	SimStepDelay                                  time.Duration
	AllowPrivate                                  bool
	Nodes                                         []string
	webhooks                                      webhookOptions
	log                                           logOptions
}

func (o *devOptions) Validate() error {
	o.Nodes = nonEmpty(o.Nodes)
	if len(o.Nodes) == 0 && o.SimNodes < 1 {
		return usagef("no ComfyUI node: give --sim-nodes 1 or more, or --comfy URL")
	}
	if err := o.webhooks.Validate(); err != nil {
		return err
	}
	return o.log.Validate()
}

func (o *devOptions) Run(ctx context.Context) error {
	log := o.log.logger(o.Err)
	start := time.Now()
	d := &devEnv{log: log}
	defer d.close()
	dir := o.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "comfyq-dev-")
		if err != nil {
			return err
		}
		d.cleanup = append(d.cleanup, func() { os.RemoveAll(tmp) })
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}

	rdb, redisDesc, err := d.redis(ctx, o.RedisURL, dir)
	if err != nil {
		return err
	}
	sURL := o.StorageURL
	if sURL == "" {
		sURL = "file://" + filepath.Join(dir, "outputs")
	}
	store, err := storage.Open(ctx, sURL)
	if err != nil {
		return err
	}

	var ncs []worker.NodeConfig
	for _, n := range o.Nodes {
		nc := worker.NodeConfig{URL: n}
		if name, u, ok := cutName(n); ok {
			nc.Name, nc.URL = name, u
		}
		ncs = append(ncs, nc)
	}
	if len(ncs) == 0 {
		for i := 1; i <= o.SimNodes; i++ {
			u, simErr := d.sim(i, o.SimStepDelay)
			if simErr != nil {
				return simErr
			}
			ncs = append(ncs, worker.NodeConfig{URL: u, Name: "sim-" + strconv.Itoa(i)})
		}
	}
	objectInfo := api.CacheObjectInfo(func(ctx context.Context) (comfy.ObjectInfo, error) {
		c, clientErr := comfy.New(comfy.Config{BaseURL: ncs[0].URL})
		if clientErr != nil {
			return nil, clientErr
		}
		defer c.Close()
		return c.ObjectInfo(ctx)
	}, 10*time.Minute)

	// Listen first: who can reach the address decides the key and the URL policy.
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	d.cleanup = append(d.cleanup, func() { _ = ln.Close() }) // Serve closes it too
	exposure := listenExposure(ln.Addr())
	apiKey, generatedKey := o.APIKey, false
	if apiKey == "" && !exposure.loopback {
		if apiKey, err = newDevKey(); err != nil {
			return err
		}
		generatedKey = true
	}
	allowPrivate := exposure.loopback || o.AllowPrivate
	base := "http://" + ln.Addr().String()

	webhookSecret := ""
	if o.webhooks.Secrets == "" { // a local tool: sign webhooks with a fresh secret
		if _, whsec, secretErr := webhook.NewSecret(); secretErr == nil {
			o.webhooks.Secrets, webhookSecret = whsec, whsec
		}
	}
	notifier, runWebhooks, err := o.webhooks.open(rdb, allowPrivate, log)
	if err != nil {
		return err
	}
	templates := templatestore.New(rdb, templatestore.Config{ObjectInfo: objectInfo})
	if err = registerExamples(ctx, templates); err != nil {
		return fmt.Errorf("register example templates: %w", err)
	}
	cfg := api.Config{Redis: rdb, Storage: store, ObjectInfo: objectInfo, Templates: templates, Webhooks: notifier,
		AllowPrivateURLs: allowPrivate, Version: version, Logger: log}
	if exposure.loopback {
		// Only this machine reaches the API, at this address: absolute links for it.
		cfg.PublicURL = base
	}
	if apiKey != "" {
		cfg.APIKeys, cfg.AdminKeys = []string{apiKey}, []string{apiKey}
	} else {
		cfg.NoAuth = true
	}
	srv, err := api.New(cfg)
	if err != nil {
		return err
	}
	w, err := worker.New(worker.Config{Redis: rdb, Storage: store, Nodes: ncs, Logger: log, Notifier: notifier,
		Inputs: worker.InputPolicy{AllowPrivate: allowPrivate}, ShutdownGrace: 10 * time.Second})
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	errc := make(chan error, 3)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Add(3)
	go func() { defer wg.Done(); errc <- srv.Serve(runCtx, ln) }()
	go func() { defer wg.Done(); errc <- w.Run(runCtx, nil) }()
	go func() { defer wg.Done(); errc <- runWebhooks(runCtx) }()

	if err := waitReady(ctx, base+"/healthz"); err != nil {
		return err
	}
	out := o.Out
	fmt.Fprintf(out, "comfyq dev is ready in %s\n\n", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(out, "  API          %s   (%s)\n", base, exposure.desc)
	fmt.Fprintf(out, "  console      %s/console/\n", base)
	fmt.Fprintf(out, "  docs         %s/docs\n", base)
	fmt.Fprintf(out, "  OpenAPI      %s/openapi.json\n", base)
	fmt.Fprintf(out, "  dashboard    %s/monitoring/\n", base)
	fmt.Fprintf(out, "  Redis        %s\n", redisDesc)
	fmt.Fprintf(out, "  storage      %s\n", store.String())
	for _, n := range ncs {
		fmt.Fprintf(out, "  node         %s  %s\n", n.Name, n.URL)
	}
	switch {
	case apiKey == "":
		fmt.Fprintf(out, "  auth         none: only this machine can connect (give --api-key to require one)\n")
	case generatedKey:
		fmt.Fprintf(out, "  auth         API key %s (generated, as the address is not loopback; give --api-key to choose)\n", apiKey)
	default:
		fmt.Fprintf(out, "  auth         the API key of --api-key\n")
	}
	if allowPrivate {
		fmt.Fprintf(out, "  URLs         private addresses allowed for inputs and webhooks\n")
	} else {
		fmt.Fprintf(out, "  URLs         private addresses refused for inputs and webhooks (give --allow-private-urls to allow)\n")
	}
	if webhookSecret != "" {
		fmt.Fprintf(out, "  webhooks     signed with %s (give --webhook-secret to choose)\n", webhookSecret)
	}
	keyFlag, keyHeader := "", ""
	if apiKey != "" {
		keyFlag, keyHeader = " --api-key "+apiKey, " -H 'Authorization: Bearer "+apiKey+"'"
	}
	fmt.Fprintf(out, "\nTry:\n  comfyq submit --api %s%s --template txt2img --param prompt=\"a red fox\" --wait\n", base, keyFlag)
	fmt.Fprintf(out, "  curl -s %s/v1/templates/txt2img/jobs%s -H 'Content-Type: application/json' -d '{\"params\": {\"prompt\": \"a red fox\"}}'\n\nCtrl-C stops everything.\n", base, keyHeader)

	var firstErr error
	select {
	case <-ctx.Done():
	case firstErr = <-errc:
	}
	stop()
	wg.Wait()
	if firstErr != nil && !errors.Is(firstErr, context.Canceled) && !errors.Is(firstErr, http.ErrServerClosed) {
		return firstErr
	}
	fmt.Fprintln(out, "comfyq dev stopped")
	return nil
}

// exposure says who can reach a listening address.
type exposure struct {
	loopback bool   // only this machine
	desc     string // for the banner: exactly what the address is
}

// listenExposure judges the address the API actually listens on.
func listenExposure(addr net.Addr) exposure {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return exposure{desc: "listening on " + addr.String()}
	}
	ip, _ := netip.AddrFromSlice(tcp.IP)
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return exposure{loopback: true, desc: "listening on loopback " + ip.String() + " only: this machine alone can connect"}
	case ip.IsUnspecified():
		return exposure{desc: "listening on every network interface of this machine: other machines can connect"}
	}
	return exposure{desc: "listening on " + ip.String() + ", not loopback: other machines can connect"}
}

// newDevKey returns a random API key for a dev server others can reach.
func newDevKey() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate an API key: %w", err)
	}
	return "cqdev_" + hex.EncodeToString(b[:]), nil
}

// devEnv owns what `comfyq dev` starts, to stop it in reverse order.
type devEnv struct {
	log     *slog.Logger
	cleanup []func()
}

func (d *devEnv) close() {
	for i := len(d.cleanup) - 1; i >= 0; i-- {
		d.cleanup[i]()
	}
}

// redis connects to the given URL, or starts redis-server, or miniredis.
func (d *devEnv) redis(ctx context.Context, url, dir string) (redis.UniversalClient, string, error) {
	if url != "" {
		rdb, err := producer.OpenRedis(url)
		if err != nil {
			return nil, "", err
		}
		d.cleanup = append(d.cleanup, func() { rdb.Close() })
		if err := rdb.Ping(ctx).Err(); err != nil {
			return nil, "", fmt.Errorf("--redis %s: %w", url, err)
		}
		return rdb, url, nil
	}
	if _, err := redisproc.Binary(); err == nil {
		rs, err := redisproc.Start(ctx, redisproc.Options{Dir: filepath.Join(dir, "redis"), AppendOnly: true})
		if err != nil {
			return nil, "", err
		}
		d.cleanup = append(d.cleanup, func() { _ = rs.Stop() })
		rdb, err := producer.OpenRedis(rs.URL())
		if err != nil {
			return nil, "", err
		}
		d.cleanup = append(d.cleanup, func() { rdb.Close() })
		return rdb, rs.URL() + " (redis-server started by comfyq dev, data in " + rs.Dir() + ")", nil
	}
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		return nil, "", fmt.Errorf("embedded Redis: %w", err)
	}
	d.cleanup = append(d.cleanup, mr.Close)
	d.log.Warn("no redis-server on PATH: using an embedded Redis-compatible server, for trying things out only (install redis-server or give --redis)")
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	d.cleanup = append(d.cleanup, func() { rdb.Close() })
	return rdb, "redis://" + mr.Addr() + " (embedded miniredis: for trying things out only)", nil
}

// sim starts simulated node i on a free loopback port and returns its URL.
func (d *devEnv) sim(i int, stepDelay time.Duration) (string, error) {
	s, err := comfysim.New(comfysim.Options{ComfyUIVersion: comfysim.NewestVersion, StepDelay: stepDelay, NodeDelay: 5 * time.Millisecond,
		Logger: d.log.With("sim", i)})
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return "", err
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("simulated node stopped serving", "sim", i, "err", err)
		}
	}()
	d.cleanup = append(d.cleanup, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			d.log.Warn("simulated node: shutdown", "sim", i, "err", err)
		}
		s.Close()
	})
	return "http://" + ln.Addr().String(), nil
}

func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the API did not become ready at %s", url)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func cutName(n string) (name, url string, ok bool) {
	for i := 0; i < len(n); i++ {
		switch n[i] {
		case '=':
			return n[:i], n[i+1:], true
		case '/', ':':
			return "", "", false
		}
	}
	return "", "", false
}

// registerExamples registers the example templates, replacing older versions.
func registerExamples(ctx context.Context, store *templatestore.Store) error {
	read := func(name string) []byte {
		data, err := exampleWorkflows.ReadFile("examples/" + name)
		if err != nil {
			panic(err) // embedded at build time
		}
		return data
	}
	defs := []template.Definition{
		{Name: "txt2img", Description: "Text to image: a prompt, a negative prompt, a seed, steps and size.",
			Workflow: read("txt2img.json")},
		{Name: "img2img", Description: "Image to image: an input image, scaled and inverted.",
			Workflow: read("img2img.json"), Params: []template.ParamSpec{
				{Name: "image", Targets: []string{"1.inputs.image"}, Type: "image", Description: "the input image"},
				{Name: "width", Targets: []string{"2.inputs.width"}, Description: "output width"},
				{Name: "height", Targets: []string{"2.inputs.height"}, Description: "output height"},
			}},
		{Name: "video", Description: "A short video clip: frame size, frame count and fps.",
			Workflow: read("video.json"), Params: []template.ParamSpec{
				{Name: "width", Targets: []string{"1.inputs.width"}},
				{Name: "height", Targets: []string{"1.inputs.height"}},
				{Name: "frames", Targets: []string{"1.inputs.batch_size"}},
				{Name: "fps", Targets: []string{"2.inputs.fps"}},
			}},
	}
	for _, def := range defs {
		if _, err := store.Put(ctx, def); err != nil {
			return fmt.Errorf("%s: %w", def.Name, err)
		}
	}
	return nil
}
