package api

import (
	"net/http"

	"github.com/comfyq/comfyq/internal/nodestatus"
	"github.com/comfyq/comfyq/job"
)

// What a user key sees of the machinery: a node's name, never its internal address
// (Job.Node, the node's URL, says where the GPU machines are on the private network)
// nor the worker's host. Admin keys, and every request without authentication, see
// everything. The worker keeps node paths out of job errors itself (worker/scrub.go).

// isAdmin reports whether the request's key is an admin key.
func (s *Server) isAdmin(r *http.Request) bool {
	if s.cfg.NoAuth {
		return true
	}
	k := callerOf(r)
	return k != nil && k.Admin()
}

// redactJob removes from j what only an admin may see.
func redactJob(j *job.Job) {
	j.Node = ""
}

// redactNode removes from st what only an admin may see.
func redactNode(st *nodestatus.Status) {
	st.URL, st.Worker = "", ""
}
