// Package nodeinfo shares the object_info of the ComfyUI nodes the workers drive, so
// that the API validates a submission against the node classes (and models) of the
// nodes that will run it, not against a file saved once.
//
// A worker publishes each node's GET /object_info when it attaches and every few
// minutes after, content-addressed, and names its hash in the node's status record
// (package nodestatus):
//
//	comfyq:objectinfo:{sha256}   the object_info JSON, gzip; expires after TTL unless
//	                             a worker still names it
//
// Reader.ObjectInfo merges what every healthy node published: the classes of any
// node, the choices of every node (a model present on one node is a valid name). It
// answers ErrIncomplete while a healthy node has published nothing, so that the
// caller falls back to its own object_info and does not check model names.
package nodeinfo

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/internal/nodestatus"
)

const keyPrefix = "comfyq:objectinfo:"

// TTL is how long a published object_info outlives the last worker that names it.
const TTL = time.Hour

// maxObjectInfo bounds a published object_info, unpacked (a node with hundreds of
// custom node packs stays far below).
const maxObjectInfo = 256 << 20

// ErrIncomplete: some healthy node has published no object_info (yet), or no node is
// attached.
var ErrIncomplete = errors.New("nodeinfo: not every node has published its object_info")

// Publish stores a node's object_info and returns its hash, for Status.ObjectInfoSHA256.
func Publish(ctx context.Context, rdb redis.UniversalClient, raw []byte) (string, error) {
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:])
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(raw); err != nil {
		return "", fmt.Errorf("nodeinfo: compress: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("nodeinfo: compress: %w", err)
	}
	if err := rdb.Set(ctx, keyPrefix+hash, b.Bytes(), TTL).Err(); err != nil {
		return "", fmt.Errorf("nodeinfo: publish: %w", err)
	}
	return hash, nil
}

// Touch keeps a published object_info from expiring; it reports whether it still
// exists (false: publish it again).
func Touch(ctx context.Context, rdb redis.UniversalClient, hash string) (bool, error) {
	ok, err := rdb.Expire(ctx, keyPrefix+hash, TTL).Result()
	if err != nil {
		return false, fmt.Errorf("nodeinfo: touch: %w", err)
	}
	return ok, nil
}

// Reader reads and merges the published object_info of the attached nodes. It is safe
// for concurrent use.
type Reader struct {
	rdb redis.UniversalClient
	// recheck is how long an answer is reused before the node list is read again.
	recheck time.Duration

	mu      sync.Mutex
	parsed  map[string]comfy.ObjectInfo // by hash
	key     string                      // the sorted hashes of merged
	merged  comfy.ObjectInfo
	checked time.Time
	err     error
}

// NewReader returns a Reader that looks at the node list at most every two seconds.
func NewReader(rdb redis.UniversalClient) *Reader {
	return &Reader{rdb: rdb, recheck: 2 * time.Second, parsed: map[string]comfy.ObjectInfo{}}
}

// ObjectInfo returns the merged object_info of every healthy node, or ErrIncomplete.
func (r *Reader) ObjectInfo(ctx context.Context) (comfy.ObjectInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < r.recheck {
		return r.merged, r.err
	}
	info, err := r.read(ctx)
	r.merged, r.err, r.checked = info, err, time.Now()
	return info, err
}

func (r *Reader) read(ctx context.Context) (comfy.ObjectInfo, error) {
	nodes, err := nodestatus.List(ctx, r.rdb)
	if err != nil {
		return nil, err
	}
	var hashes []string
	for _, n := range nodes {
		if !n.Healthy {
			continue
		}
		if n.ObjectInfoSHA256 == "" {
			return nil, ErrIncomplete
		}
		hashes = append(hashes, n.ObjectInfoSHA256)
	}
	if len(hashes) == 0 {
		return nil, ErrIncomplete
	}
	sort.Strings(hashes)
	hashes = compact(hashes)
	key := strings.Join(hashes, ",")
	if key == r.key && r.merged != nil {
		return r.merged, nil
	}
	infos := make([]comfy.ObjectInfo, 0, len(hashes))
	keep := map[string]comfy.ObjectInfo{}
	for _, h := range hashes {
		info, ok := r.parsed[h]
		if !ok {
			if info, err = load(ctx, r.rdb, h); err != nil {
				return nil, err
			}
		}
		keep[h] = info
		infos = append(infos, info)
	}
	r.parsed, r.key = keep, key
	return Merge(infos...), nil
}

func compact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func load(ctx context.Context, rdb redis.UniversalClient, hash string) (comfy.ObjectInfo, error) {
	data, err := rdb.Get(ctx, keyPrefix+hash).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrIncomplete
	}
	if err != nil {
		return nil, fmt.Errorf("nodeinfo: read %s: %w", hash, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("nodeinfo: read %s: %w", hash, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxObjectInfo))
	if err != nil {
		return nil, fmt.Errorf("nodeinfo: read %s: %w", hash, err)
	}
	return comfy.ParseObjectInfo(raw)
}

// Merge returns one object_info for several nodes: every class any of them has (the
// definition of the first that has it), with the choices of a choice input joined
// over all the nodes that have the class. The inputs are not changed.
func Merge(infos ...comfy.ObjectInfo) comfy.ObjectInfo {
	if len(infos) == 1 {
		return infos[0]
	}
	out := comfy.ObjectInfo{}
	for _, info := range infos {
		for name, ni := range info {
			have, ok := out[name]
			if !ok {
				cp := *ni
				cp.Input = comfy.NodeInputs{Required: cloneRaw(ni.Input.Required), Optional: cloneRaw(ni.Input.Optional), Hidden: ni.Input.Hidden}
				out[name] = &cp
				continue
			}
			joinChoices(have.Input.Required, ni.Input.Required)
			joinChoices(have.Input.Optional, ni.Input.Optional)
		}
	}
	return out
}

func cloneRaw(m map[string]json.RawMessage) map[string]json.RawMessage {
	if m == nil {
		return nil
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// joinChoices adds the choices of the V1 combos ([[choices], {…}]) of more to those
// of into.
func joinChoices(into, more map[string]json.RawMessage) {
	for name, raw := range more {
		cur, ok := into[name]
		if !ok {
			continue
		}
		a, aOpts, aok := listCombo(cur)
		b, _, bok := listCombo(raw)
		if !aok || !bok {
			continue
		}
		seen := map[string]bool{}
		for _, c := range a {
			seen[string(c)] = true
		}
		for _, c := range b {
			if !seen[string(c)] {
				a = append(a, c)
				seen[string(c)] = true
			}
		}
		parts := []any{a}
		if aOpts != nil {
			parts = append(parts, aOpts)
		}
		if data, err := json.Marshal(parts); err == nil {
			into[name] = data
		}
	}
}

func listCombo(raw json.RawMessage) ([]json.RawMessage, json.RawMessage, bool) {
	var parts []json.RawMessage
	if json.Unmarshal(raw, &parts) != nil || len(parts) == 0 || !bytes.HasPrefix(bytes.TrimSpace(parts[0]), []byte("[")) {
		return nil, nil, false
	}
	var choices []json.RawMessage
	if json.Unmarshal(parts[0], &choices) != nil {
		return nil, nil, false
	}
	var opts json.RawMessage
	if len(parts) > 1 {
		opts = parts[1]
	}
	return choices, opts, true
}
