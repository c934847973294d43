package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// A retry while the first request with its Idempotency-Key is in flight is 409
// idempotency_conflict with Retry-After; after the first records its job, a replay.
func TestIdempotencyInFlight(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)

	req := httptest.NewRequest("POST", "/api/v2/jobs", nil)
	req.Header.Set(IdempotencyHeader, "k1")
	body := map[string]any{"workflow": map[string]any{"1": 1}}
	claim, err := s.claimIdempotency(t.Context(), req, "", body)
	require.NoError(t, err)
	require.NotNil(t, claim)

	_, err = s.claimIdempotency(t.Context(), req, "", body)
	var he *httpError
	require.True(t, errors.As(err, &he), "err: %v", err)
	require.Equal(t, http.StatusConflict, he.status)
	require.Equal(t, string(CodeIdempotencyConflict), he.info.Code)
	require.Equal(t, "1", he.header.Get("Retry-After"))

	_, err = s.claimIdempotency(t.Context(), req, "", map[string]any{"workflow": 2})
	require.True(t, errors.As(err, &he))
	require.Equal(t, string(CodeIdempotencyKeyReuse), he.info.Code, "another body, even in flight")

	require.NoError(t, claim.complete(t.Context(), s.rdb, "job-1"))
	_, err = s.claimIdempotency(t.Context(), req, "", body)
	var replay *errIdemReplay
	require.True(t, errors.As(err, &replay), "err: %v", err)
	require.Equal(t, "job-1", replay.jobID)

	// Keys are per owner.
	c2, err := s.claimIdempotency(t.Context(), req, "someone-else", body)
	require.NoError(t, err)
	require.NotNil(t, c2)
	ttl, err := s.rdb.TTL(t.Context(), v2IdemKey("", "k1")).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, idempotencyTTL-idempotencyInFlight, "a recorded key lives 24 h")
}
