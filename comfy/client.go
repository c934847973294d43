package comfy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Client. Only BaseURL is required.
type Config struct {
	// BaseURL is the node's address: http(s)://host:port, optionally with a path prefix
	// (http://proxy/comfy) under which every route, including /ws, is reached. The
	// WebSocket URL is derived from it (ws:// or wss://).
	BaseURL string
	// Header holds extra headers sent on every HTTP request and on the WebSocket
	// handshake, for example an auth proxy's token. An Origin header is removed: ComfyUI
	// answers 403 to a loopback request whose Origin differs from Host (§0).
	Header http.Header
	// HTTPClient sends the HTTP requests. Default: a client with a tuned transport and
	// no overall Timeout, since /view and upload bodies stream for as long as they need.
	HTTPClient *http.Client
	// RequestTimeout bounds each JSON request (default 30s). /view and uploads are
	// bounded by their context only. It also bounds the WebSocket handshake.
	RequestTimeout time.Duration
	// ClientID is the client_id sent with every prompt and the WebSocket's clientId:
	// ComfyUI routes a prompt's messages to the socket with its client_id. Default: a
	// random 32-hex-digit id, the form ComfyUI itself generates.
	ClientID string
	// PreviewMetadata negotiates supports_preview_metadata, so previews arrive as binary
	// frames of type 4 (with node and prompt ids) instead of type 1.
	PreviewMetadata bool
	// ReconnectMin and ReconnectMax bound the WebSocket reconnect backoff, which doubles
	// from ReconnectMin up to ReconnectMax with jitter (defaults 100ms and 5s).
	ReconnectMin, ReconnectMax time.Duration
	// PingInterval is how often the client pings the WebSocket (default 10s). A socket
	// that has received nothing, not even a pong, for two intervals is considered dead,
	// closed and redialled.
	PingInterval time.Duration
	// Logger receives connection events (default: discard).
	Logger *slog.Logger
}

// Client talks to one ComfyUI node over HTTP and one shared WebSocket. It is safe for
// concurrent use. Create it with New and release it with Close.
type Client struct {
	cfg     Config
	base    *url.URL // scheme, host and path prefix without trailing slash
	baseStr string
	wsURL   string
	header  http.Header
	hc      *http.Client
	log     *slog.Logger

	closed    atomic.Bool
	closeOnce sync.Once
	caps      atomic.Pointer[Capabilities] // set by DetectCapabilities
	stream    *stream
}

// Default values of Config.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultReconnectMin   = 100 * time.Millisecond
	DefaultReconnectMax   = 5 * time.Second
	DefaultPingInterval   = 10 * time.Second
)

// New validates cfg and returns a Client. It does no network I/O: the WebSocket is
// opened by the first Subscribe, SubscribeAll, Connect or Run.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.BaseURL) == "" {
		return nil, errors.New("comfy: Config.BaseURL is required")
	}
	u, err := url.Parse(strings.TrimSpace(cfg.BaseURL))
	if err != nil {
		return nil, fmt.Errorf("comfy: Config.BaseURL: %w", err)
	}
	var wsScheme string
	switch strings.ToLower(u.Scheme) {
	case "http":
		wsScheme = "ws"
	case "https":
		wsScheme = "wss"
	default:
		return nil, fmt.Errorf("comfy: Config.BaseURL %q: scheme must be http or https", cfg.BaseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("comfy: Config.BaseURL %q has no host", cfg.BaseURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("comfy: Config.BaseURL must not carry credentials; use Config.Header")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("comfy: Config.BaseURL %q must not have a query or fragment", cfg.BaseURL)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if cfg.RequestTimeout < 0 || cfg.ReconnectMin < 0 || cfg.ReconnectMax < 0 || cfg.PingInterval < 0 {
		return nil, errors.New("comfy: Config durations must not be negative")
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.ReconnectMin == 0 {
		cfg.ReconnectMin = DefaultReconnectMin
	}
	if cfg.ReconnectMax == 0 {
		cfg.ReconnectMax = DefaultReconnectMax
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = cfg.ReconnectMin
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.ClientID == "" {
		cfg.ClientID = newClientID()
	} else if strings.ContainsAny(cfg.ClientID, "\x00\r\n") {
		return nil, errors.New("comfy: Config.ClientID contains control characters")
	}
	header := cfg.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	header.Del("Origin")
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: defaultTransport()}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:    cfg,
		base:   u,
		header: header,
		hc:     hc,
	}
	c.baseStr = u.String()
	ws := *u
	ws.Scheme = wsScheme
	ws.Path = u.Path + "/ws"
	ws.RawQuery = url.Values{"clientId": {cfg.ClientID}}.Encode()
	c.wsURL = ws.String()
	c.log = logger.With(slog.String("node", c.baseStr), slog.String("client_id", cfg.ClientID))
	c.stream = newStream(c)
	return c, nil
}

func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 64
	t.MaxIdleConnsPerHost = 16
	t.IdleConnTimeout = 90 * time.Second
	t.ExpectContinueTimeout = time.Second
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return t
}

func newClientID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// BaseURL returns the node's base URL, normalised (no trailing slash).
func (c *Client) BaseURL() string { return c.baseStr }

// ClientID returns the client_id used for prompts and the WebSocket.
func (c *Client) ClientID() string { return c.cfg.ClientID }

// WebSocketURL returns the WebSocket address derived from the base URL.
func (c *Client) WebSocketURL() string { return c.wsURL }

// Close closes the WebSocket (with a close handshake) and ends every subscription. HTTP
// calls made afterwards return ErrClosed. Closing twice is safe.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.stream.close()
	})
	return nil
}

func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawPath = ""
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return nil, fmt.Errorf("comfy: %s %s: %w", method, path, err)
	}
	for k, vs := range c.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	if h := c.header.Get("Host"); h != "" {
		req.Host = h
	}
	return req, nil
}

// do sends req and maps transport failures: the caller's context errors are returned as
// they are, everything else (including the per-request timeout) wraps ErrUnavailable.
func (c *Client) do(parent context.Context, req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(parent, req.Method, req.URL.Path, err)
	}
	return resp, nil
}

func (c *Client) transportError(parent context.Context, method, path string, err error) error {
	if perr := parent.Err(); perr != nil {
		return fmt.Errorf("comfy: %s %s: %w", method, path, perr)
	}
	return fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, path, err)
}

func readBounded(r io.Reader, n int64) []byte {
	b, _ := io.ReadAll(io.LimitReader(r, n))
	return b
}

func statusError(resp *http.Response) *HTTPError {
	return &HTTPError{
		StatusCode: resp.StatusCode,
		Body:       string(readBounded(resp.Body, maxErrorBody)),
		Path:       resp.Request.URL.Path,
		Method:     resp.Request.Method,
	}
}

// maxJSONResponse bounds the JSON bodies the client decodes (object_info of a node with
// many custom nodes is tens of megabytes).
const maxJSONResponse = 512 << 20

// doJSON sends a JSON request with the per-request timeout and decodes a 200 answer into
// out (numbers as json.Number). out may be nil; a 200 with an empty body is fine then.
// onStatus, when set, may claim a non-200 answer by returning a non-nil error.
func (c *Client) doJSON(ctx context.Context, method, path string, q url.Values, in, out any, onStatus func(*http.Response) error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("comfy: %s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(parent, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if onStatus != nil {
			if statusErr := onStatus(resp); statusErr != nil {
				return statusErr
			}
		}
		return statusError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	// Read first, then decode: a cut connection (ErrUnavailable) and a malformed body
	// (a decode error) must not be confused.
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONResponse))
	if err != nil {
		return c.transportError(parent, method, path, fmt.Errorf("read response: %w", err))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("comfy: %s %s: decode response: %w", method, path, err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return lessID(keys[i], keys[j]) })
	return keys
}
