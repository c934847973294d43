package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/validate"
	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/internal/netguard"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/keystore"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/quota"
	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/templatestore"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes      = 32 << 20
	DefaultMaxImageBytes     = 20 << 20
	DefaultURLTTL            = time.Hour
	DefaultHeartbeat         = 15 * time.Second
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultMetricsScanLimit  = 10000
	DefaultMetricsCacheFor   = 10 * time.Second
	minKeyLen                = 16
	defaultReadHeaderTimeout = 10 * time.Second
)

// Config configures a Server. Redis and Storage are required, and API keys unless NoAuth.
type Config struct {
	// Redis holds the jobs, the templates and asynq's queues. Required. The Server does
	// not close it.
	Redis redis.UniversalClient
	// Storage is where the workers put the outputs; the Server hands out its URLs
	// (presigned on S3) and, for a store without URLs (a file store without base_url),
	// serves the objects itself at /v1/files/{key}. Required.
	Storage storage.Store
	// ObjectInfo returns a ComfyUI node's object_info, to convert UI-format workflows and
	// type template parameters. Optional: without it UI-format workflows are refused and
	// parameter types come from the workflow's values. Wrap a slow source with
	// CacheObjectInfo.
	ObjectInfo func(ctx context.Context) (comfy.ObjectInfo, error)
	// IgnoreNodeObjectInfo validates submissions against ObjectInfo only. By default,
	// once every healthy node's worker has published its node's object_info (package
	// nodeinfo), submissions are validated against those, model names included, and
	// ObjectInfo is the fallback.
	IgnoreNodeObjectInfo bool
	// Templates is the template store. Default: a templatestore.Store on Redis using
	// ObjectInfo.
	Templates *templatestore.Store

	// APIKeys are the keys clients present as "Authorization: Bearer KEY" (user role:
	// jobs, reading templates, files). Each is at least 16 characters.
	APIKeys []string
	// AdminKeys additionally allow managing templates and the /monitoring/ dashboard.
	AdminKeys []string
	// NoAuth serves every route without any key. New refuses a Config without keys
	// unless NoAuth is set; the Server logs a warning at start.
	NoAuth bool
	// PublicMetrics serves /metrics without a key (default: any valid key is needed).
	PublicMetrics bool

	// PublicURL is the server's external base URL ("https://comfyq.example.com"), used
	// for status_url, events_url, Location and served file URLs. Default: none, and
	// those links are relative ("/v1/jobs/ID"); the request's Host header is never
	// used.
	PublicURL string
	// CORSOrigins are the browser origins allowed to call the API ("*" for any).
	// Default: none, and no CORS headers are sent.
	CORSOrigins []string
	// AllowPrivateURLs accepts input and webhook URLs naming private and loopback
	// addresses and this machine's own (COMFYQ_ALLOW_PRIVATE_URLS). Default false: such submissions are refused
	// with a 400, as the worker and the webhook task would refuse to reach them.
	AllowPrivateURLs bool
	// MaxBodyBytes bounds a request body (default 32 MiB).
	MaxBodyBytes int64
	// MaxImageBytes bounds one base64 image of a submission, decoded (default 20 MiB).
	MaxImageBytes int64
	// Limits bound a submission's workflow and input files: nodes (default 5000),
	// nesting of input values (32), bytes of one string value (256 KiB), input files
	// (32). Over a limit: 413 too_large (nesting: 400 invalid_request). See
	// validate.Limits.
	Limits validate.Limits
	// URLTTL is the lifetime of the presigned output URLs of a job response (default 1h).
	// A presigned URL is reused for a quarter of it: every URL handed out is valid for at
	// least three quarters of URLTTL.
	URLTTL time.Duration
	// Heartbeat is the interval of the comment lines that keep an idle event stream
	// open through proxies (default 15s).
	Heartbeat time.Duration
	// MonitoringWritable lets the dashboard change tasks and queues (delete, run,
	// pause). Default false: read-only.
	MonitoringWritable bool
	// ShutdownTimeout bounds Run's graceful shutdown (default 10s).
	ShutdownTimeout time.Duration
	// NoFairShare enqueues every job straight into its queue in arrival order, instead
	// of serving the tenants of a queue in turn (producer.Config.NoFairShare).
	NoFairShare bool
	// Retention is how long job records are kept (default jobstore.DefaultRetention).
	Retention time.Duration

	// Registry receives the API's metrics and is served at /metrics. Default: a new
	// registry with the Go and process collectors.
	Registry *prometheus.Registry
	// MetricsScanLimit bounds how many of the newest job records the comfyq_jobs gauge
	// reads per scrape (default 10000).
	MetricsScanLimit int
	// MetricsCacheFor is how long the gauges read from Redis are reused between scrapes
	// (default 10s).
	MetricsCacheFor time.Duration

	// Version is reported by /healthz and the OpenAPI document (default "dev").
	Version string
	// Webhooks enqueues webhook events (cancel of a queued job) and replays a job's
	// deliveries (POST /v1/jobs/{id}/webhooks/replay). Optional: without it the replay
	// route answers 501. delivery.Dispatcher implements it.
	Webhooks Webhooks
	// SealKey encrypts the partner-node API keys of Comfy API v2 submissions
	// (extra_data.api_key_comfy_org) in the job's task payload; the workers hold the same
	// key (COMFYQ_SEAL_KEY, 32 bytes). Without it such submissions are refused.
	SealKey []byte
	// MaxQueueDepth bounds the default queue for POST /api/v2/jobs: with this many jobs
	// waiting, it answers 429 queue_full with Retry-After (default 10000; negative: no
	// bound).
	MaxQueueDepth int
	// MaxAssetBytes bounds one asset uploaded to POST /api/v2/assets (default 512 MiB).
	MaxAssetBytes int64

	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Server is the comfyq HTTP API. Its Handler serves every route; Run serves it on an
// address until the context ends.
type Server struct {
	cfg         Config
	log         *slog.Logger
	rdb         redis.UniversalClient
	store       *jobstore.Store
	producer    *producer.Client
	templates   *templatestore.Store
	storage     storage.Store
	inspector   *asynq.Inspector
	registry    *prometheus.Registry
	auth        *authenticator
	hub         *jobstore.Hub
	publicURL   *url.URL
	handler     http.Handler
	metricsHTTP http.Handler
	urls        *urlCache
	urlPolicy   netguard.Policy
	keys        *keystore.Store
	limiter     *quota.Limiter
	inFlight    *quota.InFlight
	routes      []route
	v2          v2State // the Comfy API v2 (comfyv2*.go)

	closing   chan struct{} // closed when the server starts shutting down
	closeOnce sync.Once
	sweeping  chan struct{} // closed when the fair-share sweep has stopped
}

// New checks the configuration and builds a Server. It does no network I/O; the live
// event subscription starts in the background and the Server must be closed with
// Close (Run does it).
func New(cfg Config) (*Server, error) {
	if cfg.Redis == nil {
		return nil, errors.New("api: no Redis client: set --redis or COMFYQ_REDIS_URL")
	}
	if cfg.Storage == nil {
		return nil, errors.New("api: no storage: set --storage or COMFYQ_STORAGE_URL (s3://bucket?... or file:///dir)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	keys := keystore.New(cfg.Redis)
	auth, err := newAuthenticator(cfg.APIKeys, cfg.AdminKeys, cfg.NoAuth, keys)
	if err != nil {
		return nil, err
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxImageBytes <= 0 {
		cfg.MaxImageBytes = DefaultMaxImageBytes
	}
	if cfg.URLTTL <= 0 {
		cfg.URLTTL = DefaultURLTTL
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.MetricsScanLimit <= 0 {
		cfg.MetricsScanLimit = DefaultMetricsScanLimit
	}
	if cfg.MetricsCacheFor <= 0 {
		cfg.MetricsCacheFor = DefaultMetricsCacheFor
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	v2, err := newV2State(&cfg)
	if err != nil {
		return nil, err
	}
	var public *url.URL
	if cfg.PublicURL != "" {
		u, parseErr := url.Parse(strings.TrimRight(cfg.PublicURL, "/"))
		if parseErr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("api: public URL %q: want http(s)://host[:port][/path]", cfg.PublicURL)
		}
		public = u
	}
	origins := make([]string, 0, len(cfg.CORSOrigins))
	for _, o := range cfg.CORSOrigins {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		origins = append(origins, o)
		if o == "*" {
			continue
		}
		u, parseErr := url.Parse(o)
		if parseErr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("api: CORS origin %q: want * or scheme://host[:port]", o)
		}
	}
	cfg.CORSOrigins = origins
	tmpl := cfg.Templates
	if tmpl == nil {
		tmpl = templatestore.New(cfg.Redis, templatestore.Config{ObjectInfo: cfg.ObjectInfo})
	}
	// One pattern subscription serves this process: the producer's Watch, the event
	// streams and the finished-job metrics. The hub starts now, the Server a little
	// later: terminal events seen meanwhile are not counted, as before the hub existed.
	var self atomic.Pointer[Server]
	hub := jobstore.NewHub(cfg.Redis, jobstore.HubConfig{Logger: cfg.Logger, OnTerminal: func(j *job.Job) {
		if s := self.Load(); s != nil {
			s.observeTerminal(j)
		}
	}})
	fail := func(err error) (*Server, error) {
		hub.Close()
		return nil, err
	}
	pcfg := producer.Config{
		Hub:                  hub,
		Redis:                cfg.Redis,
		Retention:            cfg.Retention,
		ObjectInfo:           cfg.ObjectInfo,
		IgnoreNodeObjectInfo: cfg.IgnoreNodeObjectInfo,
		Limits:               cfg.Limits,
		Templates:            tmpl,
		Logger:               cfg.Logger,

		NoFairShare: cfg.NoFairShare,
	}
	if cfg.Webhooks != nil {
		pcfg.Notifier = cfg.Webhooks
	}
	prod, err := producer.New(pcfg)
	if err != nil {
		return fail(err)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		rdb:       cfg.Redis,
		store:     prod.Store(),
		producer:  prod,
		templates: tmpl,
		storage:   cfg.Storage,
		inspector: asynq.NewInspectorFromRedisClient(cfg.Redis),
		registry:  reg,
		auth:      auth,
		publicURL: public,
		hub:       hub,
		closing:   make(chan struct{}),
		urls:      newURLCache(cfg.URLTTL / 4),
		urlPolicy: netguard.Policy{AllowPrivate: cfg.AllowPrivateURLs},
		keys:      keys,
		limiter:   quota.NewLimiter(cfg.Redis),
		inFlight:  quota.NewInFlight(cfg.Redis, jobstore.KeyPrefix+"job:"),
		v2:        v2,
	}
	if err := metrics.Register(reg); err != nil {
		return fail(fmt.Errorf("api: register metrics: %w", err))
	}
	if err := reg.Register(newRedisCollector(s)); err != nil {
		return fail(fmt.Errorf("api: register metrics: %w", err))
	}
	s.metricsHTTP = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	self.Store(s)
	s.sweeping = make(chan struct{})
	if gate := prod.FairShare(); gate != nil {
		ctx, stop := context.WithCancel(context.Background())
		go func() { <-s.closing; stop() }()
		go func() { defer close(s.sweeping); gate.Sweep(ctx, 0) }()
	} else {
		close(s.sweeping)
	}
	s.routes = s.buildRoutes()
	s.handler = s.buildHandler()
	if cfg.NoAuth {
		s.log.Warn("AUTHENTICATION IS OFF: every route, template management and the dashboard included, is open to anyone who can reach this server")
	}
	return s, nil
}

// Handler returns the HTTP handler serving every route.
func (s *Server) Handler() http.Handler { return s.handler }

// Close ends the event streams and stops the live event subscription. It does not close
// Config.Redis. Calling it twice is safe.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.sweeping
		s.hub.Close()
	})
	return nil
}

// Run serves the API on addr ("127.0.0.1:8080") until ctx ends, then shuts down
// gracefully: event streams end (clients reconnect to another replica), requests in
// flight get Config.ShutdownTimeout to finish. It closes the Server.
func (s *Server) Run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("api: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener of the caller's; it closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	defer s.Close()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: defaultReadHeaderTimeout,
		// Bodies are bounded by MaxBodyBytes; a minute is plenty to send 32 MiB.
		ReadTimeout: time.Minute,
		// Event streams clear their own write deadline.
		WriteTimeout:   time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.log.Info("api listening", "addr", ln.Addr().String(), "auth", !s.cfg.NoAuth, "storage", s.storage.String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("api shutting down")
	s.Close() // end event streams first, so Shutdown does not wait for them
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("api: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: serve: %w", err)
	}
	return nil
}

// baseURL is the external base URL for links in responses: Config.PublicURL, or ""
// (links relative to the API's root) when none is set. The request's Host header is
// never used: it is whatever the client wrote ("Host: evil.example"), and a link built
// from it would point a reader of the answer, a log or a webhook elsewhere. The
// request is taken for the callers' convenience only.
func (s *Server) baseURL(_ *http.Request) string {
	if s.publicURL != nil {
		return s.publicURL.String()
	}
	return ""
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
