package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/api/apiclient"
	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/validate"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	_ "github.com/comfyq/comfyq/storage/file"
	_ "github.com/comfyq/comfyq/storage/s3"
)

func apiCommand(b base) *cli.Command {
	o := &apiOptions{base: b}
	return &cli.Command{
		Name:      "api",
		Usage:     "serve the HTTP API (jobs, templates, SSE, OpenAPI, dashboard, metrics)",
		ArgsUsage: "--redis URL --storage URL [--listen 127.0.0.1:8080] [--api-keys KEY] [--admin-keys KEY] [--no-auth] …",
		Description: `Serves the comfyq HTTP API: POST /v1/jobs, GET /v1/jobs/{id} (and its Server-Sent
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

Every key belongs to a tenant and a user key sees only its tenant's jobs. A key given
here is its own tenant ("key-" and 8 hex digits of its SHA-256), or the tenant a
TENANT: prefix names: --api-keys acme:KEY1,acme:KEY2. Keys made with 'comfyq keys
create' (kept hashed in Redis, with queues and quotas) work beside these.

--object-info (a saved object_info JSON file, or a ComfyUI node's URL) lets the API
convert UI-format workflows ("Save" in ComfyUI) and type template parameters.

Example:

  comfyq api --redis redis://127.0.0.1:6379/0 --storage s3://outputs/comfy?region=eu-west-1 \
    --api-keys "$(openssl rand -hex 24)" --admin-keys "$ADMIN_KEY" --object-info http://gpu-1:8188`,
		Flags: flagList([]cli.Flag{
			stringFlag(&o.RedisURL, "redis", "COMFYQ_REDIS_URL", "", "Redis URL (redis://, rediss://, redis-sentinel://)"),
			stringFlag(&o.StorageURL, "storage", "COMFYQ_STORAGE_URL", "", "output storage: s3://bucket/prefix?endpoint=…&region=…&path_style=true or file:///dir"),
			stringFlag(&o.Listen, "listen", "COMFYQ_LISTEN", "127.0.0.1:8080", "address to listen on (0.0.0.0:PORT exposes the API on every interface)"),
			listFlag(&o.APIKeys, "api-keys", "COMFYQ_API_KEYS", "API key for clients"),
			listFlag(&o.AdminKeys, "admin-keys", "COMFYQ_ADMIN_KEYS", "admin key: templates and the dashboard"),
			boolFlag(&o.NoAuth, "no-auth", "COMFYQ_NO_AUTH", false, "serve without any authentication (development only)"),
			stringFlag(&o.ObjectInfo, "object-info", "COMFYQ_OBJECT_INFO", "", "object_info JSON file or ComfyUI URL, to convert UI-format workflows and type template parameters"),
			stringFlag(&o.PublicURL, "public-url", "COMFYQ_PUBLIC_URL", "", "external base URL of the API for status_url, events_url, Location and file URLs (default: links relative to the API's root; the request's Host is never used)"),
			listFlag(&o.CORSOrigins, "cors-origin", "COMFYQ_CORS_ORIGINS", "browser origin allowed to call the API (* for any; default none)"),
			boolFlag(&o.MonitoringWritable, "monitoring-writable", "COMFYQ_MONITORING_WRITABLE", false, "let the dashboard delete, run and pause tasks and queues"),
			boolFlag(&o.AllowPrivate, "allow-private-urls", "COMFYQ_ALLOW_PRIVATE_URLS", false, "accept input and webhook URLs on private and loopback addresses and this machine's own"),
			boolFlag(&o.PublicMetrics, "public-metrics", "COMFYQ_PUBLIC_METRICS", false, "serve /metrics without a key (it takes an admin key otherwise: its labels name every tenant)"),
			intFlag(&o.MaxBody, "max-body", "COMFYQ_MAX_BODY", api.DefaultMaxBodyBytes, "largest request body in bytes"),
			intFlag(&o.MaxImage, "max-image", "COMFYQ_MAX_IMAGE", api.DefaultMaxImageBytes, "largest inline (base64) image in bytes, decoded"),
			intFlag(&o.Limits.MaxNodes, "max-nodes", "COMFYQ_MAX_NODES", validate.DefaultMaxNodes, "most nodes in a workflow (-1: no limit)"),
			intFlag(&o.Limits.MaxDepth, "max-nesting", "COMFYQ_MAX_NESTING", validate.DefaultMaxDepth, "deepest nesting of arrays and objects in an input value (-1: no limit)"),
			intFlag(&o.Limits.MaxStringBytes, "max-string", "COMFYQ_MAX_STRING", validate.DefaultMaxStringBytes, "longest string input value in bytes (-1: no limit)"),
			intFlag(&o.Limits.MaxImages, "max-images", "COMFYQ_MAX_IMAGES", validate.DefaultMaxImages, "most input files in one submission (-1: no limit)"),
			durationFlag(&o.URLTTL, "url-ttl", "COMFYQ_URL_TTL", api.DefaultURLTTL, "lifetime of presigned output URLs"),
			durationFlag(&o.Retention, "retention", "COMFYQ_RETENTION", jobstore.DefaultRetention, "how long job records are kept"),
			intFlag(&o.MaxQueueDepth, "max-queue-depth", "COMFYQ_MAX_QUEUE_DEPTH", api.DefaultMaxQueueDepth, "jobs waiting in the default queue at which POST /api/v2/jobs answers 429 queue_full (negative: no bound)"),
			intFlag(&o.MaxAsset, "max-asset", "COMFYQ_MAX_ASSET", api.DefaultMaxAssetBytes, "largest asset uploaded to POST /api/v2/assets, in bytes"),
			o.seal.flag(),
		}, o.webhooks.flags(), o.log.flags()),
		Action: action(o, nil),
	}
}

// apiOptions are the flags of comfyq api.
type apiOptions struct {
	base
	RedisURL, StorageURL, Listen, ObjectInfo, PublicURL     string
	APIKeys, AdminKeys, CORSOrigins                         []string
	NoAuth, MonitoringWritable, AllowPrivate, PublicMetrics bool
	MaxBody, MaxImage                                       int
	Limits                                                  validate.Limits
	MaxQueueDepth, MaxAsset                                 int
	URLTTL, Retention                                       time.Duration
	seal                                                    sealOptions
	webhooks                                                webhookOptions
	log                                                     logOptions
}

func (o *apiOptions) Validate() error {
	if err := required("redis", "COMFYQ_REDIS_URL", o.RedisURL); err != nil {
		return err
	}
	if err := required("storage", "COMFYQ_STORAGE_URL", o.StorageURL); err != nil {
		return err
	}
	o.APIKeys, o.AdminKeys, o.CORSOrigins = nonEmpty(o.APIKeys), nonEmpty(o.AdminKeys), nonEmpty(o.CORSOrigins)
	if o.MaxBody <= 0 || o.MaxImage <= 0 {
		return usagef("--max-body and --max-image must be positive")
	}
	for _, l := range []struct {
		flag string
		v    int
	}{{"max-nodes", o.Limits.MaxNodes}, {"max-nesting", o.Limits.MaxDepth}, {"max-string", o.Limits.MaxStringBytes}, {"max-images", o.Limits.MaxImages}} {
		if l.v == 0 || l.v < -1 {
			return usagef("--%s must be positive, or -1 for no limit", l.flag)
		}
	}
	if o.MaxAsset <= 0 {
		return usagef("--max-asset must be positive")
	}
	if err := o.seal.Validate(); err != nil {
		return err
	}
	if err := o.webhooks.Validate(); err != nil {
		return err
	}
	return o.log.Validate()
}

func (o *apiOptions) Run(ctx context.Context) error {
	log := o.log.logger(o.Err)
	rdb, err := producer.OpenRedis(o.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store, err := storage.Open(ctx, o.StorageURL)
	if err != nil {
		return err
	}
	dispatcher, runWebhooks, err := o.webhooks.open(rdb, o.AllowPrivate, log)
	if err != nil {
		return err
	}
	cfg := api.Config{
		Webhooks: dispatcher,
		Redis:    rdb, Storage: store,
		APIKeys: o.APIKeys, AdminKeys: o.AdminKeys, NoAuth: o.NoAuth, PublicMetrics: o.PublicMetrics,
		AllowPrivateURLs: o.AllowPrivate, PublicURL: o.PublicURL, CORSOrigins: o.CORSOrigins, MonitoringWritable: o.MonitoringWritable,
		MaxBodyBytes: int64(o.MaxBody), MaxImageBytes: int64(o.MaxImage), Limits: o.Limits, URLTTL: o.URLTTL, Retention: o.Retention,
		Version: version, Logger: log,
		SealKey: o.seal.key, MaxQueueDepth: o.MaxQueueDepth, MaxAssetBytes: int64(o.MaxAsset),
	}
	if o.ObjectInfo != "" {
		cfg.ObjectInfo = cachedObjectInfo(o.ObjectInfo)
		// A file must be readable now; a node may come up later.
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = cfg.ObjectInfo(octx)
		cancel()
		switch {
		case err != nil && !isURL(o.ObjectInfo):
			return fmt.Errorf("--object-info %s: %w", o.ObjectInfo, err)
		case err != nil:
			log.Warn("object_info unavailable for now; UI-format workflows fail until the node answers", "url", o.ObjectInfo, "err", err)
		}
	} else {
		log.Info("no --object-info: UI-format workflows are refused and template parameters are typed from workflow values")
	}
	srv, err := api.New(cfg)
	if err != nil {
		return err
	}
	return withWebhooks(ctx, runWebhooks, func() error { return srv.Run(ctx, o.Listen) })
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

// apiClientFlags adds --api and --api-key to a command that also works on Redis.
func apiClientFlags(apiURL, apiKey *string, keyHelp string) []cli.Flag {
	return []cli.Flag{
		stringFlag(apiURL, "api", "COMFYQ_API_URL", "", "comfyq API server URL, used instead of --redis"),
		stringFlag(apiKey, "api-key", "COMFYQ_API_KEY", "", keyHelp),
	}
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
