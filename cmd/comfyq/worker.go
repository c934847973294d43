package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v3"

	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	_ "github.com/comfyq/comfyq/storage/file"
	_ "github.com/comfyq/comfyq/storage/s3"
	"github.com/comfyq/comfyq/worker"
)

func workerCommand(b base) *cli.Command {
	o := &workerOptions{base: b}
	return &cli.Command{
		Name:      "worker",
		Usage:     "run jobs on one or more ComfyUI nodes",
		ArgsUsage: "--redis URL --storage URL --comfy http://host:8188 [--comfy …]",
		Description: `Attaches to ComfyUI nodes, pulls jobs from Redis, submits each prompt to its node,
follows it over the WebSocket, streams the outputs into storage and writes the job's
status back. Each node holds up to --depth jobs at once: one executing, the others
waiting in the node's own queue or finishing (history, outputs, status), so the GPU
never idles between jobs. --depth auto (the default) measures each node's last 16
jobs and keeps 1 + ceil((before + after) / execution) of them: execution is the
node's mean time per job, before + after the 90th percentile of the worker's own work
per job (taking the task, the record, submitting; then history, outputs, status). It
starts at 2, rises at once when the node would idle, falls after 16 jobs that need
less, and never exceeds --max-depth. GPU jobs of seconds stay at 2; jobs of a few
milliseconds go deeper. A number fixes the depth (1: no pipelining). GET /v1/nodes,
the console and the metric comfyq_node_depth show each node's depth.

--comfy takes a URL, or NAME=URL to name the node in logs and job records.
SIGTERM or Ctrl-C drains: no new jobs; jobs on a GPU get --shutdown-grace to finish;
jobs waiting in a node's queue are handed back. A second signal stops at once (running
jobs are handed back and re-attached by the next worker).

Example:

  comfyq worker --redis redis://127.0.0.1:6379/0 --storage file:///srv/outputs \
    --comfy gpu-1=http://10.0.0.5:8188 --comfy gpu-2=http://10.0.0.6:8188`,
		Flags: flagList([]cli.Flag{
			stringFlag(&o.RedisURL, "redis", "COMFYQ_REDIS_URL", "", "Redis URL (redis://, rediss://, redis-sentinel://)"),
			stringFlag(&o.StorageURL, "storage", "COMFYQ_STORAGE_URL", "", "output storage: s3://bucket/prefix?endpoint=…&region=…&path_style=true or file:///dir"),
			listFlag(&o.Nodes, "comfy", "COMFYQ_COMFY_URLS", "ComfyUI node: URL or NAME=URL"),
			listFlag(&o.Headers, "comfy-header", "COMFYQ_COMFY_HEADERS", "header for node requests (auth proxies): 'Name: value' for every node, 'NODE=Name: value' for one"),
			stringFlag(&o.Queues, "queues", "COMFYQ_QUEUES", "default=1", "queues and priorities, e.g. high=6,default=3"),
			boolFlag(&o.StrictPriority, "strict-priority", "COMFYQ_STRICT_PRIORITY", false, "always drain higher-priority queues first"),
			stringFlag(&o.DepthFlag, "depth", "COMFYQ_DEPTH", "auto", "jobs held per node (pipelining): auto, or a fixed number (1 turns pipelining off)"),
			intFlag(&o.MaxDepth, "max-depth", "COMFYQ_MAX_DEPTH", worker.DefaultMaxDepth, "the most jobs --depth auto lets a node hold"),
			durationFlag(&o.PollInterval, "poll-interval", "COMFYQ_POLL_INTERVAL", 100*time.Millisecond, "how often an idle worker checks Redis for new jobs"),
			durationFlag(&o.StallTimeout, "stall-timeout", "COMFYQ_STALL_TIMEOUT", 30*time.Second, "check /history and /queue after this long without an event"),
			durationFlag(&o.ShutdownGrace, "shutdown-grace", "COMFYQ_SHUTDOWN_GRACE", 10*time.Minute, "how long a drain waits for jobs running on a GPU"),
			durationFlag(&o.HealthInterval, "health-interval", "COMFYQ_HEALTH_INTERVAL", 2*time.Second, "how often each node's /system_stats is probed"),
			boolFlag(&o.UploadPreviews, "upload-previews", "COMFYQ_UPLOAD_PREVIEWS", false, "also copy temporary preview outputs to storage"),
			boolFlag(&o.AllowPrivate, "allow-private-urls", "COMFYQ_ALLOW_PRIVATE_URLS", false, "let input URLs reach private and loopback addresses"),
			listFlag(&o.RetryOn, "retry-on", "COMFYQ_RETRY_ON", "exception type after which a failed execution is retried, beside out of memory and CUDA/device errors (others fail after one run)"),
			durationFlag(&o.Retention, "retention", "COMFYQ_RETENTION", jobstore.DefaultRetention, "how long job records are kept after their last change (give the API the same)"),
			stringFlag(&o.MetricsAddr, "metrics-listen", "COMFYQ_METRICS_LISTEN", "", "serve Prometheus /metrics and /healthz on this address (e.g. :9091; off when empty)"),
			stringFlag(&o.OutputPrefix, "output-prefix", "COMFYQ_OUTPUT_PREFIX", "jobs", "first segment of output keys"),
			stringFlag(&o.CPUProfile, "cpuprofile", "", "", "write a CPU profile of this process to this file until it stops, for go tool pprof"),
			o.seal.flag(),
		}, o.webhooks.flags(), o.log.flags()),
		Action: action(o, nil),
	}
}

// workerOptions are the flags of comfyq worker.
type workerOptions struct {
	base
	RedisURL, StorageURL                                      string
	Nodes, Headers, RetryOn                                   []string
	Queues                                                    string
	StrictPriority, UploadPreviews, AllowPrivate              bool
	DepthFlag                                                 string
	Depth, MaxDepth                                           int // Depth 0: auto
	PollInterval, StallTimeout, ShutdownGrace, HealthInterval time.Duration
	Retention                                                 time.Duration
	MetricsAddr, OutputPrefix, CPUProfile                     string
	seal                                                      sealOptions
	webhooks                                                  webhookOptions
	log                                                       logOptions

	queues map[string]int
	nodes  []worker.NodeConfig
}

func (o *workerOptions) Validate() error {
	if err := required("redis", "COMFYQ_REDIS_URL", o.RedisURL); err != nil {
		return err
	}
	if err := required("storage", "COMFYQ_STORAGE_URL", o.StorageURL); err != nil {
		return err
	}
	if err := o.seal.Validate(); err != nil {
		return err
	}
	o.Nodes, o.Headers = nonEmpty(o.Nodes), nonEmpty(o.Headers)
	if len(o.Nodes) == 0 {
		return usagef("give at least one --comfy http://host:8188 (or set COMFYQ_COMFY_URLS)")
	}
	depth, err := parseDepth(o.DepthFlag)
	if err != nil {
		return err
	}
	o.Depth = depth
	if o.MaxDepth < 1 {
		return usagef("--max-depth %d: want 1 or more", o.MaxDepth)
	}
	qs, err := parseQueues(o.Queues)
	if err != nil {
		return err
	}
	o.queues = qs
	if o.nodes, err = nodeConfigs(o.Nodes, o.Headers); err != nil {
		return err
	}
	if err := o.webhooks.Validate(); err != nil {
		return err
	}
	return o.log.Validate()
}

// parseDepth reads --depth: "auto" (0; also an empty value) or a number of 1 or more.
func parseDepth(v string) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" || strings.EqualFold(v, "auto") {
		return 0, nil
	}
	d, err := strconv.Atoi(v)
	if err != nil || d < 1 {
		return 0, usagef("--depth %s: want auto or a number of 1 or more (from --depth or COMFYQ_DEPTH)", v)
	}
	return d, nil
}

// nodeConfigs reads --comfy [NAME=]URL and --comfy-header [NODE=]Name: value (for
// every node, or the named one).
func nodeConfigs(nodes, headers []string) ([]worker.NodeConfig, error) {
	var ncs []worker.NodeConfig
	for _, n := range nodes {
		nc := worker.NodeConfig{URL: n, Header: http.Header{}}
		if name, u, ok := strings.Cut(n, "="); ok && !strings.Contains(name, "/") {
			nc.Name, nc.URL = name, u
		}
		ncs = append(ncs, nc)
	}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return nil, usagef("--comfy-header %q: want 'Name: value' or 'NODE=Name: value'", h)
		}
		node := ""
		if n, name, ok := strings.Cut(k, "="); ok {
			node, k = strings.TrimSpace(n), name
		}
		matched := false
		for i := range ncs {
			if node == "" || ncs[i].Name == node {
				ncs[i].Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
				matched = true
			}
		}
		if !matched {
			return nil, usagef("--comfy-header %q: no node is named %q (name nodes with --comfy NAME=URL)", h, node)
		}
	}
	return ncs, nil
}

func (o *workerOptions) Run(ctx context.Context) error {
	log := o.log.logger(o.Err)
	depth := o.Depth
	if depth == 0 {
		depth = o.MaxDepth
	}
	rdb, err := producer.OpenRedisPool(o.RedisURL, worker.RedisConns(len(o.nodes), depth))
	if err != nil {
		return err
	}
	defer rdb.Close()
	store, err := storage.Open(ctx, o.StorageURL)
	if err != nil {
		return err
	}
	notifier, runWebhooks, err := o.webhooks.open(rdb, o.AllowPrivate, log)
	if err != nil {
		return err
	}
	w, err := worker.New(worker.Config{
		Redis: rdb, Storage: store, Nodes: o.nodes, Queues: o.queues, StrictPriority: o.StrictPriority,
		Depth: o.Depth, MaxDepth: o.MaxDepth, PollInterval: o.PollInterval, Retention: o.Retention, StallTimeout: o.StallTimeout,
		ShutdownGrace: o.ShutdownGrace, HealthInterval: o.HealthInterval,
		UploadPreviews: o.UploadPreviews, OutputPrefix: o.OutputPrefix, RetryOn: nonEmpty(o.RetryOn),
		Inputs:   worker.InputPolicy{AllowPrivate: o.AllowPrivate},
		Notifier: notifier,
		SealKey:  o.seal.key,
		Logger:   log,
	})
	if err != nil {
		return err
	}
	if o.MetricsAddr != "" {
		stop, err := serveMetrics(ctx, o.MetricsAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	if o.CPUProfile != "" {
		stop, err := startCPUProfile(o.CPUProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	log.Info("worker starting", "nodes", len(o.nodes), "queues", o.Queues, "depth", o.DepthFlag, "max_depth", o.MaxDepth, "storage", store.String())
	return withWebhooks(ctx, runWebhooks, func() error { return w.Run(ctx, secondSignal(ctx)) })
}

// secondSignal returns a channel closed when a signal arrives after ctx ended (the
// first signal), for a forced stop.
func secondSignal(ctx context.Context) <-chan struct{} {
	force := make(chan struct{})
	go func() {
		<-ctx.Done()
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		close(force)
	}()
	return force
}

func parseQueues(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, pr, ok := strings.Cut(part, "=")
		p := 1
		if ok {
			var err error
			if p, err = strconv.Atoi(pr); err != nil || p <= 0 {
				return nil, usagef("--queues %q: priority of %q must be a positive integer", s, name)
			}
		}
		out[name] = p
	}
	if len(out) == 0 {
		return nil, usagef("--queues is empty")
	}
	return out, nil
}

// serveMetrics serves /metrics (comfyq's and Go's collectors) and /healthz.
func serveMetrics(ctx context.Context, addr string, log *slog.Logger) (func(), error) {
	reg := prometheus.NewRegistry()
	if err := metrics.Register(reg); err != nil {
		return nil, err
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n")) // a failed write means the prober went away: nothing to do
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("metrics server: shutdown", "err", err)
		}
	}, nil
}
