package jobstore

import (
	"net/url"
	"slices"

	"github.com/comfyq/comfyq/job"
)

// indexKey is the sorted set of every job id, scored by creation time (Unix ms).
const indexKey = KeyPrefix + "jobs"

// Listing with filters reads one sorted set per combination of filter values, kept by
// the scripts that write the records: comfyq:jobs?queue=default&status=running holds
// exactly the running jobs of queue default, scored by creation time like
// comfyq:jobs. A page of any filtered list is then one range read and one MGET, the
// same with a thousand jobs or a million; intersecting per-filter sets at read time
// (ZINTERSTORE) would cost in proportion to the sets.
//
// A job is in one set per non-empty subset of its status, queue, template and tenant
// (3 sets for a job without template or tenant, 15 with both), which is what it costs
// in memory; a status change moves it between the sets that name the status.

// filterKey is the sorted set of the jobs matching every filter in v.
func filterKey(v url.Values) string { return indexKey + "?" + v.Encode() }

// dimensions returns the filterable fields of a job that are set, by query name.
func dimensions(status job.Status, queue, template, tenant string) url.Values {
	v := url.Values{}
	for _, d := range [][2]string{{"status", string(status)}, {"queue", queue}, {"template", template}, {"tenant", tenant}} {
		if d[1] != "" {
			v.Set(d[0], d[1])
		}
	}
	return v
}

// indexKeys returns the filter sets job j belongs to (comfyq:jobs aside), sorted.
func indexKeys(j *job.Job) []string {
	if j == nil {
		return nil
	}
	dims := dimensions(j.Status, j.Queue, j.Template, j.Tenant)
	names := make([]string, 0, len(dims))
	for name := range dims {
		names = append(names, name)
	}
	slices.Sort(names)
	keys := make([]string, 0, 1<<len(names)-1)
	for mask := 1; mask < 1<<len(names); mask++ {
		v := url.Values{}
		for i, name := range names {
			if mask&(1<<i) != 0 {
				v.Set(name, dims.Get(name))
			}
		}
		keys = append(keys, filterKey(v))
	}
	slices.Sort(keys)
	return keys
}

// listKey returns the sorted set that lists the jobs matching opts' filters.
func listKey(opts job.ListOptions) string {
	v := dimensions(opts.Status, opts.Queue, opts.Template, opts.Tenant)
	if len(v) == 0 {
		return indexKey
	}
	return filterKey(v)
}

// matches reports whether j passes opts' filters.
func matches(j *job.Job, opts job.ListOptions) bool {
	return (opts.Status == "" || j.Status == opts.Status) && (opts.Queue == "" || j.Queue == opts.Queue) &&
		(opts.Template == "" || j.Template == opts.Template) && (opts.Tenant == "" || j.Tenant == opts.Tenant)
}

// moves returns the filter sets a job leaves and joins when its record changes from
// before to after.
func moves(before, after *job.Job) (leave, join []string) {
	was, is := indexKeys(before), indexKeys(after)
	for _, k := range was {
		if !slices.Contains(is, k) {
			leave = append(leave, k)
		}
	}
	for _, k := range is {
		if !slices.Contains(was, k) {
			join = append(join, k)
		}
	}
	return leave, join
}
