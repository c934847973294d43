package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/job"
)

// indexedKey marks that every job of the index is in its filter sets: set by the
// backfill, which runs when a filtered List finds it missing (the first one after an
// upgrade from a comfyq that kept no filter sets; on a new Redis it finds nothing to
// do).
const indexedKey = KeyPrefix + "jobs:indexed"

// indexVersion is the layout of the filter sets the marker names.
const indexVersion = "1"

func (s *Store) ensureIndexed(ctx context.Context) error {
	if s.indexed.Load() {
		return nil
	}
	v, err := s.rdb.Get(ctx, indexedKey).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("jobstore: list: %w", err)
	}
	if v != indexVersion {
		n, err := s.Backfill(ctx)
		if err != nil {
			return err
		}
		s.log.Info("job listing: filter sets backfilled from the index", "jobs", n)
		if err := s.rdb.Set(ctx, indexedKey, indexVersion, 0).Err(); err != nil {
			return fmt.Errorf("jobstore: list: %w", err)
		}
	}
	s.indexed.Store(true)
	return nil
}

// backfillBatch is how many records a backfill step reads (one ZRANGE, one MGET and
// one pipeline of ZADDs).
const backfillBatch = 500

// Backfill puts every job of the index (comfyq:jobs) into the filter sets of its
// current status, queue, template and tenant, and returns how many it saw. It is
// idempotent, and List runs it once by itself; it costs one pass over the index. A job
// whose status changes while it runs may be left in the set of its old status too:
// List drops such an entry when it meets it.
func (s *Store) Backfill(ctx context.Context) (int, error) {
	seen := 0
	for start := int64(0); ; start += backfillBatch {
		zs, err := s.rdb.ZRangeWithScores(ctx, indexKey, start, start+backfillBatch-1).Result()
		if err != nil {
			return seen, fmt.Errorf("jobstore: backfill: %w", err)
		}
		if len(zs) == 0 {
			return seen, nil
		}
		keys := make([]string, len(zs))
		for i, z := range zs {
			keys[i] = jobKey(z.Member.(string))
		}
		vals, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return seen, fmt.Errorf("jobstore: backfill: %w", err)
		}
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, v := range vals {
				str, ok := v.(string)
				if !ok {
					continue
				}
				var j job.Job
				if json.Unmarshal([]byte(str), &j) != nil {
					continue
				}
				for _, k := range indexKeys(&j) {
					p.ZAdd(ctx, k, redis.Z{Score: zs[i].Score, Member: j.ID})
					p.Expire(ctx, k, s.retention)
				}
			}
			return nil
		})
		if err != nil {
			return seen, fmt.Errorf("jobstore: backfill: %w", err)
		}
		seen += len(zs)
	}
}
