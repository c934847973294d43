package jobstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
)

// BenchmarkListFiltered lists one page (50 jobs) with filters from stores of 1k, 100k
// and 1M jobs, each in a Redis of its own: the time per page stays the same. The jobs
// are written by the create script (as Create does, pipelined to fill the store fast):
// 4 queues, 10 templates, 10 tenants, a tenth of them still queued, a hundredth
// running, the rest succeeded. Each op is one page of one filter of the list below,
// in turn; "nomatch" is a filter no job matches.
//
//	scripts/test.sh -run '^$' -bench ListFiltered -benchtime 2000x ./jobstore/
func BenchmarkListFiltered(b *testing.B) {
	filters := []job.ListOptions{
		{Status: job.StatusRunning},
		{Queue: "q1"},
		{Template: "t3", Status: job.StatusQueued},
		{Tenant: "n5", Queue: "q2", Status: job.StatusSucceeded},
		{Tenant: "n7", Template: "t7", Queue: "q3", Status: job.StatusQueued},
		{Queue: "nomatch"},
	}
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("jobs=%d", n), func(b *testing.B) {
			opt, err := redis.ParseURL(testenv.NewRedis(b))
			if err != nil {
				b.Fatal(err)
			}
			rdb := redis.NewClient(opt)
			defer rdb.Close()
			s := New(rdb, Config{})
			defer s.Close()
			ctx := context.Background()
			fill(b, ctx, s, n)
			if _, _, err := s.List(ctx, filters[0]); err != nil { // the backfill's marker
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				f := filters[i%len(filters)]
				f.Limit = 50
				jobs, _, err := s.List(ctx, f)
				if err != nil {
					b.Fatal(err)
				}
				if f.Queue != "nomatch" && len(jobs) != 50 {
					b.Fatalf("filter %+v: %d jobs", f, len(jobs))
				}
			}
		})
	}
}

func fill(b *testing.B, ctx context.Context, s *Store, n int) {
	b.Helper()
	start := time.Now()
	base := time.Now().UTC().Add(-24 * time.Hour)
	const batch = 1000
	if err := createScript.Load(ctx, s.rdb).Err(); err != nil {
		b.Fatal(err)
	}
	for done := 0; done < n; done += batch {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := done; i < min(done+batch, n); i++ {
				id, err := job.NewID()
				if err != nil {
					return err
				}
				j := &job.Job{
					ID: id, Status: job.StatusSucceeded, Attempt: 1, MaxAttempts: 3,
					Queue:     fmt.Sprintf("q%d", i%4),
					Template:  fmt.Sprintf("t%d", i%10),
					Tenant:    fmt.Sprintf("n%d", i%10),
					CreatedAt: base.Add(time.Duration(i) * time.Millisecond),
				}
				switch {
				case i%100 == 7:
					j.Status = job.StatusRunning
				case i%10 == 3:
					j.Status = job.StatusQueued
				}
				data, err := json.Marshal(j)
				if err != nil {
					return err
				}
				keys, args := s.createCall(j, data, "")
				createScript.EvalSha(ctx, p, keys, args...)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	mem, _ := s.rdb.Info(ctx, "memory").Result()
	b.Logf("%d jobs written in %s; %s", n, time.Since(start).Round(time.Millisecond), usedMemory(mem))
}

func usedMemory(info string) string {
	for _, line := range strings.Split(info, "\r\n") {
		if strings.HasPrefix(line, "used_memory_human:") {
			return line
		}
	}
	return ""
}
