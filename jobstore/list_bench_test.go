package jobstore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
)

// BenchmarkListFiltered lists one page (50 jobs) with filters from stores of 1k, 100k
// and 1M jobs, each in a Redis of its own, and shows that the time per page does not
// grow with the store. The stores are asked in turn, one page each, so that a change
// of the machine's load falls on all of them alike; each is reported as
// ns/page@SIZE, with the ratio of the largest to the smallest (1.0: flat).
//
// The jobs are written by the create script (as Create does, pipelined to fill the
// stores fast): 4 queues, 5 templates, 3 tenants; a tenth of them still queued, a
// twentieth running, the rest succeeded; every eighth job is of queue q0, template t0
// and tenant n0 (so that "all4" has full pages at 1k too). "nomatch" is a filter no job matches (the
// case that walked the whole index before the filter sets). COMFYQ_BENCH_LIST_MAX
// (default 1000000) caps the largest store.
//
//	go test -run '^$' -bench ListFiltered -benchtime 3000x ./jobstore/
func BenchmarkListFiltered(b *testing.B) {
	sizes := []int{1_000, 100_000, 1_000_000}
	if v, err := strconv.Atoi(os.Getenv("COMFYQ_BENCH_LIST_MAX")); err == nil {
		sizes = slices.DeleteFunc(sizes, func(n int) bool { return n > v })
	}
	ctx := context.Background()
	stores := make([]*Store, len(sizes))
	for i, n := range sizes {
		opt, err := redis.ParseURL(testenv.NewRedis(b))
		if err != nil {
			b.Fatal(err)
		}
		// Filling pipelines a thousand scripts at a time: no retry of a slow batch
		// (it would write its jobs twice).
		opt.ReadTimeout, opt.MaxRetries = time.Minute, -1
		rdb := redis.NewClient(opt)
		b.Cleanup(func() { rdb.Close() })
		stores[i] = New(rdb, Config{})
		fill(b, ctx, stores[i], n)
		start := time.Now()
		if _, err := stores[i].Backfill(ctx); err != nil { // what an upgraded store does once
			b.Fatal(err)
		}
		b.Logf("%d jobs: the backfill took %s", n, time.Since(start).Round(time.Millisecond))
		if err := rdb.Set(ctx, indexedKey, indexVersion, 0).Err(); err != nil {
			b.Fatal(err)
		}
	}
	filters := []struct {
		name string
		opts job.ListOptions
	}{
		{"none", job.ListOptions{}},
		{"status", job.ListOptions{Status: job.StatusRunning}},
		{"queue", job.ListOptions{Queue: "q1"}},
		{"template+status", job.ListOptions{Template: "t3", Status: job.StatusQueued}},
		{"tenant+queue+status", job.ListOptions{Tenant: "n1", Queue: "q2", Status: job.StatusSucceeded}},
		{"all4", job.ListOptions{Tenant: "n0", Template: "t0", Queue: "q0", Status: job.StatusSucceeded}},
		{"nomatch", job.ListOptions{Queue: "nomatch"}},
	}
	for _, f := range filters {
		b.Run("filter="+f.name, func(b *testing.B) {
			opts := f.opts
			opts.Limit = 50
			spent := make([]time.Duration, len(stores))
			pages := make([]int, len(stores))
			for i := 0; b.Loop(); i++ {
				k := i % len(stores)
				start := time.Now()
				jobs, _, err := stores[k].List(ctx, opts)
				spent[k] += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				pages[k]++
				if f.name != "nomatch" && len(jobs) == 0 {
					b.Fatalf("filter %+v: no jobs", f.opts)
				}
			}
			per := make([]float64, len(stores))
			for k, n := range sizes {
				per[k] = float64(spent[k].Nanoseconds()) / float64(max(pages[k], 1))
				b.ReportMetric(per[k], "ns/page@"+sizeName(n))
			}
			b.ReportMetric(per[len(per)-1]/per[0], "largest/smallest")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
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
					Template:  fmt.Sprintf("t%d", i%5),
					Tenant:    fmt.Sprintf("n%d", i%3),
					CreatedAt: base.Add(time.Duration(i) * time.Millisecond),
				}
				if i%8 == 0 { // one combination common enough for full pages at 1k
					j.Queue, j.Template, j.Tenant = "q0", "t0", "n0"
				}
				switch {
				case i%20 == 7:
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
