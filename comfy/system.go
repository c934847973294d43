package comfy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// ObjectInfo returns every node class the node knows (GET /object_info).
func (c *Client) ObjectInfo(ctx context.Context) (ObjectInfo, error) {
	raw, err := c.ObjectInfoJSON(ctx)
	if err != nil {
		return nil, err
	}
	return ParseObjectInfo(raw)
}

// ObjectInfoJSON returns GET /object_info as the node sent it, to be kept or passed on
// (it is several megabytes; ParseObjectInfo reads it).
func (c *Client) ObjectInfoJSON(ctx context.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.doJSON(ctx, http.MethodGet, "/object_info", nil, nil, &raw, nil); err != nil {
		return nil, err
	}
	return raw, nil
}

// ObjectInfoClass returns one class's definition (GET /object_info/{class}), or
// ErrNotFound when the class is unknown (ComfyUI answers {}).
func (c *Client) ObjectInfoClass(ctx context.Context, class string) (*NodeInfo, error) {
	if class == "" {
		return nil, fmt.Errorf("comfy: ObjectInfoClass: empty class")
	}
	var raw json.RawMessage
	if err := c.doJSON(ctx, http.MethodGet, "/object_info/"+url.PathEscape(class), nil, nil, &raw, nil); err != nil {
		return nil, err
	}
	info, err := ParseObjectInfo(raw)
	if err != nil {
		return nil, err
	}
	n := info[class]
	if n == nil {
		return nil, fmt.Errorf("%w: node class %q", ErrNotFound, class)
	}
	return n, nil
}

// SystemStats is GET /system_stats.
type SystemStats struct {
	System  SystemInfo `json:"system"`
	Devices []Device   `json:"devices"`
}

// SystemInfo describes the ComfyUI process and host.
type SystemInfo struct {
	OS                        string   `json:"os"`
	RAMTotal                  int64    `json:"ram_total"`
	RAMFree                   int64    `json:"ram_free"`
	ComfyUIVersion            string   `json:"comfyui_version"`
	RequiredFrontendVersion   string   `json:"required_frontend_version"`
	InstalledTemplatesVersion string   `json:"installed_templates_version"`
	RequiredTemplatesVersion  string   `json:"required_templates_version"`
	PythonVersion             string   `json:"python_version"`
	PyTorchVersion            string   `json:"pytorch_version"`
	EmbeddedPython            bool     `json:"embedded_python"`
	Argv                      []string `json:"argv"`
}

// Device is one compute device of the node.
type Device struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Index is nil for the CPU.
	Index          *int  `json:"index"`
	VRAMTotal      int64 `json:"vram_total"`
	VRAMFree       int64 `json:"vram_free"`
	TorchVRAMTotal int64 `json:"torch_vram_total"`
	TorchVRAMFree  int64 `json:"torch_vram_free"`
}

// SystemStats returns the node's versions, RAM and devices (GET /system_stats). It is
// also a cheap health check.
func (c *Client) SystemStats(ctx context.Context) (*SystemStats, error) {
	var s SystemStats
	if err := c.doJSON(ctx, http.MethodGet, "/system_stats", nil, nil, &s, nil); err != nil {
		return nil, err
	}
	return &s, nil
}

// Features returns the server's feature flags (GET /features), for example
// {"supports_preview_metadata": true, "max_upload_size": 104857600}. Numbers are
// json.Number.
func (c *Client) Features(ctx context.Context) (map[string]any, error) {
	var m map[string]any
	if err := c.doJSON(ctx, http.MethodGet, "/features", nil, nil, &m, nil); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}
