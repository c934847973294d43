package apiclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/comfyq/comfyq/apikey"
)

// KeyRequest is the body of POST /v1/keys: a new managed API key.
type KeyRequest struct {
	// Name labels the key ("checkout-service"). Required.
	Name string `json:"name"`
	// Tenant owns the key's jobs. Required.
	Tenant string `json:"tenant"`
	// Role is "user" (default) or "admin".
	Role string `json:"role,omitempty"`
	// Queues the key may submit to; empty: any (never the internal comfyq_* queues).
	Queues []string `json:"queues,omitempty"`
	// Quota bounds the key's submissions; zero fields are no limit.
	Quota apikey.Quota `json:"quota,omitempty"`
}

// NewKey is the answer of POST /v1/keys: the key's record and its secret, shown this
// once and never again.
type NewKey struct {
	Key    *apikey.Key `json:"key"`
	Secret string      `json:"secret"`
}

// KeyList is the body of GET /v1/keys: the managed keys, then the keys given by flag or
// environment (static, without secrets).
type KeyList struct {
	Keys []*apikey.Key `json:"keys"`
}

// CreateKey creates a managed API key (admin key) and returns it with its secret.
func (c *Client) CreateKey(ctx context.Context, req KeyRequest) (*NewKey, error) {
	var out NewKey
	if err := c.do(ctx, http.MethodPost, "/v1/keys", nil, req, &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListKeys lists the API keys (admin key).
func (c *Client) ListKeys(ctx context.Context) ([]*apikey.Key, error) {
	var l KeyList
	if err := c.do(ctx, http.MethodGet, "/v1/keys", nil, nil, &l, nil); err != nil {
		return nil, err
	}
	return l.Keys, nil
}

// RevokeKey deletes a managed key by id (admin key) and returns its record; its secret
// stops working at once.
func (c *Client) RevokeKey(ctx context.Context, id string) (*apikey.Key, error) {
	var k apikey.Key
	if err := c.do(ctx, http.MethodDelete, "/v1/keys/"+url.PathEscape(id), nil, nil, &k, nil); err != nil {
		return nil, err
	}
	return &k, nil
}
