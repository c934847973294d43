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
func (s *Server) monitoring() func(w http.ResponseWriter, r *http.Request) error {
	var once sync.Once
	var h http.Handler
	return func(w http.ResponseWriter, r *http.Request) error {
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
