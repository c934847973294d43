package api

import (
	"net/http"
	"strconv"

	"github.com/comfyq/comfyq/job"
)

// templateScanLimit bounds how many job records one filtered page reads: a template
// with few jobs among many others answers a short page and a cursor to go on from,
// instead of reading the whole index in one request.
const templateScanLimit = 5000

// listJobsOfTemplate is GET /v1/jobs?template=NAME: the store's pages (status and queue
// filtered there) with the jobs of other templates left out.
func (s *Server) listJobsOfTemplate(w http.ResponseWriter, r *http.Request, opts job.ListOptions, name string) error {
	want := opts.Limit
	if want <= 0 {
		want = 50
	}
	jobs := []*job.Job{}
	next := ""
	scanned := 0
	page := opts
	page.Limit = min(max(want, 100), 500)
	for {
		batch, cursor, err := s.store.List(r.Context(), page)
		if err != nil {
			return err
		}
		scanned += len(batch)
		for i, j := range batch {
			if j.Template != name {
				continue
			}
			jobs = append(jobs, j)
			if len(jobs) == want {
				if i < len(batch)-1 || cursor != "" {
					next = cursorAfter(j)
				}
				return s.writeJobList(w, r, jobs, next)
			}
		}
		if cursor == "" {
			return s.writeJobList(w, r, jobs, "")
		}
		if scanned >= templateScanLimit {
			return s.writeJobList(w, r, jobs, cursor)
		}
		page.Cursor = cursor
	}
}

// cursorAfter is the cursor of the page that follows job j: the store's cursor form,
// the index score (creation time in Unix ms) and the id. A test checks that it is the
// form jobstore.Store.List hands out.
func cursorAfter(j *job.Job) string {
	return strconv.FormatInt(j.CreatedAt.UnixMilli(), 10) + "_" + j.ID
}

func (s *Server) writeJobList(w http.ResponseWriter, r *http.Request, jobs []*job.Job, next string) error {
	for _, j := range jobs {
		s.presentJob(r.Context(), r, j)
	}
	writeJSON(w, http.StatusOK, JobList{Jobs: jobs, NextCursor: next})
	return nil
}
