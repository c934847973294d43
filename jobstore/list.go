package jobstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/job"
)

// List returns jobs newest first, and the cursor of the next page ("" at the end).
// With filters it reads the one sorted set of that combination (see indexKeys): a
// page costs the same whatever the number of jobs.
func (s *Store) List(ctx context.Context, opts job.ListOptions) ([]*job.Job, string, error) {
	if opts.Limit <= 0 {
		opts.Limit = 50
	}
	if opts.Limit > 500 {
		opts.Limit = 500
	}
	key := listKey(opts)
	if key != indexKey {
		s.ensureIndexed(ctx)
	}
	upper := "+inf"
	skipUntil := ""
	if opts.Cursor != "" {
		score, id, ok := strings.Cut(opts.Cursor, "_")
		if _, err := strconv.ParseInt(score, 10, 64); !ok || err != nil || !job.ValidID(id) {
			return nil, "", &job.SpecError{Code: job.CodeInvalidRequest, Field: "cursor", Message: "malformed cursor"}
		}
		upper, skipUntil = score, id
	}
	var out []*job.Job
	batch := int64(min(opts.Limit+1, 200))
	offset := int64(0)
	for len(out) < opts.Limit {
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Max: upper, Min: "-inf", Offset: offset, Count: batch}).Result()
		if err != nil {
			return nil, "", fmt.Errorf("jobstore: list: %w", err)
		}
		if len(zs) == 0 {
			return out, "", nil
		}
		offset += int64(len(zs))
		keys := make([]string, len(zs))
		for i, z := range zs {
			keys[i] = jobKey(z.Member.(string))
		}
		vals, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, "", fmt.Errorf("jobstore: list: %w", err)
		}
		var gone, stale []any
		for i, v := range vals {
			id := zs[i].Member.(string)
			if skipUntil != "" {
				if id == skipUntil {
					skipUntil = ""
				}
				continue
			}
			str, ok := v.(string)
			if !ok {
				gone = append(gone, id) // expired record
				continue
			}
			var j job.Job
			if json.Unmarshal([]byte(str), &j) != nil {
				continue
			}
			if !matches(&j, opts) {
				// Listed by a backfill that raced a status change, or written by an
				// older comfyq that kept no filter sets: not in this set any more.
				stale = append(stale, id)
				continue
			}
			out = append(out, &j)
			if len(out) == opts.Limit {
				s.forget(ctx, key, gone, stale)
				return out, strconv.FormatInt(int64(zs[i].Score), 10) + "_" + id, nil
			}
		}
		s.forget(ctx, key, gone, stale)
		if skipUntil != "" {
			// The cursor's own entry was not in this score range any more; start over
			// strictly below its score.
			skipUntil = ""
			score, _, _ := strings.Cut(opts.Cursor, "_")
			upper = "(" + score
			offset = 0
		}
	}
	return out, "", nil
}

// forget removes from the listed set the entries of expired records (from the index
// too) and of records that no longer match it.
func (s *Store) forget(ctx context.Context, key string, gone, stale []any) {
	if len(gone)+len(stale) == 0 {
		return
	}
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if len(gone) > 0 {
			p.ZRem(ctx, key, gone...)
			if key != indexKey {
				p.ZRem(ctx, indexKey, gone...)
			}
		}
		if len(stale) > 0 && key != indexKey {
			p.ZRem(ctx, key, stale...)
		}
		return nil
	})
}
