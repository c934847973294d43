package api

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/comfyq/comfyq/internal/metrics"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/quota"
)

// Codes of the quota refusals.
const (
	CodeRateLimited     job.Code = "rate_limited"    // 429: the key's submissions per second
	CodeTooManyInFlight job.Code = "too_many_jobs"   // 429: the key's jobs not yet ended
	CodeQueueForbidden  job.Code = "queue_forbidden" // 403: a queue the key may not use
)

// admit applies the caller's key to a submission before anything is stored: the job
// belongs to the key's tenant (never to one the body names), goes only to the queues
// the key allows, and counts against the key's quotas. It returns done, to be called
// with the new job's id once it is enqueued, or with "" when the submission failed:
// the in-flight place is then given back.
func (s *Server) admit(r *http.Request, spec *job.Spec) (func(jobID string), error) {
	noop := func(string) {}
	spec.Tenant = ownerOf(r)
	if err := spec.Normalize(); err != nil {
		return noop, err
	}
	k := callerOf(r)
	if k == nil || s.cfg.NoAuth {
		return noop, nil
	}
	if !k.AllowsQueue(spec.Queue) {
		metrics.SubmissionsRefused.WithLabelValues(k.Tenant, metrics.RefusedQueue).Inc()
		e := errorf(http.StatusForbidden, CodeQueueForbidden, "this key may not submit to queue %q (allowed: %v)", spec.Queue, k.Queues)
		e.info.Field = "queue"
		return noop, e
	}
	ctx := r.Context()
	ok, wait, err := s.limiter.Allow(ctx, k.ID, k.Quota.Rate, k.Quota.BucketSize())
	if err != nil {
		return noop, err
	}
	if !ok {
		metrics.SubmissionsRefused.WithLabelValues(k.Tenant, metrics.RefusedRate).Inc()
		secs := int(math.Ceil(wait.Seconds()))
		e := errorf(http.StatusTooManyRequests, CodeRateLimited, "this key may submit %g jobs per second (bursts of %d); retry in %d s",
			k.Quota.Rate, k.Quota.BucketSize(), max(secs, 1))
		e.header = http.Header{"Retry-After": {strconv.Itoa(max(secs, 1))}}
		return noop, e
	}
	res, err := s.inFlight.Reserve(ctx, k.ID, k.Quota.MaxInFlight)
	if errors.Is(err, quota.ErrFull) {
		metrics.SubmissionsRefused.WithLabelValues(k.Tenant, metrics.RefusedInFlight).Inc()
		return noop, errorf(http.StatusTooManyRequests, CodeTooManyInFlight,
			"this key has %d jobs that have not ended, as many as its quota allows; submit again when some end", k.Quota.MaxInFlight)
	}
	if err != nil {
		return noop, err
	}
	ctx = context.WithoutCancel(ctx) // the place is settled even when the client left
	return func(jobID string) {
		if jobID == "" {
			res.Release(ctx)
			return
		}
		if err := res.Commit(ctx, jobID); err != nil {
			s.log.Warn("in-flight quota: cannot record the job; its place is given back in a minute", "job_id", jobID, "tenant", k.Tenant, "err", err)
		}
	}, nil
}
