package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/api/apiclient"
	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	_ "github.com/comfyq/comfyq/storage/file"
	_ "github.com/comfyq/comfyq/storage/s3"
)

func init() {
	register(&command{
		name:    "api",
		summary: "serve the HTTP API (jobs, templates, SSE, OpenAPI, dashboard, metrics)",
		usage:   "--redis URL --storage URL [--listen 127.0.0.1:8080] [--api-keys KEY] [--admin-keys KEY] [--no-auth] …",
		help: `Serves the comfyq HTTP API: POST /v1/jobs, GET /v1/jobs/{id} (and its Server-Sent
Events at /events), templates at /v1/templates, /openapi.json and a reference page at
/docs, the asynqmon dashboard at /monitoring/ (admin key; read-only unless
--monitoring-writable), /metrics, /healthz and /readyz.

--listen defaults to 127.0.0.1:8080, reachable from this machine only. Listening on
0.0.0.0:8080 (or :8080) exposes the API on every network interface: do that behind a
TLS-terminating proxy, and set --public-url to the address clients use.

Clients send "Authorization: Bearer KEY" with a key of --api-keys; --admin-keys also
manage templates and open the dashboard (a browser asks for it: any user name, the key
as password). Keys are at least 16 characters (openssl rand -hex 24). The server
refuses to start without keys unless --no-auth is given.

--object-info (a saved object_info JSON file, or a ComfyUI node's URL) lets the API
convert UI-format workflows ("Save" in ComfyUI) and type template parameters.`,
		flags: apiFlags,
	})
}

func apiFlags(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	redisURL := envString(fs, "redis", "COMFYQ_REDIS_URL", "", "Redis URL (redis://, rediss://, redis-sentinel://)")
	storageURL := envString(fs, "storage", "COMFYQ_STORAGE_URL", "", "output storage: s3://bucket/prefix?endpoint=…&region=…&path_style=true or file:///dir")
	listen := envString(fs, "listen", "COMFYQ_LISTEN", "127.0.0.1:8080", "address to listen on (0.0.0.0:PORT exposes the API on every interface)")
	apiKeys := envList(fs, "api-keys", "COMFYQ_API_KEYS", "API key for clients")
	adminKeys := envList(fs, "admin-keys", "COMFYQ_ADMIN_KEYS", "admin key: templates and the dashboard")
	noAuth := envBool(fs, "no-auth", "COMFYQ_NO_AUTH", false, "serve without any authentication (development only)")
	objectInfo := envString(fs, "object-info", "COMFYQ_OBJECT_INFO", "", "object_info JSON file or ComfyUI URL, to convert UI-format workflows and type template parameters")
	publicURL := envString(fs, "public-url", "COMFYQ_PUBLIC_URL", "", "external base URL of the API for status_url, events_url and file URLs (default: from each request)")
	cors := envList(fs, "cors-origin", "COMFYQ_CORS_ORIGINS", "browser origin allowed to call the API (* for any; default none)")
	writable := envBool(fs, "monitoring-writable", "COMFYQ_MONITORING_WRITABLE", false, "let the dashboard delete, run and pause tasks and queues")
	allowPrivate := envBool(fs, "allow-private-urls", "COMFYQ_ALLOW_PRIVATE_URLS", false, "accept input and webhook URLs on private and loopback addresses")
	publicMetrics := envBool(fs, "public-metrics", "COMFYQ_PUBLIC_METRICS", false, "serve /metrics without a key")
	maxBody := envInt(fs, "max-body", "COMFYQ_MAX_BODY", api.DefaultMaxBodyBytes, "largest request body in bytes")
	maxImage := envInt(fs, "max-image", "COMFYQ_MAX_IMAGE", api.DefaultMaxImageBytes, "largest inline (base64) image in bytes, decoded")
	urlTTL := envDuration(fs, "url-ttl", "COMFYQ_URL_TTL", api.DefaultURLTTL, "lifetime of presigned output URLs")
	retention := envDuration(fs, "retention", "COMFYQ_RETENTION", jobstore.DefaultRetention, "how long job records are kept")
	wh := addWebhookFlags(fs)
	logger := logFlags(fs)
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected arguments %q", args)
		}
		if err := required("redis", "COMFYQ_REDIS_URL", *redisURL); err != nil {
			return err
		}
		if err := required("storage", "COMFYQ_STORAGE_URL", *storageURL); err != nil {
			return err
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
		dispatcher, runWebhooks, err := wh.open(rdb, *allowPrivate, log)
		if err != nil {
			return err
		}
		cfg := api.Config{
			Webhooks: dispatcher,
			Redis:    rdb, Storage: store,
			APIKeys: apiKeys.values, AdminKeys: adminKeys.values, NoAuth: *noAuth, PublicMetrics: *publicMetrics,
			AllowPrivateURLs: *allowPrivate, PublicURL: *publicURL, CORSOrigins: cors.values, MonitoringWritable: *writable,
			MaxBodyBytes: int64(*maxBody), MaxImageBytes: int64(*maxImage), URLTTL: *urlTTL, Retention: *retention,
			Version: version, Logger: log,
		}
		if *objectInfo != "" {
			cfg.ObjectInfo = cachedObjectInfo(*objectInfo)
			// A file must be readable now; a node may come up later.
			octx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := cfg.ObjectInfo(octx)
			cancel()
			switch {
			case err != nil && !isURL(*objectInfo):
				return fmt.Errorf("--object-info %s: %w", *objectInfo, err)
			case err != nil:
				log.Warn("object_info unavailable for now; UI-format workflows fail until the node answers", "url", *objectInfo, "err", err)
			}
		} else {
			log.Info("no --object-info: UI-format workflows are refused and template parameters are typed from workflow values")
		}
		srv, err := api.New(cfg)
		if err != nil {
			return err
		}
		return withWebhooks(ctx, runWebhooks, func() error { return srv.Run(ctx, *listen) })
	}
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// cachedObjectInfo reads object_info from a file once, or from a ComfyUI node at most
// every ten minutes.
func cachedObjectInfo(src string) func(ctx context.Context) (comfy.ObjectInfo, error) {
	ttl := 10 * time.Minute
	if !isURL(src) {
		ttl = 365 * 24 * time.Hour
	}
	return api.CacheObjectInfo(objectInfoSource(src), ttl)
}

// apiFlagsFor adds --api and --api-key to a command that also works on Redis.
func apiClientFlags(fs *flag.FlagSet, keyHelp string) (apiURL, apiKey *string) {
	apiURL = envString(fs, "api", "COMFYQ_API_URL", "", "comfyq API server URL, used instead of --redis")
	apiKey = envString(fs, "api-key", "COMFYQ_API_KEY", "", keyHelp)
	return apiURL, apiKey
}

// openJobs connects to an API server when apiURL is set, else to Redis.
func openJobs(apiURL, apiKey, redisURL string, cfg producer.Config) (job.Client, error) {
	if apiURL != "" {
		return apiclient.New(apiURL, apiKey, nil)
	}
	if redisURL == "" {
		return nil, usagef("give --redis URL (or COMFYQ_REDIS_URL), or --api URL (or COMFYQ_API_URL)")
	}
	cfg.RedisURL = redisURL
	return producer.New(cfg)
}

// describeAPIError renders an API error other than a refused submission.
func describeAPIError(err error) error {
	var ae *apiclient.APIError
	if errors.As(err, &ae) && (ae.Status == 401 || ae.Status == 403) {
		return fmt.Errorf("%s: %s (check --api-key or COMFYQ_API_KEY)", ae.Code, ae.Message)
	}
	return err
}
