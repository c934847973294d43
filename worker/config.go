package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/internal/netguard"
	"github.com/comfyq/comfyq/storage"
)

// NodeConfig names one ComfyUI node.
type NodeConfig struct {
	// URL is the node's base URL, e.g. http://gpu-1:8188 (https and a path prefix work).
	URL string
	// Name is used in logs, metrics and the Job JSON (default: the URL's host:port).
	Name string
	// Header is sent on every request and the WebSocket handshake (auth proxies).
	Header http.Header
	// ClientID is the ComfyUI client_id of the worker's prompts and WebSocket on this
	// node. ComfyUI sends a prompt's events to the socket of the client id that queued
	// it, so the id must outlive the process: a restarted worker then gets the events
	// of the prompts its predecessor queued. Default: derived from URL (the same in
	// every process attached to the node; run one worker per node).
	ClientID string
}

// stableClientID derives a node's client id from its URL, in the form of ComfyUI's own
// (uuid4().hex: 32 hex digits).
func stableClientID(nodeURL string) string {
	sum := sha256.Sum256([]byte("comfyq-worker:" + nodeURL))
	return hex.EncodeToString(sum[:16])
}

// Config configures a Worker.
type Config struct {
	// Redis is the Redis client for asynq and job records. Required.
	Redis redis.UniversalClient
	// Storage receives the outputs. Required.
	Storage storage.Store
	// Nodes are the ComfyUI nodes to attach to. At least one.
	Nodes []NodeConfig
	// Queues maps asynq queue names to priorities (default {"default": 1}).
	Queues map[string]int
	// StrictPriority drains higher-priority queues first (asynq's semantics).
	StrictPriority bool
	// Depth is the pipelining depth per node: how many jobs a node holds at once, one
	// executing, the others waiting in its queue or finishing (outputs, status). 0,
	// the default, is automatic (--depth auto): each node starts at 2 and keeps
	// 1 + ⌈(before + after) / execution⌉ of the times measured over its last 16 jobs
	// (see depth.go), at most MaxDepth. A number fixes it; 1 turns pipelining off.
	Depth int
	// MaxDepth bounds the automatic depth (default DefaultMaxDepth, 8). Ignored with
	// a fixed Depth.
	MaxDepth int
	// PollInterval is how often an idle worker checks Redis for new jobs (asynq's
	// TaskCheckInterval; default 100ms: a job waits at most that long for an idle node).
	PollInterval time.Duration
	// StallTimeout: with no event for a prompt for this long, the worker checks /history
	// and /queue instead of waiting (default 30s).
	StallTimeout time.Duration
	// HealthInterval is how often each node's /system_stats is probed (default 2s).
	HealthInterval time.Duration
	// DownAfter is how many failed probes in a row mark a node down (default 3).
	DownAfter int
	// ShutdownGrace is how long a drain waits for jobs running on a GPU (default 10m).
	ShutdownGrace time.Duration
	// ProgressInterval is the least time between two progress writes of a job
	// (default 200ms, at most 5 writes a second).
	ProgressInterval time.Duration
	// OutputPrefix is the first segment of output keys (default "jobs"):
	// <prefix>/<job id>/<node id>/<file name>.
	OutputPrefix string
	// UploadPreviews also copies temporary outputs (PreviewImage, type "temp").
	UploadPreviews bool
	// URLTTL is the lifetime of the output URLs written into the Job JSON (default 24h).
	URLTTL time.Duration
	// Inputs governs fetching input files given by URL (SSRF guard, size and time limits).
	// Default: no private or loopback addresses, 3 redirects, 100 MiB, 60s.
	Inputs InputPolicy
	// InputRetries is how many times fetching an input file is retried inside one
	// attempt after a transient failure (5xx, timeout, storage error) before the attempt
	// fails and is retried later (default 3). A permanent failure (4xx, forbidden URL,
	// too large, missing key) fails the job with invalid_input at once.
	InputRetries int
	// UploadRetries is how many times an output upload is retried inside one attempt
	// before the attempt fails with upload_failed (default 3).
	UploadRetries int
	// Retention is how long job records are kept after their last change (default
	// jobstore.DefaultRetention, 7 days); give the API and producers the same.
	Retention time.Duration
	// RetryOn lists exception types (exact, or the name after the last dot) after which
	// a failed execution is retried, beside the built-in ones (out of memory, CUDA and
	// device errors; see retryableExecution) and the job's own retry_on. Any other
	// execution error is deterministic: the job fails after one run. Default none.
	RetryOn []string
	// RetryBackoff is the delay before the second attempt of a failed job; each further
	// attempt waits twice as long, plus jitter, at most 2 minutes (default 2s).
	RetryBackoff time.Duration
	// Notifier receives job events for webhooks (optional).
	Notifier Notifier
	// SealKey opens the sealed extra_data of Comfy API v2 jobs (partner-node API keys;
	// COMFYQ_SEAL_KEY, the API servers' key). Without it such a job fails with
	// invalid_request instead of running without its key.
	SealKey []byte
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// InputPolicy governs fetching the input files of a job given by URL. Every address a
// URL resolves to is checked, on each redirect and at connect time.
type InputPolicy struct {
	// AllowPrivate lets URLs reach loopback, private, link-local and metadata addresses
	// and this machine's own (COMFYQ_ALLOW_PRIVATE_URLS). Default false.
	AllowPrivate bool
	// AllowedSchemes lists the URL schemes accepted (case-insensitive). Default http and
	// https.
	AllowedSchemes []string
	// MaxRedirects is how many redirects to follow, each checked like the first URL
	// (default 3; negative follows none).
	MaxRedirects int
	// MaxBytes bounds an input file, fetched or inline base64 (default 100 MiB).
	MaxBytes int64
	// Timeout bounds fetching one input, reading the body included (default 60s).
	Timeout time.Duration
}

func (p InputPolicy) guard() netguard.Policy {
	return netguard.Policy{AllowPrivate: p.AllowPrivate, AllowedSchemes: p.AllowedSchemes,
		MaxRedirects: max(p.MaxRedirects, 0), MaxBytes: p.MaxBytes, Timeout: p.Timeout}
}

func (c *Config) setDefaults() error {
	if c.Redis == nil {
		return errors.New("worker: no Redis client")
	}
	if c.Storage == nil {
		return errors.New("worker: no storage: set --storage or COMFYQ_STORAGE_URL (s3://bucket?... or file:///dir)")
	}
	if len(c.Nodes) == 0 {
		return errors.New("worker: no ComfyUI node: give --comfy http://host:8188")
	}
	seen := map[string]bool{}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		u, err := url.Parse(n.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("worker: node URL %q: want http(s)://host:port", n.URL)
		}
		n.URL = strings.TrimRight(n.URL, "/")
		if n.Name == "" {
			n.Name = u.Host
		}
		if n.ClientID == "" {
			n.ClientID = stableClientID(n.URL)
		}
		if seen[n.Name] {
			return fmt.Errorf("worker: two nodes are named %q; give each a distinct name", n.Name)
		}
		seen[n.Name] = true
	}
	if len(c.Queues) == 0 {
		c.Queues = map[string]int{"default": 1}
	}
	for q, p := range c.Queues {
		if p <= 0 {
			return fmt.Errorf("worker: queue %q: priority must be positive", q)
		}
	}
	if c.Depth < 0 {
		return fmt.Errorf("worker: depth %d: want 0 (automatic) or more", c.Depth)
	}
	if c.MaxDepth < 0 {
		return fmt.Errorf("worker: max depth %d: want 1 or more (0: the default, %d)", c.MaxDepth, DefaultMaxDepth)
	}
	if c.MaxDepth == 0 {
		c.MaxDepth = DefaultMaxDepth
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 100 * time.Millisecond
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 30 * time.Second
	}
	if c.HealthInterval <= 0 {
		c.HealthInterval = 2 * time.Second
	}
	if c.DownAfter <= 0 {
		c.DownAfter = 3
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 10 * time.Minute
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = 200 * time.Millisecond
	}
	if c.OutputPrefix == "" {
		c.OutputPrefix = "jobs"
	}
	if c.URLTTL <= 0 {
		c.URLTTL = 24 * time.Hour
	}
	if c.Inputs.MaxBytes <= 0 {
		c.Inputs.MaxBytes = 100 << 20
	}
	if c.Inputs.Timeout <= 0 {
		c.Inputs.Timeout = 60 * time.Second
	}
	if c.Inputs.MaxRedirects == 0 {
		c.Inputs.MaxRedirects = 3
	}
	if c.InputRetries <= 0 {
		c.InputRetries = 3
	}
	if c.UploadRetries <= 0 {
		c.UploadRetries = 3
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// RedisConns is how many Redis connections a worker with nodes nodes at up to
// depth jobs each (0: the automatic depth's default maximum) may use at once: per
// slot, the job's own write, the write that runs while its output downloads, its
// ownership heartbeat and asynq's completion of the task; per node, its asynq servers'
// housekeeping; and the worker's own. Open the worker's client with at least this pool
// (producer.OpenRedisPool): with fewer, a job's Redis commands queue for a connection
// whenever the slots of many nodes write at once.
func RedisConns(nodes, depth int) int {
	if depth <= 0 {
		depth = DefaultMaxDepth
	}
	return 16 + nodes*(4*depth+4)
}
