package jobstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
)

func ids(jobs []*job.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

// Every combination of filters lists exactly its jobs, newest first, across pages,
// and follows status changes.
func TestStoreListFilters(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	base := time.Now().UTC().Add(-time.Hour)
	var all []*job.Job
	for i := range 24 {
		j := newJob(t)
		j.CreatedAt = base.Add(time.Duration(i) * time.Second)
		j.Queue = []string{"default", "high"}[i%2]
		j.Template = []string{"", "txt2img", "upscale"}[i%3]
		j.Tenant = []string{"", "acme", "globex", "initech"}[i%4]
		_, _, err := s.Create(ctx, j, "")
		require.NoError(t, err)
		all = append(all, j)
	}
	for i, j := range all {
		if i%5 == 0 {
			got, err := s.Update(ctx, j.ID, func(j *job.Job) error { j.Status = job.StatusRunning; return nil })
			require.NoError(t, err)
			all[i] = got
		}
		if i%10 == 0 {
			got, err := s.Update(ctx, j.ID, func(j *job.Job) error { j.Status = job.StatusSucceeded; return nil })
			require.NoError(t, err)
			all[i] = got
		}
	}
	var filters []job.ListOptions
	for _, st := range []job.Status{"", job.StatusQueued, job.StatusRunning, job.StatusSucceeded, job.StatusFailed} {
		for _, q := range []string{"", "default", "high"} {
			for _, tpl := range []string{"", "txt2img", "upscale"} {
				for _, tn := range []string{"", "acme", "initech", "nobody"} {
					filters = append(filters, job.ListOptions{Status: st, Queue: q, Template: tpl, Tenant: tn})
				}
			}
		}
	}
	for _, f := range filters {
		var want []string
		for i := len(all) - 1; i >= 0; i-- {
			j := all[i]
			if (f.Status == "" || j.Status == f.Status) && (f.Queue == "" || j.Queue == f.Queue) &&
				(f.Template == "" || j.Template == f.Template) && (f.Tenant == "" || j.Tenant == f.Tenant) {
				want = append(want, j.ID)
			}
		}
		var got []string
		page := f
		page.Limit = 2
		for {
			jobs, next, err := s.List(ctx, page)
			require.NoError(t, err)
			got = append(got, ids(jobs)...)
			if next == "" {
				break
			}
			page.Cursor = next
		}
		require.Equal(t, want, got, "filter %+v", f)
	}
}

// Records written before the filter sets existed (only in comfyq:jobs) are listed
// under filters after the one-off backfill that the first filtered List runs.
func TestStoreListBackfillsOldRecords(t *testing.T) {
	t.Parallel()
	s, rdb := setup(t)
	ctx := context.Background()
	old := newJob(t)
	old.Queue = "high"
	data, err := json.Marshal(old)
	require.NoError(t, err)
	require.NoError(t, rdb.Set(ctx, jobstore.KeyPrefix+"job:"+old.ID, data, time.Hour).Err())
	require.NoError(t, rdb.ZAdd(ctx, jobstore.KeyPrefix+"jobs", redis.Z{Score: float64(old.CreatedAt.UnixMilli()), Member: old.ID}).Err())
	fresh := newJob(t)
	fresh.Queue = "high"
	_, _, err = s.Create(ctx, fresh, "")
	require.NoError(t, err)

	// The first filtered list starts the backfill in the background and answers from
	// the filter sets at once: the new job is there.
	jobs, _, err := s.List(ctx, job.ListOptions{Queue: "high", Status: job.StatusQueued})
	require.NoError(t, err)
	require.Contains(t, ids(jobs), fresh.ID)
	require.Eventually(t, func() bool {
		return rdb.Get(ctx, jobstore.KeyPrefix+"jobs:indexed").Val() == "1"
	}, 10*time.Second, 10*time.Millisecond, "the backfill ends and says so")
	jobs, _, err = s.List(ctx, job.ListOptions{Queue: "high", Status: job.StatusQueued})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{old.ID, fresh.ID}, ids(jobs))

	// An old record changed later moves between the sets like any other.
	_, err = s.Update(ctx, old.ID, func(j *job.Job) error { j.Status = job.StatusRunning; return nil })
	require.NoError(t, err)
	jobs, _, err = s.List(ctx, job.ListOptions{Queue: "high", Status: job.StatusQueued})
	require.NoError(t, err)
	require.Equal(t, []string{fresh.ID}, ids(jobs))
	jobs, _, err = s.List(ctx, job.ListOptions{Status: job.StatusRunning})
	require.NoError(t, err)
	require.Equal(t, []string{old.ID}, ids(jobs))
}
