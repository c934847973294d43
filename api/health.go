package api

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Health is the body of /healthz and /readyz.
type Health struct {
	Status  string            `json:"status"` // "ok" or "unavailable"
	Version string            `json:"version,omitempty"`
	Checks  map[string]string `json:"checks,omitempty"`
}

// healthz answers while the process serves requests; it checks nothing else.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, Health{Status: "ok", Version: s.cfg.Version})
	return nil
}

// readyTimeout bounds each readiness check.
const readyTimeout = 2 * time.Second

// readyz answers 200 when Redis and the storage answer, else 503. The checks' errors
// are logged, not returned: they can name internal addresses.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	checks := map[string]func(context.Context) error{
		"redis":   func(ctx context.Context) error { return s.rdb.Ping(ctx).Err() },
		"storage": s.storage.Ping,
	}
	out := Health{Status: "ok", Version: s.cfg.Version, Checks: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
			defer cancel()
			err := check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.log.Warn("readiness check failed", "check", name, "err", err)
				out.Checks[name] = "unreachable"
				out.Status = "unavailable"
				return
			}
			out.Checks[name] = "ok"
		})
	}
	wg.Wait()
	status := http.StatusOK
	if out.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, out)
	return nil
}
