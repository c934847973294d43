package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// route is one operation of the API. The route table feeds the router; the OpenAPI
// document is written beside it and a test checks that the two agree.
type route struct {
	method  string // GET, POST, PUT, DELETE; "" for any (the dashboard)
	pattern string // net/http ServeMux pattern path: /v1/jobs/{id}
	// docPath is the route's path in the OpenAPI document when pattern is wider (to
	// avoid a ServeMux conflict); "" when they are the same.
	docPath string
	role    role
	// basic also accepts HTTP Basic auth with the key as password (browser pages).
	basic bool
	// body is true for routes taking a JSON body (Content-Type checked, size bounded).
	body    bool
	handler func(w http.ResponseWriter, r *http.Request) error
}

func (s *Server) buildRoutes() []route {
	return append([]route{
		{method: "GET", pattern: "/healthz", role: rolePublic, handler: s.healthz},
		{method: "GET", pattern: "/readyz", role: rolePublic, handler: s.readyz},
		{method: "GET", pattern: "/metrics", role: s.metricsRole(), handler: s.serveMetrics},
		{method: "GET", pattern: "/openapi.json", role: rolePublic, handler: s.serveOpenAPI},
		{method: "GET", pattern: "/docs", role: rolePublic, handler: s.serveDocs},
		{method: "GET", pattern: "/{$}", role: rolePublic, handler: s.serveRoot},

		{method: "POST", pattern: "/v1/jobs", role: roleUser, body: true, handler: s.createJob},
		{method: "GET", pattern: "/v1/jobs", role: roleUser, handler: s.listJobs},
		{method: "GET", pattern: "/v1/jobs/{id}", role: roleUser, handler: s.getJob},
		{method: "GET", pattern: "/v1/jobs/{id}/events", role: roleUser, handler: s.jobEvents},
		{method: "POST", pattern: "/v1/jobs/{id}/cancel", role: roleUser, handler: s.cancelJob},
		{method: "POST", pattern: "/v1/jobs/{id}/webhooks/replay", role: roleUser, handler: s.replayWebhooks},
		{method: "GET", pattern: "/v1/files/{key...}", role: roleUser, handler: s.getFile},

		{method: "GET", pattern: "/v1/templates", role: roleUser, handler: s.listTemplates},
		{method: "POST", pattern: "/v1/templates", role: roleAdmin, body: true, handler: s.createTemplate},
		{method: "GET", pattern: "/v1/templates/{name}", role: roleUser, handler: s.getTemplate},
		{method: "PUT", pattern: "/v1/templates/{name}", role: roleAdmin, body: true, handler: s.putTemplate},
		{method: "DELETE", pattern: "/v1/templates/{name}", role: roleAdmin, handler: s.deleteTemplate},
		{method: "POST", pattern: "/v1/templates/{name}/jobs", role: roleUser, body: true, handler: s.createTemplateJob},

		{method: "GET", pattern: "/v1/keys", role: roleAdmin, handler: s.listKeys},
		{method: "POST", pattern: "/v1/keys", role: roleAdmin, body: true, handler: s.createKey},
		{method: "GET", pattern: "/v1/keys/{id}", role: roleAdmin, handler: s.getKey},
		{method: "DELETE", pattern: "/v1/keys/{id}", role: roleAdmin, handler: s.revokeKey},

		{method: "GET", pattern: "/v1/whoami", role: roleUser, handler: s.whoami},
		{method: "GET", pattern: "/v1/nodes", role: roleUser, handler: s.listNodes},
		{method: "GET", pattern: "/v1/jobs/{id}/workflow", role: roleUser, handler: s.jobWorkflow},
		{method: "GET", pattern: consolePath + "/", role: rolePublic, handler: s.serveConsole},

		{method: "", pattern: monitoringPath + "/", role: roleAdmin, basic: true, handler: s.monitoring()},
	}, s.v2Routes()...)
}

func (s *Server) metricsRole() role {
	if s.cfg.PublicMetrics {
		return rolePublic
	}
	// Admin only: the labels name every tenant and node, which one tenant's key must
	// not learn.
	return roleAdmin
}

// buildHandler assembles the router and the middleware every request passes through:
// panic recovery, request id, security headers, CORS, then per route authentication,
// body checks and JSON errors for unknown routes and methods.
func (s *Server) buildHandler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		pattern := rt.pattern
		if rt.method != "" {
			pattern = rt.method + " " + pattern
		}
		mux.Handle(pattern, s.wrap(rt))
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			s.noRoute(mux, w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	h = s.cors(h)
	return s.recoverer(h)
}

// wrap applies a route's authentication and body rules, and writes its error.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, he := s.auth.authorize(r, rt.role, rt.basic)
		if he != nil {
			s.writeError(w, r, he)
			return
		}
		r = withCaller(r, caller)
		if rt.body {
			if err := checkJSONContentType(r); err != nil {
				s.writeError(w, r, err)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		if err := rt.handler(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// noRoute answers a request no pattern matched: 405 with Allow when the path exists
// for other methods, redirects as ServeMux would (a missing trailing slash), else 404.
func (s *Server) noRoute(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	h, _ := mux.Handler(r)
	rec := &headerRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch {
	case rec.status == http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.header.Get("Allow"))
		s.writeError(w, r, errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s is not allowed on %s (allowed: %s)",
			r.Method, r.URL.Path, rec.header.Get("Allow")))
	case rec.status >= 300 && rec.status < 400:
		h.ServeHTTP(w, r)
	default:
		s.writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "no route %s %s; see /docs", r.Method, r.URL.Path))
	}
}

// headerRecorder captures the status and headers of ServeMux's own 404/405/redirect
// handlers, discarding their plain-text body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return len(b), nil
}
func (h *headerRecorder) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func checkJSONContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return nil
	}
	if ct == "" {
		ct = "none"
	}
	return errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMedia,
		"the body must be JSON with \"Content-Type: application/json\" (got %s)", ct)
}

type requestIDKey struct{}

func requestID(r *http.Request) string {
	if id, ok := r.Context().Value(requestIDKey{}).(string); ok {
		return id
	}
	return ""
}

// frameAncestorsNone is the Content-Security-Policy of responses that set no other.
const frameAncestorsNone = "frame-ancestors 'none'"

// recoverer gives each request an id (X-Request-Id), sets the headers every response
// carries, and turns a panic into a logged 500 without any detail for the client.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		h := w.Header()
		h.Set("X-Request-Id", id)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// No page of this server may be framed by another (clickjacking the dashboard's
		// buttons, the console's cancel). Routes with a policy of their own keep
		// frame-ancestors 'none' in it.
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", frameAncestorsNone)
		if !strings.HasPrefix(r.URL.Path, monitoringPath+"/") {
			h.Set("Cache-Control", "no-store")
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "request_id", id,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !sw.wrote {
					s.writeError(sw, r, errorf(http.StatusInternalServerError, CodeInternal, "internal error (request id %s)", id))
				}
			}
			if s.log.Enabled(r.Context(), slog.LevelDebug) {
				s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
					"duration", time.Since(start), "request_id", id)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter records whether and what a handler wrote. It unwraps for
// http.ResponseController (flushing, deadlines).
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// cors answers preflight requests and sets CORS headers for the configured origins
// only; with none configured it does nothing and browsers keep the same-origin rule.
func (s *Server) cors(next http.Handler) http.Handler {
	if len(s.cfg.CORSOrigins) == 0 {
		return next
	}
	anyOrigin := slices.Contains(s.cfg.CORSOrigins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || (!anyOrigin && !slices.Contains(s.cfg.CORSOrigins, origin)) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		if anyOrigin {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		h.Set("Access-Control-Expose-Headers", "X-Request-Id, Location")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Last-Event-ID")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
