// Package api is comfyq's HTTP server: submit jobs, follow them by polling or
// Server-Sent Events, register workflows as typed template endpoints, and operate the
// system (health, Prometheus metrics, the asynqmon dashboard, OpenAPI and a reference
// page). The Go client of that server, and the wire types it shares with it, are
// package api/apiclient, which links none of this.
//
//	srv, err := api.New(api.Config{Redis: rdb, Storage: store, APIKeys: keys})
//	err = srv.Run(ctx, "127.0.0.1:8080")
//
// # Routes
//
//	POST   /v1/jobs                     submit a workflow or a template (202, Idempotency-Key)
//	GET    /v1/jobs?status=&queue=&limit=&cursor=   list, newest first
//	GET    /v1/jobs/{id}                the Job JSON, with fresh output URLs
//	GET    /v1/jobs/{id}/events         Server-Sent Events until the job ends
//	POST   /v1/jobs/{id}/cancel         cancel (409 if it already ended)
//	GET    /v1/files/{key...}           an output, for stores without URLs (file store)
//	GET    /v1/templates[/{name}]       templates and their parameter schemas
//	POST   /v1/templates                register (admin; 409 if the name exists)
//	PUT    /v1/templates/{name}         create or replace (admin; the version grows)
//	DELETE /v1/templates/{name}         delete (admin)
//	POST   /v1/templates/{name}/jobs    submit {params, images, …} (400 lists every violation)
//	GET    /healthz /readyz /metrics /openapi.json /docs
//	       /monitoring/                 the asynqmon dashboard (admin)
//
// # The Comfy API v2
//
// Under /api/v2 the server speaks the Comfy API v2, the contract of Comfy Cloud and of
// the official SDKs (@comfyorg/sdk, comfy-sdk), over the same jobs (comfyv2*.go;
// docs/comfy-api-v2.md): POST /api/v2/jobs (synchronous validation, Stripe-style
// Idempotency-Key, a bounded queue), GET /api/v2/jobs/{id}[/workflow|/events], POST
// /api/v2/jobs/{id}/cancel, and assets over blake3-addressed blobs (POST
// /api/v2/assets, /from-hash, HEAD /by-hash/{hash}, GET /{id}[/content], DELETE).
// Partner-node keys are sealed with Config.SealKey on their way to the worker.
//
// # Security
//
// Every /v1 route needs "Authorization: Bearer KEY" with one of Config.APIKeys or
// Config.AdminKeys; template management and the dashboard need an admin key (the
// dashboard also takes HTTP Basic with the key as password, so a browser can open it).
// New refuses a configuration without keys unless Config.NoAuth says so explicitly.
// Keys are compared in constant time. Bodies are bounded (Config.MaxBodyBytes), as are
// inline images (Config.MaxImageBytes); bodies must be JSON; unknown fields are refused.
// CORS headers are sent only for Config.CORSOrigins. Every error is
// {"error": {"code", "message", "field", "details"}} with a 4xx status, or a 500 with
// a generic message and a request id (X-Request-Id) that finds the cause in the log:
// no internal detail, secret or stack trace reaches a client.
//
// # Live events
//
// Workers and producers publish each change of a job on the Redis channel
// comfyq:events:{id}. A Server holds one pattern subscription (a jobstore.Hub, shared
// with its producer) and each stream follows its job with jobstore.Store.Watch, so any
// replica can stream any job, and a stream costs no Redis connection of its own. A
// stream starts with the job's current state
// (read after subscribing, so nothing falls in between), skips events older than what it
// sent, re-reads the record every few seconds so that a terminal state whose event was
// lost still ends it, sends a comment every Config.Heartbeat, and ends when the client
// goes away or the server shuts down (clients reconnect, and start again from the
// current state).
//
// # Metrics
//
// /metrics (any key, or none with Config.PublicMetrics) serves:
//
//   - comfyq_jobs{queue,status}: job records by state, counted at scrape time over the
//     newest Config.MetricsScanLimit records of the job index (comfyq_jobs_scanned says
//     how many), cached for Config.MetricsCacheFor;
//   - comfyq_queue_size, comfyq_queue_tasks{queue,state}, comfyq_queue_latency_seconds
//     (age of the oldest pending task), comfyq_queue_paused, comfyq_queue_processed_total,
//     comfyq_queue_failed_total: asynq's Inspector.GetQueueInfo per queue;
//   - comfyq_jobs_finished_total{queue,status} and the histograms comfyq_job_queued_seconds,
//     comfyq_job_execution_seconds, comfyq_job_upload_seconds, comfyq_job_total_seconds,
//     fed from the job's timings when a replica sees its terminal status event; the
//     replica first claims the job with SET NX comfyq:metrics:finished:{id} (kept a day),
//     so summed over replicas each finished job counts once (events are best effort: a
//     Redis reconnect can lose a few);
//   - comfyq_node_up, comfyq_node_jobs_in_flight, comfyq_jobs_taken_over_total (by
//     reason: restart, dead) and comfyq_webhook_deliveries_total, defined in
//     internal/metrics and fed by the worker and the webhook task in the
//     processes that run them;
//   - comfyq_tenant_jobs_submitted_total{tenant,queue},
//     comfyq_tenant_jobs_finished_total{tenant,status} and
//     comfyq_tenant_submissions_refused_total{tenant,reason}: per tenant, fed by the
//     replica that accepted or refused the submission (finished: as above);
//   - comfyq_redis_up, and the Go and process collectors.
//
// # Tenants
//
// Every key belongs to a tenant (tenant.go): handlers read the caller with callerOf,
// the tenant a request is confined to with tenantOf ("" for admin keys), and fetch a
// job through jobFor, which answers another tenant's job as job.ErrNotFound. A
// submission passes admit (quota.go) before anything is stored: the job takes the key's
// tenant, the key's queues and quotas are checked.
package api
