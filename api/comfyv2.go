package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
)

// The Comfy API v2 (Comfy-Org/comfy-api-proxy spec/openapi.yaml), served under
// /api/v2 so that the official SDKs (@comfyorg/sdk, comfy-sdk) work against comfyq
// unchanged. A v2 job is a comfyq job: the same Redis record, readable through /v1;
// the v2 routes are another view of it (comfyv2_jobs.go), with assets
// (comfyv2_assets.go) for inputs and outputs.

// v2Prefix is the path prefix of the Comfy API v2.
const v2Prefix = "/api/v2"

// Error codes of the Comfy API v2, beside the shared ones (unauthorized, forbidden,
// not_found, invalid_request, too_large).
const (
	CodeWorkflowFormatUI    job.Code = "workflow_format_ui"    // 422: a UI-format workflow
	CodeMissingAsset        job.Code = "missing_asset"         // 422: a core/ASSET reference names no asset of the caller
	CodeHashMismatch        job.Code = "hash_mismatch"         // 409: the uploaded bytes do not hash to expected_hash
	CodeBlobNotFound        job.Code = "blob_not_found"        // 404: no blob the caller may mint from
	CodeIdempotencyKeyReuse job.Code = "idempotency_key_reuse" // 422: the key was used with another body
	CodeIdempotencyConflict job.Code = "idempotency_conflict"  // 409: the first request with the key is in flight
	CodeQueueFull           job.Code = "queue_full"            // 429: the queue is at its bound
	CodeRangeNotSatisfiable job.Code = "range_not_satisfiable" // 416: a Range outside the content
)

// v2Codes lists the codes /api/v2 answers with, for its OpenAPI document.
func v2Codes() []job.Code {
	return []job.Code{CodeInvalidRequest, CodeInvalidWorkflow, CodeWorkflowFormatUI, CodeMissingAsset,
		CodeHashMismatch, CodeBlobNotFound, CodeIdempotencyKeyReuse, CodeIdempotencyConflict, CodeQueueFull,
		CodeUnauthorized, CodeForbidden, CodeNotFound, CodeMethodNotAllowed, CodeTooLarge, CodeUnsupportedMedia,
		CodeRangeNotSatisfiable, CodeInternal, CodeUnavailable}
}

func (s *Server) v2Routes() []route {
	return []route{
		{method: "POST", pattern: v2Prefix + "/jobs", role: roleUser, body: true, handler: s.v2CreateJob},
		{method: "GET", pattern: v2Prefix + "/jobs/{id}", role: roleUser, handler: s.v2GetJob},
		{method: "GET", pattern: v2Prefix + "/jobs/{id}/workflow", role: roleUser, handler: s.v2JobWorkflow},
		{method: "POST", pattern: v2Prefix + "/jobs/{id}/cancel", role: roleUser, handler: s.v2CancelJob},
		{method: "GET", pattern: v2Prefix + "/jobs/{id}/events", role: roleUser, handler: s.v2JobEvents},

		{method: "POST", pattern: v2Prefix + "/assets", role: roleUser, handler: s.v2UploadAsset},
		{method: "POST", pattern: v2Prefix + "/assets/from-hash", role: roleUser, body: true, handler: s.v2AssetFromHash},
		{method: "HEAD", pattern: v2Prefix + "/assets/by-hash/{hash}", role: roleUser, handler: s.v2HeadAssetByHash},
		{method: "GET", pattern: v2Prefix + "/assets/{id}", role: roleUser, handler: s.v2GetAsset},
		// {part} rather than content: GET /api/v2/assets/{id}/content and HEAD
		// /api/v2/assets/by-hash/{hash} would conflict in ServeMux (both match
		// /api/v2/assets/by-hash/content).
		{method: "GET", pattern: v2Prefix + "/assets/{id}/{part}", docPath: v2Prefix + "/assets/{id}/content", role: roleUser, handler: s.v2AssetContent},
		{method: "DELETE", pattern: v2Prefix + "/assets/{id}", role: roleUser, handler: s.v2DeleteAsset},
	}
}

// identity is who a request acts for: the owner recorded on what it creates (the
// key's tenant), and whether it sees everything (an admin key, or a server without
// authentication).
type identity struct {
	owner string
	admin bool
}

func (s *Server) identity(r *http.Request) identity {
	if s.cfg.NoAuth {
		return identity{admin: true}
	}
	k := callerOf(r)
	if k == nil {
		return identity{owner: "\x00"} // matches no tenant
	}
	return identity{owner: k.Tenant, admin: k.Admin()}
}

// may reports whether the identity may use something owned by owner (a tenant): its
// own tenant's, or anything for an admin. What has no owner (made while the server ran
// without authentication) is an admin's only, as its jobs are on /v1.
func (id identity) may(owner string) bool { return id.admin || owner == id.owner }

// V2Job is the Job object of the Comfy API v2. Required fields are always present,
// null where the contract allows it.
type V2Job struct {
	ID            string           `json:"id"`
	Status        string           `json:"status"`
	CreatedAt     time.Time        `json:"created_at"`
	StartedAt     *time.Time       `json:"started_at"`
	CompletedAt   *time.Time       `json:"completed_at"`
	ExpiresAt     time.Time        `json:"expires_at"`
	QueuePosition *int             `json:"queue_position"`
	Progress      *V2Progress      `json:"progress"`
	Outputs       []V2Output       `json:"outputs"`
	Error         *V2JobError      `json:"error"`
	Metrics       map[string]int64 `json:"metrics"`
	URLs          V2JobURLs        `json:"urls"`
}

// V2Progress is a progress snapshot.
type V2Progress struct {
	Value            float64 `json:"value"`
	NodesDone        int     `json:"nodes_done"`
	NodesTotal       int     `json:"nodes_total"`
	CurrentNode      *string `json:"current_node"`
	CurrentNodeClass *string `json:"current_node_class"`
	Step             *int    `json:"step"`
	Steps            *int    `json:"steps"`
	Message          *string `json:"message"`
}

// V2Output is a committed output: an asset.
type V2Output struct {
	NodeID       string    `json:"node_id"`
	Name         string    `json:"name"`
	Type         string    `json:"type"`
	ContentType  string    `json:"content_type"`
	SizeBytes    int64     `json:"size_bytes"`
	ID           string    `json:"id"`
	Hash         *string   `json:"hash"`
	URL          string    `json:"url"`
	URLExpiresAt time.Time `json:"url_expires_at"`
	JobID        string    `json:"job_id"`
}

// V2JobError is a job's failure.
type V2JobError struct {
	Code      string  `json:"code"`
	Message   string  `json:"message"`
	NodeID    *string `json:"node_id"`
	ClassType *string `json:"class_type"`
	Traceback *string `json:"traceback"`
}

// V2JobURLs are a job's follow-up links.
type V2JobURLs struct {
	Self   string `json:"self"`
	Events string `json:"events"`
	Cancel string `json:"cancel"`
}

// v2Status maps a comfyq status onto the v2 lifecycle: uploading outputs is still
// running.
func v2Status(st job.Status) string {
	if st == job.StatusUploading {
		return string(job.StatusRunning)
	}
	return string(st)
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func intPtr(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

// presentV2 builds the v2 Job object of a job record: its outputs as assets (minted
// on the way, comfyv2_assets.go) with fresh URLs, its queue position while queued.
func (s *Server) presentV2(ctx context.Context, r *http.Request, j *job.Job) *V2Job {
	base := s.baseURL(r) + v2Prefix + "/jobs/" + j.ID
	v := &V2Job{
		ID:          j.ID,
		Status:      v2Status(j.Status),
		CreatedAt:   j.CreatedAt,
		StartedAt:   j.StartedAt,
		CompletedAt: j.FinishedAt,
		Outputs:     []V2Output{},
		URLs:        V2JobURLs{Self: base, Events: base + "/events", Cancel: base + "/cancel"},
		Metrics:     map[string]int64{},
	}
	last := j.CreatedAt
	if j.FinishedAt != nil {
		last = *j.FinishedAt
	}
	v.ExpiresAt = last.Add(s.retention())
	if j.Status == job.StatusQueued {
		n := s.queuePosition(ctx, j)
		v.QueuePosition = &n
	}
	if p := j.Progress; p != nil {
		vp := &V2Progress{Value: p.Fraction, NodesDone: p.NodesDone, NodesTotal: p.NodesTotal,
			CurrentNode: strPtr(p.Node), CurrentNodeClass: strPtr(p.NodeClass), Step: intPtr(p.Step), Steps: intPtr(p.Steps)}
		switch {
		case p.NodeClass != "" && p.Steps > 0:
			vp.Message = strPtr(fmt.Sprintf("%s %d/%d", p.NodeClass, p.Step, p.Steps))
		case p.NodeClass != "":
			vp.Message = strPtr(p.NodeClass)
		}
		v.Progress = vp
	}
	if e := j.Error; e != nil {
		ve := &V2JobError{Code: string(e.Code), Message: e.Message, NodeID: strPtr(e.NodeID), ClassType: strPtr(e.NodeClass)}
		if len(e.Traceback) > 0 {
			tb := ""
			for _, line := range e.Traceback {
				tb += line
			}
			ve.Traceback = &tb
		}
		v.Error = ve
	}
	if t := j.Timings; t != nil {
		v.Metrics["queue_ms"] = t.QueuedMS
		v.Metrics["execution_ms"] = t.ExecutionMS
		v.Metrics["upload_ms"] = t.UploadMS
		v.Metrics["total_ms"] = t.TotalMS
	}
	v.Outputs = s.v2Outputs(ctx, r, j)
	return v
}

func (s *Server) retention() time.Duration {
	if s.cfg.Retention > 0 {
		return s.cfg.Retention
	}
	return jobstore.DefaultRetention
}

// queuePosition is how many tasks are ahead of the job in its asynq queue: 0 when it
// is next or already handed to a node. It reads asynq's pending list
// ("asynq:{queue}:pending": tasks are pushed at the head and taken from the tail).
func (s *Server) queuePosition(ctx context.Context, j *job.Job) int {
	key := "asynq:{" + j.Queue + "}:pending"
	idx, err := s.rdb.LPos(ctx, key, j.ID, redis.LPosArgs{}).Result()
	if err != nil {
		return 0
	}
	n, err := s.rdb.LLen(ctx, key).Result()
	if err != nil || n <= idx {
		return 0
	}
	return int(n - 1 - idx)
}

// retryAfter sets Retry-After on an error answer.
func retryAfter(e *httpError, seconds int) *httpError {
	if e.header == nil {
		e.header = http.Header{}
	}
	e.header.Set("Retry-After", strconv.Itoa(seconds))
	return e
}
