package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/validate"
	"github.com/comfyq/comfyq/internal/seal"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
)

// Defaults of the v2 settings of Config.
const (
	DefaultMaxQueueDepth = 10000
	DefaultMaxAssetBytes = 512 << 20
	// queueFullRetryAfter is the Retry-After of a 429 queue_full, in seconds.
	queueFullRetryAfter = 5
	maxPartnerKeyLen    = 4096
)

// v2State is what the Comfy API v2 routes keep beside the Server's own.
type v2State struct {
	sealer  *seal.Sealer // nil without Config.SealKey
	sealKey []byte
	urls    *expiringURLs // presigned asset URLs
	minted  *idSet        // output assets minted by this process
}

func newV2State(cfg *Config) (v2State, error) {
	if cfg.MaxQueueDepth == 0 {
		cfg.MaxQueueDepth = DefaultMaxQueueDepth
	}
	if cfg.MaxAssetBytes <= 0 {
		cfg.MaxAssetBytes = DefaultMaxAssetBytes
	}
	st := v2State{urls: &expiringURLs{}, minted: &idSet{}}
	if len(cfg.SealKey) > 0 {
		sl, err := seal.New(cfg.SealKey)
		if err != nil {
			return st, fmt.Errorf("api: seal key: %w", err)
		}
		st.sealer, st.sealKey = sl, cfg.SealKey
	}
	return st, nil
}

// v2JobRequest is the body of POST /api/v2/jobs. Other fields (webhook_url and inputs
// are reserved by the contract) are refused.
type v2JobRequest struct {
	Workflow  json.RawMessage `json:"workflow"`
	ExtraData json.RawMessage `json:"extra_data,omitempty"`
}

// v2ExtraData is the one extra_data shape the contract has.
type v2ExtraData struct {
	APIKeyComfyOrg *string `json:"api_key_comfy_org,omitempty"`
}

// v2JobRecord is kept beside a v2 job's record, for as long: the workflow as given
// (GET /api/v2/jobs/{id}/workflow, after the task is gone). Who may see it is the job's
// tenant (Job.Tenant).
type v2JobRecord struct {
	Workflow json.RawMessage `json:"workflow"`
}

func v2JobKey(id string) string { return jobstore.KeyPrefix + "v2:job:" + id }

func (s *Server) v2CreateJob(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var req v2JobRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	wfData := bytes.TrimSpace(req.Workflow)
	if len(wfData) == 0 || wfData[0] != '{' {
		return &job.SpecError{Code: CodeInvalidRequest, Field: "workflow", Message: "workflow is required: the API-format graph as a JSON object"}
	}
	partnerKey, err := parseExtraData(req.ExtraData)
	if err != nil {
		return err
	}
	if partnerKey != "" && s.v2.sealer == nil {
		return &job.SpecError{Code: CodeInvalidRequest, Field: "extra_data.api_key_comfy_org",
			Message: "this server forwards partner-node keys only with a seal key: set COMFYQ_SEAL_KEY on the API and the workers"}
	}
	id := s.identity(r)
	// The fingerprint covers the body as decoded: whitespace and key order do not count.
	var canon any
	dec := json.NewDecoder(bytes.NewReader(wfData))
	dec.UseNumber()
	if dec.Decode(&canon) != nil {
		return &job.SpecError{Code: CodeInvalidRequest, Field: "workflow", Message: "workflow is not valid JSON"}
	}
	claim, err := s.claimIdempotency(ctx, r, id.owner, map[string]any{"workflow": canon, "api_key_comfy_org": partnerKey})
	var replay *errIdemReplay
	if errors.As(err, &replay) {
		j, getErr := s.jobFor(r, replay.jobID)
		if getErr != nil {
			return getErr
		}
		w.Header().Set("Idempotency-Replayed", "true")
		w.Header().Set("Location", s.baseURL(r)+v2Prefix+"/jobs/"+j.ID)
		writeJSON(w, http.StatusCreated, s.presentV2(ctx, r, j))
		return nil
	}
	if err != nil {
		return err
	}
	j, err := s.v2Submit(r, id, wfData, partnerKey)
	if err != nil {
		if claim != nil {
			claim.release(ctx, s.rdb)
		}
		return err
	}
	if claim != nil {
		if err := claim.complete(ctx, s.rdb, j.ID); err != nil {
			s.log.Warn("could not record an idempotency key", "job_id", j.ID, "err", err)
		}
	}
	w.Header().Set("Location", s.baseURL(r)+v2Prefix+"/jobs/"+j.ID)
	writeJSON(w, http.StatusCreated, s.presentV2(ctx, r, j))
	return nil
}

// parseExtraData accepts a missing extra_data or {"api_key_comfy_org": "…"}.
func parseExtraData(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	bad := &job.SpecError{Code: CodeInvalidRequest, Field: "extra_data",
		Message: "extra_data is an object with one optional field, api_key_comfy_org (a string)"}
	var ed v2ExtraData
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if raw[0] != '{' || dec.Decode(&ed) != nil {
		return "", bad
	}
	if ed.APIKeyComfyOrg == nil {
		return "", nil
	}
	k := *ed.APIKeyComfyOrg
	if k == "" || len(k) > maxPartnerKeyLen || strings.ContainsAny(k, "\r\n") {
		return "", bad
	}
	return k, nil
}

// v2Submit validates the workflow synchronously and enqueues it as a comfyq job.
func (s *Server) v2Submit(r *http.Request, id identity, data []byte, partnerKey string) (*job.Job, error) {
	ctx := r.Context()
	if comfy.IsUIFormat(data) {
		return nil, errorf(http.StatusUnprocessableEntity, CodeWorkflowFormatUI,
			"this is a UI-format workflow (nodes and links); submit the API format: \"Export (API)\" in ComfyUI")
	}
	wf, err := comfy.ParseWorkflow(data)
	if err != nil {
		return nil, invalidWorkflow(err)
	}
	// The graph is checked in full by the producer (package comfy/validate: structure,
	// classes, inputs, values), as on /v1, with the asset inputs counted as provided.
	images, err := s.resolveAssetRefs(ctx, id, wf)
	if err != nil {
		return nil, err
	}
	if qerr := s.checkQueueDepth(ctx); qerr != nil {
		return nil, qerr
	}
	prompt, err := json.Marshal(wf)
	if err != nil {
		return nil, fmt.Errorf("api: encode workflow: %w", err)
	}
	spec := job.Spec{Workflow: prompt, Images: images}
	if partnerKey != "" {
		plain, _ := json.Marshal(map[string]string{"api_key_comfy_org": partnerKey})
		if spec.SealedExtraData, err = s.v2.sealer.Seal(plain, job.SealContext); err != nil {
			return nil, err
		}
	}
	// The key's tenant, queue and quotas, as on /v1.
	done, err := s.admit(r, &spec)
	if err != nil {
		return nil, err
	}
	j, err := s.producer.Enqueue(ctx, spec)
	if j != nil && err == nil {
		done(j.ID)
	} else {
		done("")
	}
	if err != nil {
		var se *job.SpecError
		if errors.As(err, &se) && se.Code == job.CodeInvalidWorkflow {
			return nil, v2InvalidWorkflow(se)
		}
		return nil, err
	}
	rec, _ := json.Marshal(v2JobRecord{Workflow: data})
	if err := s.rdb.Set(ctx, v2JobKey(j.ID), rec, s.retention()).Err(); err != nil {
		s.log.Warn("could not keep the v2 workflow of a job", "job_id", j.ID, "err", err)
	}
	s.log.Info("v2 job submitted", "job_id", j.ID, "assets", len(images), "partner_key", partnerKey != "")
	return j, nil
}

// nodeError is one entry of invalid_workflow's details.node_errors (the contract's
// {field, reason}, with a message), and for a problem the validator found, what
// ComfyUI says of it: its error type, details and the node's class.
type nodeError struct {
	Field     string `json:"field,omitempty"`
	Reason    string `json:"reason"`
	Message   string `json:"message"`
	Type      string `json:"type,omitempty"`
	Details   string `json:"details,omitempty"`
	ClassType string `json:"class_type,omitempty"`
}

// maxV2ValidationBytes bounds ComfyUI's answer in an invalid_workflow's details, which
// also lists each problem once more in node_errors: together they fit an error answer.
const maxV2ValidationBytes = 24 << 10

// v2InvalidWorkflow is the 422 of a workflow the producer refused: details.node_errors
// by node in the contract's shape and, when the validator refused it,
// details.comfyui, ComfyUI's own {error, node_errors} as a node would have answered.
func v2InvalidWorkflow(se *job.SpecError) error {
	switch d := se.Details.(type) {
	case *comfy.ValidationError:
		ve := validate.Trim(d, maxV2ValidationBytes)
		e := nodeErrors(validationByNode(ve))
		e.info.Message = se.Message
		e.info.Details.(map[string]any)["comfyui"] = ve
		return e
	case []comfy.Problem:
		return invalidWorkflow(&comfy.WorkflowError{Problems: d})
	}
	return invalidWorkflow(errors.New(se.Message))
}

// validationByNode lists ComfyUI's errors by node. A problem of the prompt as a whole
// (no output node) is under the id "".
func validationByNode(ve *comfy.ValidationError) map[string][]nodeError {
	byNode := map[string][]nodeError{}
	seen := false
	for id, ne := range ve.NodeErrors {
		for _, e := range ne.Errors {
			input, _ := e.ExtraInfo["input_name"].(string)
			byNode[id] = append(byNode[id], nodeError{Field: input, Reason: v2Reason(e.Type, input), Message: e.Message,
				Type: e.Type, Details: e.Details, ClassType: ne.ClassType})
			seen = seen || e.Type == ve.Err.Type
		}
	}
	if !seen && ve.Err.Type != "prompt_outputs_failed_validation" {
		byNode[""] = append(byNode[""], nodeError{Reason: "invalid_graph", Message: ve.Err.Message, Type: ve.Err.Type, Details: ve.Err.Details})
	}
	return byNode
}

// v2Reason names a ComfyUI error type in the words of the contract's node_errors.
func v2Reason(typ, input string) string {
	switch typ {
	case "required_input_missing":
		return "missing_input"
	case "missing_node_type":
		return "unknown_class_type"
	case "value_smaller_than_min", "value_bigger_than_max":
		return "value_out_of_range"
	case "value_not_in_list":
		return "value_not_in_list"
	}
	if input != "" {
		return "invalid_input"
	}
	return "invalid_node"
}

// invalidWorkflow is the 422 of a workflow that cannot run, with its problems by node:
// details.node_errors maps a node id to its problems; problems of the whole graph
// are under the id "".
func invalidWorkflow(err error) error { return nodeErrors(problemsByNode(err)) }

func problemsByNode(err error) map[string][]nodeError {
	byNode := map[string][]nodeError{}
	var we *comfy.WorkflowError
	if errors.As(err, &we) {
		for _, p := range we.Problems {
			reason := "invalid_node"
			if p.Input != "" {
				reason = "invalid_input"
			}
			byNode[p.NodeID] = append(byNode[p.NodeID], nodeError{Field: p.Input, Reason: reason, Message: p.Message})
		}
	} else {
		byNode[""] = []nodeError{{Reason: "invalid_graph", Message: strings.TrimPrefix(err.Error(), "comfy: ")}}
	}
	return byNode
}

func nodeErrors(byNode map[string][]nodeError) *httpError {
	ids := make([]string, 0, len(byNode))
	for id := range byNode {
		sort.SliceStable(byNode[id], func(a, b int) bool { return byNode[id][a].Field < byNode[id][b].Field })
		ids = append(ids, id)
	}
	sort.Strings(ids)
	first := byNode[ids[0]][0]
	msg := first.Message
	if ids[0] != "" {
		msg = fmt.Sprintf("node %s: %s", ids[0], msg)
		if first.Field != "" {
			msg = fmt.Sprintf("node %s input %q: %s", ids[0], first.Field, first.Message)
		}
	}
	if n := len(ids); n > 1 {
		msg += fmt.Sprintf(" (and problems in %d more nodes)", n-1)
	}
	e := errorf(http.StatusUnprocessableEntity, CodeInvalidWorkflow, "%s", msg)
	e.info.Details = map[string]any{"node_errors": byNode}
	return e
}

// checkQueueDepth answers 429 queue_full when the default queue holds
// Config.MaxQueueDepth tasks or more.
func (s *Server) checkQueueDepth(ctx context.Context) error {
	if s.cfg.MaxQueueDepth < 0 {
		return nil
	}
	n, err := s.rdb.LLen(ctx, "asynq:{"+job.DefaultQueue+"}:pending").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("api: queue depth: %w", err)
	}
	if n >= int64(s.cfg.MaxQueueDepth) {
		return retryAfter(errorf(http.StatusTooManyRequests, CodeQueueFull,
			"the queue holds %d jobs, its bound; retry later", n), queueFullRetryAfter)
	}
	return nil
}

func (s *Server) v2GetJob(w http.ResponseWriter, r *http.Request) error {
	j, err := s.jobFor(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.presentV2(r.Context(), r, j))
	return nil
}

// V2JobWorkflow is GET /api/v2/jobs/{id}/workflow: the graph as submitted.
type V2JobWorkflow struct {
	Workflow json.RawMessage `json:"workflow"`
	Format   string          `json:"format"`
}

func (s *Server) v2JobWorkflow(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("id")
	if _, err := s.jobFor(r, id); err != nil {
		return err
	}
	data, err := s.rdb.Get(ctx, v2JobKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return errorf(http.StatusNotFound, CodeNotFound, "job %s was not submitted through /api/v2: see GET /v1/jobs/%s/workflow", id, id)
	}
	if err != nil {
		return err
	}
	var rec v2JobRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, V2JobWorkflow{Workflow: rec.Workflow, Format: "api"})
	return nil
}

// v2CancelJob asks for a job's cancel and answers the job: canceling (or canceled at
// once when it never reached a node), or the terminal state it already had.
func (s *Server) v2CancelJob(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("id")
	if !job.ValidID(id) {
		return job.ErrNotFound
	}
	if _, err := s.jobFor(r, id); err != nil {
		return err
	}
	j, err := s.producer.Cancel(ctx, id)
	if err != nil && (!errors.Is(err, job.ErrTerminal) || j == nil) {
		return err
	}
	writeJSON(w, http.StatusOK, s.presentV2(ctx, r, j))
	return nil
}
