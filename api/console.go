package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/hibiken/asynq"

	"github.com/comfyq/comfyq/api/console"
	"github.com/comfyq/comfyq/internal/nodestatus"
	"github.com/comfyq/comfyq/job"
)

// consolePath is where the web console is served (package console).
const consolePath = "/console"

// The routes of this file exist for the web console, and are documented API routes
// like any other: who the key is, the nodes, a job's workflow.

// Whoami is the body of GET /v1/whoami.
type Whoami struct {
	// Role is "user" or "admin": what the presented key may do. Without authentication
	// (NoAuth) it is "admin".
	Role string `json:"role"`
	// Auth is false when the server runs without authentication.
	Auth bool `json:"auth"`
	// Tenant is the key's tenant: the jobs it submits belong to it, and a user key sees
	// only its jobs. Empty without authentication.
	Tenant string `json:"tenant,omitempty"`
	// KeyID and KeyName name the presented key (a managed key's id, or "static_…" for
	// a key given by flag or environment).
	KeyID   string `json:"key_id,omitempty"`
	KeyName string `json:"key_name,omitempty"`
}

// NodeList is the body of GET /v1/nodes.
type NodeList struct {
	Nodes []nodestatus.Status `json:"nodes"`
}

// JobWorkflow is the body of GET /v1/jobs/{id}/workflow.
type JobWorkflow struct {
	ID string `json:"id"`
	// Prompt is the API-format workflow the worker submits to ComfyUI: templates applied,
	// UI format converted, set overrides and seeds in place.
	Prompt json.RawMessage `json:"prompt"`
	// Images maps each input path to its source, with base64 contents left out.
	Images map[string]job.ImageSource `json:"images,omitempty"`
	// TaskState is asynq's state of the job's task (pending, active, retry, archived, …).
	TaskState string `json:"task_state"`
}

var consoleHandler = console.Handler(consolePath + "/")

func (s *Server) serveConsole(w http.ResponseWriter, r *http.Request) error {
	consoleHandler.ServeHTTP(w, r)
	return nil
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	out := Whoami{Role: roleAdmin.String(), Auth: !s.cfg.NoAuth}
	if k := callerOf(r); k != nil && !s.cfg.NoAuth {
		out.Role, out.Tenant, out.KeyID, out.KeyName = roleOf(k).String(), k.Tenant, k.ID, k.Name
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) error {
	nodes, err := nodestatus.List(r.Context(), s.rdb)
	if err != nil {
		return err
	}
	if !s.isAdmin(r) {
		for i := range nodes {
			redactNode(&nodes[i])
		}
	}
	writeJSON(w, http.StatusOK, NodeList{Nodes: nodes})
	return nil
}

// jobWorkflow serves the prompt of a job from its asynq task. The task exists while the
// job is queued or running, and after a failure (asynq's archive); asynq deletes the
// task of a job that succeeded, and then there is no workflow to show.
func (s *Server) jobWorkflow(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	j, err := s.jobFor(r, id)
	if err != nil {
		return err
	}
	info, err := s.inspector.GetTaskInfo(j.Queue, j.ID)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return errorf(http.StatusNotFound, CodeNotFound,
			"the workflow of job %s is no longer kept: it lives in the job's queue task, which is deleted when the job succeeds", id)
	}
	if err != nil {
		return err
	}
	p, err := job.DecodePayload(info.Payload)
	if err != nil {
		return err
	}
	out := JobWorkflow{ID: j.ID, Prompt: p.Prompt, TaskState: info.State.String()}
	if len(p.Images) > 0 {
		out.Images = map[string]job.ImageSource{}
		for k, v := range p.Images {
			v.Base64 = ""
			out.Images[k] = v
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
