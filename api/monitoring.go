package api

import (
	"net/http"
	"sync"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"
)

// monitoringPath is where the asynqmon dashboard is mounted.
const monitoringPath = "/monitoring"

// sharedRedis is an asynq.RedisConnOpt handing asynqmon the server's own Redis client
// rather than a new one per dashboard. asynqmon's Close would close it, so the server
// never calls that: the client belongs to Config.Redis's owner.
type sharedRedis struct{ rdb redis.UniversalClient }

func (c sharedRedis) MakeRedisClient() any { return c.rdb }

var _ asynq.RedisConnOpt = sharedRedis{}

// monitoring returns the handler of /monitoring/: the asynqmon dashboard (queues, tasks,
// servers, Redis), behind the admin key, read-only unless Config.MonitoringWritable.
// A browser is asked for the key with HTTP Basic authentication (any user name, the
// admin key as the password); scripts can send "Authorization: Bearer KEY". The
// dashboard is built on first use.
//
// Changes (any method but GET, HEAD and OPTIONS) must come from the dashboard's own
// pages: a browser sends its credentials for Basic authentication to any site that
// asks, so a form on another site could otherwise pause a queue in the name of a
// logged-in admin. sameOrigin says how that is checked.
func (s *Server) monitoring() func(w http.ResponseWriter, r *http.Request) error {
	var once sync.Once
	var h http.Handler
	cop := http.NewCrossOriginProtection()
	if s.publicURL != nil {
		// Behind a proxy that rewrites Host, the browser's Origin is the public one.
		_ = cop.AddTrustedOrigin(s.publicURL.Scheme + "://" + s.publicURL.Host)
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := sameOrigin(cop, r); err != nil {
			return err
		}
		once.Do(func() {
			h = asynqmon.New(asynqmon.Options{
				RootPath:     monitoringPath,
				RedisConnOpt: sharedRedis{s.rdb},
				ReadOnly:     !s.cfg.MonitoringWritable,
			})
		})
		// The dashboard is a single-page app with its own assets; let the browser cache
		// them, but never across users.
		w.Header().Set("Cache-Control", "private, no-cache")
		h.ServeHTTP(w, r)
		return nil
	}
}

// sameOrigin refuses a dashboard request that changes something and does not come from
// the dashboard's own origin. The check is net/http's CrossOriginProtection: the
// browser's Sec-Fetch-Site header must say same-origin, or, from an older browser, its
// Origin must name this server. A request with neither is a script's, not a page's,
// and is let through only with a Bearer key: a write with Basic credentials must show
// where it comes from.
func sameOrigin(cop *http.CrossOriginProtection, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if err := cop.Check(r); err != nil {
		return errorf(http.StatusForbidden, CodeForbidden,
			"cross-origin request refused: the dashboard accepts changes only from its own pages")
	}
	if r.Header.Get("Sec-Fetch-Site") == "" && r.Header.Get("Origin") == "" {
		if _, _, basic := r.BasicAuth(); basic {
			return errorf(http.StatusForbidden, CodeForbidden,
				"a change to the dashboard with Basic credentials must come from a browser page of the dashboard (Origin or Sec-Fetch-Site); scripts send \"Authorization: Bearer KEY\"")
		}
	}
	return nil
}
