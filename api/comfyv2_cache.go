package api

import (
	"sync"
	"time"
)

// v2CacheMax bounds the v2 caches: when full, they start over.
const v2CacheMax = 20000

// expiringURLs keeps presigned URLs with their expiry, for reuse while most of their
// life is left (url_expires_at must be true).
type expiringURLs struct {
	mu sync.Mutex
	m  map[string]expiringURL
}

type expiringURL struct {
	url          string
	expires, use time.Time // use: reuse until then
}

func (c *expiringURLs) get(key string) (string, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || time.Now().After(e.use) {
		return "", time.Time{}, false
	}
	return e.url, e.expires, true
}

func (c *expiringURLs) put(key, u string, expires time.Time, reuse time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= v2CacheMax {
		c.m = map[string]expiringURL{}
	}
	c.m[key] = expiringURL{url: u, expires: expires, use: time.Now().Add(reuse)}
}

// idSet remembers the output assets this process minted, so that showing a job again
// writes nothing. Forgetting is safe: minting is a SET NX.
type idSet struct {
	mu sync.Mutex
	m  map[string]struct{}
}

// add reports whether id is new to the set, and adds it.
func (s *idSet) add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; ok {
		return false
	}
	if s.m == nil || len(s.m) >= v2CacheMax {
		s.m = map[string]struct{}{}
	}
	s.m[id] = struct{}{}
	return true
}

func (s *idSet) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}
