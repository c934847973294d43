package main

import (
	"context"
	"flag"
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

	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	_ "github.com/comfyq/comfyq/storage/file"
	_ "github.com/comfyq/comfyq/storage/s3"
	"github.com/comfyq/comfyq/worker"
)

func init() {
	register(&command{
		name:    "worker",
		summary: "run jobs on one or more ComfyUI nodes",
		usage:   "--redis URL --storage URL --comfy http://host:8188 [--comfy …]",
		help: `Attaches to ComfyUI nodes, pulls jobs from Redis, submits each prompt to its node,
follows it over the WebSocket, streams the outputs into storage and writes the job's
status back. Each node holds --depth jobs at once (one executing, the rest waiting in
the node's own queue) so the GPU never idles between jobs.

--comfy takes a URL, or NAME=URL to name the node in logs and job records.
SIGTERM or Ctrl-C drains: no new jobs; jobs on a GPU get --shutdown-grace to finish;
jobs waiting in a node's queue are handed back. A second signal stops at once (running
jobs are handed back and re-attached by the next worker).`,
		flags: workerFlags,
	})
}

func workerFlags(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	redisURL := envString(fs, "redis", "COMFYQ_REDIS_URL", "", "Redis URL (redis://, rediss://, redis-sentinel://)")
	storageURL := envString(fs, "storage", "COMFYQ_STORAGE_URL", "", "output storage: s3://bucket/prefix?endpoint=…&region=…&path_style=true or file:///dir")
	nodes := envList(fs, "comfy", "COMFYQ_COMFY_URLS", "ComfyUI node: URL or NAME=URL")
	headers := envList(fs, "comfy-header", "COMFYQ_COMFY_HEADERS", "header for node requests (auth proxies): 'Name: value' for every node, 'NODE=Name: value' for one")
	queues := envString(fs, "queues", "COMFYQ_QUEUES", "default=1", "queues and priorities, e.g. high=6,default=3")
	strict := envBool(fs, "strict-priority", "COMFYQ_STRICT_PRIORITY", false, "always drain higher-priority queues first")
	depth := envInt(fs, "depth", "COMFYQ_DEPTH", 2, "jobs held per node (pipelining); 1 turns pipelining off")
	poll := envDuration(fs, "poll-interval", "COMFYQ_POLL_INTERVAL", 100*time.Millisecond, "how often an idle worker checks Redis for new jobs")
	stall := envDuration(fs, "stall-timeout", "COMFYQ_STALL_TIMEOUT", 30*time.Second, "check /history and /queue after this long without an event")
	grace := envDuration(fs, "shutdown-grace", "COMFYQ_SHUTDOWN_GRACE", 10*time.Minute, "how long a drain waits for jobs running on a GPU")
	health := envDuration(fs, "health-interval", "COMFYQ_HEALTH_INTERVAL", 2*time.Second, "how often each node's /system_stats is probed")
	previews := envBool(fs, "upload-previews", "COMFYQ_UPLOAD_PREVIEWS", false, "also copy temporary preview outputs to storage")
	allowPrivate := envBool(fs, "allow-private-urls", "COMFYQ_ALLOW_PRIVATE_URLS", false, "let input URLs reach private and loopback addresses")
	retention := envDuration(fs, "retention", "COMFYQ_RETENTION", jobstore.DefaultRetention, "how long job records are kept after their last change (give the API the same)")
	metricsAddr := envString(fs, "metrics-listen", "COMFYQ_METRICS_LISTEN", "", "serve Prometheus /metrics and /healthz on this address (e.g. :9091; off when empty)")
	prefix := envString(fs, "output-prefix", "COMFYQ_OUTPUT_PREFIX", "jobs", "first segment of output keys")
	wh := addWebhookFlags(fs)
	logger := logFlags(fs)
	return func(ctx context.Context, args []string) error {
		if err := required("redis", "COMFYQ_REDIS_URL", *redisURL); err != nil {
			return err
		}
		if err := required("storage", "COMFYQ_STORAGE_URL", *storageURL); err != nil {
			return err
		}
		if len(nodes.values) == 0 {
			return usagef("give at least one --comfy http://host:8188 (or set COMFYQ_COMFY_URLS)")
		}
		qs, err := parseQueues(*queues)
		if err != nil {
			return err
		}
		var ncs []worker.NodeConfig
		for _, n := range nodes.values {
			nc := worker.NodeConfig{URL: n, Header: http.Header{}}
			if name, u, ok := strings.Cut(n, "="); ok && !strings.Contains(name, "/") {
				nc.Name, nc.URL = name, u
			}
			ncs = append(ncs, nc)
		}
		// --comfy-header [NODE=]Name: value — for every node, or the named one.
		for _, h := range headers.values {
			k, v, ok := strings.Cut(h, ":")
			if !ok {
				return usagef("--comfy-header %q: want 'Name: value' or 'NODE=Name: value'", h)
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
				return usagef("--comfy-header %q: no node is named %q (name nodes with --comfy NAME=URL)", h, node)
			}
		}
		log := logger()
		rdb, err := producer.OpenRedis(*redisURL)
		if err != nil {
			return err
		}
		defer rdb.Close()
		store, err := storage.Open(ctx, *storageURL)
		if err != nil {
			return err
		}
		notifier, runWebhooks, err := wh.open(rdb, *allowPrivate, log)
		if err != nil {
			return err
		}
		w, err := worker.New(worker.Config{
			Redis: rdb, Storage: store, Nodes: ncs, Queues: qs, StrictPriority: *strict,
			Depth: *depth, PollInterval: *poll, Retention: *retention, StallTimeout: *stall, ShutdownGrace: *grace, HealthInterval: *health,
			UploadPreviews: *previews, OutputPrefix: *prefix,
			Inputs:   worker.InputPolicy{AllowPrivate: *allowPrivate},
			Notifier: notifier,
			Logger:   log,
		})
		if err != nil {
			return err
		}
		if *metricsAddr != "" {
			stop, err := serveMetrics(ctx, *metricsAddr, log)
			if err != nil {
				return err
			}
			defer stop()
		}
		log.Info("worker starting", "nodes", len(ncs), "queues", *queues, "depth", *depth, "storage", store.String())
		return withWebhooks(ctx, runWebhooks, func() error { return w.Run(ctx, secondSignal(ctx)) })
	}
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
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}
