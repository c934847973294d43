// Package nodestatus is the heartbeat record each worker keeps in Redis for every
// ComfyUI node it drives, and the reading of those records by the API (GET /v1/nodes,
// the console's Nodes page).
//
// Prometheus already has comfyq_node_up and comfyq_node_jobs_in_flight, but only per
// worker process and only for whoever scrapes it; the API server cannot see them. So a
// worker also writes, every few seconds, one small JSON record per node:
//
//	comfyq:node:{name}   the Status JSON, expiring after TTL without a heartbeat
//	comfyq:nodes         sorted set: node name → last heartbeat (Unix ms)
//
// A record that expires means the worker stopped or lost Redis; List drops the names
// whose record is gone. Nothing else depends on these records: they are for looking.
package nodestatus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keys, under comfyq's "comfyq:" prefix.
const (
	keyPrefix = "comfyq:node:"
	indexKey  = "comfyq:nodes"
)

// TTL is how long a record outlives its last heartbeat.
const TTL = 30 * time.Second

// Status is what a worker reports about one of its nodes.
type Status struct {
	// Name is the node's name in the worker's configuration (unique per deployment).
	Name string `json:"name"`
	// URL is the node's ComfyUI base URL, as jobs report it in Job.node. The API
	// shows it to admin keys only.
	URL string `json:"url"`
	// Healthy is false while the node fails its health probe (it then takes no jobs).
	Healthy bool `json:"healthy"`
	// ComfyUIVersion is system_stats' comfyui_version ("" when unknown).
	ComfyUIVersion string `json:"comfyui_version,omitempty"`
	// Depth is the pipelining depth: how many jobs the worker lets the node hold.
	Depth int `json:"depth"`
	// QueueRunning and QueuePending are the node's own ComfyUI queue, as /queue shows it
	// (any client's prompts, not only comfyq's).
	QueueRunning int `json:"queue_running"`
	QueuePending int `json:"queue_pending"`
	// Jobs are the ids of the comfyq jobs the node holds now (executing or waiting in its
	// queue).
	Jobs []string `json:"jobs"`
	// Busy is the fraction of BusyWindowS seconds during which the node held at least one
	// job, sampled every second.
	Busy        float64 `json:"busy"`
	BusyWindowS int     `json:"busy_window_s"`
	// ObjectInfoSHA256 names the node's object_info as the worker published it
	// (package nodeinfo); "" until it is.
	ObjectInfoSHA256 string `json:"object_info_sha256,omitempty"`
	// Worker identifies the worker process (host and pid); admin keys only.
	Worker string `json:"worker"`
	// UpdatedAt is the time of the heartbeat.
	UpdatedAt time.Time `json:"updated_at"`
}

// Write stores st as the node's current record.
func Write(ctx context.Context, rdb redis.UniversalClient, st *Status) error {
	if st.Name == "" {
		return errors.New("nodestatus: a status needs a node name")
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("nodestatus: encode: %w", err)
	}
	_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, keyPrefix+st.Name, data, TTL)
		p.ZAdd(ctx, indexKey, redis.Z{Score: float64(st.UpdatedAt.UnixMilli()), Member: st.Name})
		return nil
	})
	if err != nil {
		return fmt.Errorf("nodestatus: write %s: %w", st.Name, err)
	}
	return nil
}

// Remove deletes a node's record (its worker stops driving it).
func Remove(ctx context.Context, rdb redis.UniversalClient, name string) error {
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keyPrefix+name)
		p.ZRem(ctx, indexKey, name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("nodestatus: remove %s: %w", name, err)
	}
	return nil
}

// List returns the records of every node with a live heartbeat, by name.
func List(ctx context.Context, rdb redis.UniversalClient) ([]Status, error) {
	names, err := rdb.ZRange(ctx, indexKey, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("nodestatus: list: %w", err)
	}
	out := []Status{}
	if len(names) == 0 {
		return out, nil
	}
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = keyPrefix + n
	}
	vals, err := rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("nodestatus: list: %w", err)
	}
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		var st Status
		if json.Unmarshal([]byte(s), &st) == nil {
			out = append(out, st)
		}
	}
	// Names whose heartbeat stopped long ago leave the index; a record that is merely
	// missing for a moment (between two heartbeats after a Redis restart) stays listed
	// in the index until then.
	cutoff := strconv.FormatInt(time.Now().Add(-TTL).UnixMilli(), 10)
	rdb.ZRemRangeByScore(ctx, indexKey, "-inf", "("+cutoff)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
