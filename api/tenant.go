package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/comfyq/comfyq/apikey"
	"github.com/comfyq/comfyq/job"
)

// What a request may see. Every route behind a key knows its caller (the key's record,
// put in the request's context by wrap): a user key sees and changes only the work of
// its own tenant, an admin key (and a server without authentication) everyone's. A job
// of another tenant is answered exactly as a job that does not exist: 404 not_found.

type callerKey struct{}

func withCaller(r *http.Request, k *apikey.Key) *http.Request {
	if k == nil {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, k))
}

// callerOf returns the record of the key the request was authenticated with; nil on a
// public route called without a key.
func callerOf(r *http.Request) *apikey.Key {
	k, _ := r.Context().Value(callerKey{}).(*apikey.Key)
	return k
}

// tenantOf returns the tenant the request is confined to: the tenant of a user key, or
// "" for an admin key or a server without authentication, which see every tenant's
// work. A public route's request without a key sees no tenant's work: "\x00" matches no
// tenant.
func tenantOf(r *http.Request) string {
	k := callerOf(r)
	switch {
	case k == nil:
		return "\x00"
	case k.Admin():
		return ""
	}
	return k.Tenant
}

// ownerOf returns the tenant that a job the request submits belongs to: the key's
// tenant, admin keys included ("" without authentication).
func ownerOf(r *http.Request) string {
	if k := callerOf(r); k != nil {
		return k.Tenant
	}
	return ""
}

// visible reports whether the request may see job j.
func visible(r *http.Request, j *job.Job) bool {
	t := tenantOf(r)
	return t == "" || j.Tenant == t
}

// jobFor returns job id if the request may see it, else job.ErrNotFound: a job of
// another tenant is answered as one that does not exist.
func (s *Server) jobFor(r *http.Request, id string) (*job.Job, error) {
	j, err := s.store.Get(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if !visible(r, j) {
		return nil, job.ErrNotFound
	}
	return j, nil
}

// checkInputKeys refuses, for a user key, an input key that names another tenant's
// output (a key whose first job-id segment is a job the key does not see), with the
// answer of a key that names no object: outputs may be fed to later jobs, but only to
// their own tenant's.
func (s *Server) checkInputKeys(r *http.Request, images map[string]job.ImageSource) error {
	if tenantOf(r) == "" {
		return nil
	}
	targets := make([]string, 0, len(images))
	for t := range images {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, t := range targets {
		key := images[t].Key
		for _, seg := range strings.Split(key, "/") {
			if !job.ValidID(seg) {
				continue
			}
			if _, err := s.jobFor(r, seg); errors.Is(err, job.ErrNotFound) {
				return &job.SpecError{Code: CodeInvalidRequest, Field: "images." + t, Message: fmt.Sprintf("no object with key %q in storage", key)}
			} else if err != nil {
				return err
			}
			break
		}
	}
	return nil
}
