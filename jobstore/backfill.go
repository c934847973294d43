package jobstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/job"
)

// indexedKey marks that every job of the index is in its filter sets: set by the
// backfill, which the first filtered List of a process starts when the marker is
// missing (after an upgrade from a comfyq that kept no filter sets; on a new Redis it
// finds nothing to do). indexingKey is held by the process running it.
const (
	indexedKey  = KeyPrefix + "jobs:indexed"
	indexingKey = KeyPrefix + "jobs:indexing"
)

// indexVersion is the layout of the filter sets the marker names.
const indexVersion = "1"

// indexingFor bounds how long one process holds the backfill: past it (the process
// died), another one's first filtered List starts it again.
const indexingFor = 10 * time.Minute

// ensureIndexed starts the backfill in the background, once per process, unless the
// marker says it is done. Listing goes on meanwhile from the filter sets: new jobs are
// all there, older ones appear as the backfill reaches them.
func (s *Store) ensureIndexed(ctx context.Context) {
	if s.indexed.Load() {
		return
	}
	if v, err := s.rdb.Get(ctx, indexedKey).Result(); err == nil && v == indexVersion {
		s.indexed.Store(true)
		return
	}
	s.backfillOnce.Do(func() {
		bctx, cancel := context.WithCancel(context.Background())
		s.stopBackfill = cancel
		s.backfillDone = make(chan struct{})
		go func() {
			defer close(s.backfillDone)
			s.backfillOnceInRedis(bctx)
		}()
	})
}

// backfillOnceInRedis runs Backfill unless another process is, and sets the marker.
func (s *Store) backfillOnceInRedis(ctx context.Context) {
	mine, err := s.rdb.SetNX(ctx, indexingKey, "1", indexingFor).Result()
	if err != nil || !mine {
		return
	}
	defer s.rdb.Del(context.WithoutCancel(ctx), indexingKey)
	start := time.Now()
	n, err := s.Backfill(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("job listing: backfilling the filter sets failed; the next process to list will try again", "err", err)
		}
		return
	}
	if err := s.rdb.Set(ctx, indexedKey, indexVersion, 0).Err(); err != nil {
		s.log.Warn("job listing: could not mark the filter sets backfilled", "err", err)
		return
	}
	s.indexed.Store(true)
	s.log.Info("job listing: filter sets backfilled from the index", "jobs", n, "took", time.Since(start).Round(time.Millisecond))
}

// backfillBatch is how many records a backfill step reads (one ZRANGE, one MGET and
// one pipeline of ZADDs).
const backfillBatch = 500

// Backfill puts every job of the index (comfyq:jobs) into the filter sets of its
// current status, queue, template and tenant, and returns how many it saw. It is
// idempotent, and List starts it once by itself (see ensureIndexed); it costs one pass
// over the index. A job
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
