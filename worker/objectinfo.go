package worker

import (
	"context"
	"sync"
	"time"

	"github.com/comfyq/comfyq/internal/nodeinfo"
)

// objectInfoEvery is how often a node's object_info is read again and published: new
// model files and custom nodes reach the API's validation within it.
const objectInfoEvery = 5 * time.Minute

// publishedInfo is the node's object_info as last published (package nodeinfo).
type publishedInfo struct {
	mu       sync.Mutex
	hash     string
	at       time.Time
	fetching bool
}

func (p *publishedInfo) current() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hash
}

// objectInfoHash returns the hash the node's status record names, and when a publish
// is due (never published, or objectInfoEvery ago) starts one in the background: a
// node's object_info is megabytes, and the heartbeats of the other nodes must not wait
// for it. A node that does not answer keeps the last hash.
func (n *node) objectInfoHash(ctx context.Context) string {
	p := &n.info
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fetching || (p.hash != "" && time.Since(p.at) < objectInfoEvery) {
		return p.hash
	}
	p.fetching, p.at = true, time.Now()
	go func() {
		hash := n.publishObjectInfo(ctx)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.fetching = false
		if hash != "" {
			p.hash = hash
		}
	}()
	return p.hash
}

func (n *node) publishObjectInfo(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	raw, err := n.comfy.ObjectInfoJSON(ctx)
	if err != nil {
		n.log.Debug("object_info not read; the API validates with what it has", "err", err)
		return ""
	}
	hash, err := nodeinfo.Publish(ctx, n.w.cfg.Redis, raw)
	if err != nil {
		n.log.Debug("object_info not published", "err", err)
		return ""
	}
	if hash != n.info.current() {
		n.log.Info("object_info published for the API's validation", "sha256", hash[:12], "bytes", len(raw))
	}
	return hash
}
