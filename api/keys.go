package api

import (
	"errors"
	"net/http"

	"github.com/comfyq/comfyq/api/apiclient"
	"github.com/comfyq/comfyq/apikey"
	"github.com/comfyq/comfyq/keystore"
)

// Wire types of the key routes (package apiclient).
type (
	KeyRequest = apiclient.KeyRequest
	NewKey     = apiclient.NewKey
	KeyList    = apiclient.KeyList
)

// createKey serves POST /v1/keys (admin): a new managed key, its secret answered once.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	var req KeyRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	k, secret, err := s.keys.Create(r.Context(), apikey.Key{
		Name: req.Name, Tenant: req.Tenant, Role: req.Role, Queues: req.Queues, Quota: req.Quota,
	})
	if err != nil {
		if errors.Is(err, apikey.ErrInvalid) {
			return errorf(http.StatusBadRequest, CodeInvalidRequest, "%s", err.Error())
		}
		return err
	}
	s.log.Info("API key created", "key_id", k.ID, "key_name", k.Name, "tenant", k.Tenant, "role", k.Role, "by", callerOf(r).ID)
	writeJSON(w, http.StatusCreated, NewKey{Key: k, Secret: secret})
	return nil
}

// listKeys serves GET /v1/keys (admin): the managed keys, then the static ones.
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.keys.List(r.Context())
	if err != nil {
		return err
	}
	for _, sk := range s.auth.static {
		keys = append(keys, sk.key)
	}
	writeJSON(w, http.StatusOK, KeyList{Keys: keys})
	return nil
}

// getKey serves GET /v1/keys/{id} (admin).
func (s *Server) getKey(w http.ResponseWriter, r *http.Request) error {
	k, err := s.keys.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, keystore.ErrNotFound) {
		return errorf(http.StatusNotFound, CodeNotFound, "no managed key with this id (keys given by flag or environment are not managed here)")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, k)
	return nil
}

// revokeKey serves DELETE /v1/keys/{id} (admin): the key stops working at once.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	k, err := s.keys.Revoke(r.Context(), r.PathValue("id"))
	if errors.Is(err, keystore.ErrNotFound) {
		return errorf(http.StatusNotFound, CodeNotFound, "no managed key with this id (keys given by flag or environment are not managed here)")
	}
	if err != nil {
		return err
	}
	s.log.Info("API key revoked", "key_id", k.ID, "key_name", k.Name, "tenant", k.Tenant, "by", callerOf(r).ID)
	writeJSON(w, http.StatusOK, k)
	return nil
}
