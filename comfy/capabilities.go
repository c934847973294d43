package comfy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
)

// Capabilities are what a node speaks, as DetectCapabilities learned it.
type Capabilities struct {
	// Version is the node's comfyui_version (/system_stats), "" until detected.
	Version string `json:"version"`
	// JobsAPI is set when the node serves ComfyUI 0.38's jobs API (GET
	// /api/jobs/{id}, POST /api/jobs/{id}/cancel). Locate and Cancel then use it.
	JobsAPI bool `json:"jobs_api"`
}

// DetectCapabilities asks the node what it speaks (GET /system_stats, and whether GET
// /api/jobs exists) and makes Locate and Cancel use the best path from then on. Call it
// when attaching to a node and again after the node restarted: a node upgraded in place
// changes what it speaks. Presence of the jobs API is probed rather than inferred from
// the version, so a build that backports it, or a proxy that hides it, is seen as it is.
// On error the previous capabilities stay in use.
func (c *Client) DetectCapabilities(ctx context.Context) (Capabilities, error) {
	st, err := c.SystemStats(ctx)
	if err != nil {
		return c.Capabilities(), err
	}
	caps := Capabilities{Version: st.System.ComfyUIVersion}
	q := url.Values{"limit": {"1"}}
	var page json.RawMessage
	switch err := c.doJSON(ctx, http.MethodGet, "/api/jobs", q, nil, &page, nil); {
	case err == nil:
		caps.JobsAPI = true
	case errors.Is(err, ErrNotFound), isStatus(err, http.StatusMethodNotAllowed):
		// 0.3.64 and earlier: the route does not exist.
	default:
		return c.Capabilities(), err
	}
	c.caps.Store(&caps)
	return caps, nil
}

// Capabilities returns what the last successful DetectCapabilities learned. Before
// one, it is the zero value: the paths every ComfyUI version serves.
func (c *Client) Capabilities() Capabilities {
	if p := c.caps.Load(); p != nil {
		return *p
	}
	return Capabilities{}
}

func isStatus(err error, status int) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.StatusCode == status
}
