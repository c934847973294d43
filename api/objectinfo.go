package api

import (
	"context"
	"sync"
	"time"

	"github.com/comfyq/comfyq/comfy"
)

// CacheObjectInfo wraps an object_info source so that it is read at most once per ttl
// (a ComfyUI node's object_info is several megabytes). A failed read is not cached: the
// next call tries again, and meanwhile a previous value, if any, is returned. Concurrent
// callers share one read.
func CacheObjectInfo(src func(ctx context.Context) (comfy.ObjectInfo, error), ttl time.Duration) func(ctx context.Context) (comfy.ObjectInfo, error) {
	var mu sync.Mutex
	var cached comfy.ObjectInfo
	var at time.Time
	return func(ctx context.Context) (comfy.ObjectInfo, error) {
		mu.Lock()
		defer mu.Unlock()
		if cached != nil && time.Since(at) < ttl {
			return cached, nil
		}
		info, err := src(ctx)
		if err != nil {
			if cached != nil {
				return cached, nil
			}
			return nil, err
		}
		cached, at = info, time.Now()
		return info, nil
	}
}
