package jobstore

import "sync"

// recordCache keeps the bytes of the records this process last read or wrote, so
// that an Update starts from them instead of reading the record first: the write
// script checks (by SHA-1 digest) that the record is still those bytes and, when it is
// not, hands back the current record in the same round trip. A stale entry costs one
// more round trip, never a lost write.
type recordCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

// Bounds of the cache: a worker holds a few jobs at a time; an API process reading
// many jobs keeps at most cacheEntries small records.
const (
	cacheEntries   = 1024
	cacheMaxRecord = 64 << 10
)

func (c *recordCache) get(id string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *recordCache) put(id string, raw []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(raw) > cacheMaxRecord {
		delete(c.m, id)
		return
	}
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	if _, ok := c.m[id]; !ok && len(c.m) >= cacheEntries {
		for k := range c.m { // any entry: map order is random
			delete(c.m, k)
			break
		}
	}
	c.m[id] = raw
}

func (c *recordCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}
