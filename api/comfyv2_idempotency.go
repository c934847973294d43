package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/jobstore"
)

// Idempotency-Key on POST /api/v2/jobs, with Stripe's semantics: the first request
// with a key is recorded; a retry with the same key and the same body gets the same
// job again (Idempotency-Replayed: true), with another body 422
// idempotency_key_reuse, and while the first is still being processed 409
// idempotency_conflict with Retry-After. Keys are scoped to the caller and expire
// after idempotencyTTL. Only a request that created a job is recorded: a refused one
// (validation, queue full) leaves the key free, as Stripe does for requests that fail
// before they execute.

const (
	idempotencyTTL = 24 * time.Hour
	// idempotencyInFlight bounds how long a key stays "in flight" if its request dies
	// before it records the outcome.
	idempotencyInFlight = time.Minute
	maxIdempotencyKey   = 255
)

// idemRecord is what Redis keeps for a key: the body's fingerprint (a keyed digest:
// the body may hold a partner-node API key, which never reaches Redis, not even as
// a plain hash) and the job it created.
type idemRecord struct {
	Fingerprint string `json:"fingerprint"`
	JobID       string `json:"job_id,omitempty"`
	AssetID     string `json:"asset_id,omitempty"` // of POST /api/v2/assets
}

// idemClaim is an Idempotency-Key being processed by this request.
type idemClaim struct {
	key, fingerprint string
}

// errIdemReplay carries the job of a replayed request.
type errIdemReplay struct{ jobID string }

func (e *errIdemReplay) Error() string { return "api: idempotent replay of job " + e.jobID }

func v2IdemKey(owner, key string) string {
	sum := sha256.Sum256([]byte(key))
	return jobstore.KeyPrefix + "v2:idem:" + owner + ":" + hex.EncodeToString(sum[:])
}

// fingerprint digests a request body canonically (object keys sorted, numbers
// verbatim), keyed by the seal key when there is one.
func (s *Server) fingerprint(body any) (string, error) {
	canon, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	key := s.v2.sealKey
	if len(key) == 0 {
		key = []byte("comfyq-idempotency")
	}
	m := hmac.New(sha256.New, key)
	m.Write(canon)
	return hex.EncodeToString(m.Sum(nil)), nil
}

// claimIdempotency starts processing a request with an Idempotency-Key. It returns
// nil (no key), a claim to complete or release, an *errIdemReplay, or the 409/422.
func (s *Server) claimIdempotency(ctx context.Context, r *http.Request, owner string, body any) (*idemClaim, error) {
	key := r.Header.Get(IdempotencyHeader)
	if key == "" {
		return nil, nil
	}
	if len(key) > maxIdempotencyKey {
		return nil, errorf(http.StatusBadRequest, CodeInvalidRequest, "an Idempotency-Key is at most %d bytes", maxIdempotencyKey)
	}
	fp, err := s.fingerprint(body)
	if err != nil {
		return nil, err
	}
	c := &idemClaim{key: v2IdemKey(owner, key), fingerprint: fp}
	rec, _ := json.Marshal(idemRecord{Fingerprint: fp})
	ok, err := s.rdb.SetNX(ctx, c.key, rec, idempotencyInFlight).Result()
	if err != nil {
		return nil, fmt.Errorf("api: idempotency key: %w", err)
	}
	if ok {
		return c, nil
	}
	data, err := s.rdb.Get(ctx, c.key).Bytes()
	if errors.Is(err, redis.Nil) {
		// Released or expired in between: the client may retry at once.
		return nil, retryAfter(errorf(http.StatusConflict, CodeIdempotencyConflict,
			"a request with this Idempotency-Key just ended without a job; retry"), 1)
	}
	if err != nil {
		return nil, fmt.Errorf("api: idempotency key: %w", err)
	}
	var prev idemRecord
	if err := json.Unmarshal(data, &prev); err != nil {
		return nil, fmt.Errorf("api: idempotency record: %w", err)
	}
	switch {
	case prev.Fingerprint != fp:
		return nil, errorf(http.StatusUnprocessableEntity, CodeIdempotencyKeyReuse,
			"this Idempotency-Key was used with another request body; use a new key for a new request")
	case prev.JobID == "":
		return nil, retryAfter(errorf(http.StatusConflict, CodeIdempotencyConflict,
			"the first request with this Idempotency-Key is still being processed; retry"), 1)
	}
	return nil, &errIdemReplay{jobID: prev.JobID}
}

// complete records the job the claimed request created, for idempotencyTTL.
func (c *idemClaim) complete(ctx context.Context, rdb redis.UniversalClient, jobID string) error {
	rec, _ := json.Marshal(idemRecord{Fingerprint: c.fingerprint, JobID: jobID})
	return rdb.Set(context.WithoutCancel(ctx), c.key, rec, idempotencyTTL).Err()
}

// release frees the key of a request that created nothing.
func (c *idemClaim) release(ctx context.Context, rdb redis.UniversalClient) {
	rdb.Del(context.WithoutCancel(ctx), c.key)
}

// assetIdempotency looks up the Idempotency-Key of an upload once its bytes are hashed
// (the body is streamed: its fingerprint is known only then): the asset a request with
// the same key and the same file made before, "" for a new key, or 422
// idempotency_key_reuse. An upload records its key with recordAssetKey.
func (s *Server) assetIdempotency(ctx context.Context, r *http.Request, owner string, fp any) (assetID, key, fingerprint string, err error) {
	k := r.Header.Get(IdempotencyHeader)
	if k == "" {
		return "", "", "", nil
	}
	if len(k) > maxIdempotencyKey {
		return "", "", "", errorf(http.StatusBadRequest, CodeInvalidRequest, "an Idempotency-Key is at most %d bytes", maxIdempotencyKey)
	}
	if fingerprint, err = s.fingerprint(fp); err != nil {
		return "", "", "", err
	}
	key = v2IdemKey(owner, "asset:"+k)
	data, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return "", key, fingerprint, nil
	}
	if err != nil {
		return "", "", "", fmt.Errorf("api: idempotency key: %w", err)
	}
	var prev idemRecord
	if err := json.Unmarshal(data, &prev); err != nil {
		return "", "", "", fmt.Errorf("api: idempotency record: %w", err)
	}
	if prev.Fingerprint != fingerprint {
		return "", "", "", errorf(http.StatusUnprocessableEntity, CodeIdempotencyKeyReuse,
			"this Idempotency-Key was used with another upload; use a new key for a new request")
	}
	return prev.AssetID, key, fingerprint, nil
}

func (s *Server) recordAssetKey(ctx context.Context, key, fingerprint, assetID string) {
	rec, _ := json.Marshal(idemRecord{Fingerprint: fingerprint, AssetID: assetID})
	if err := s.rdb.SetNX(context.WithoutCancel(ctx), key, rec, idempotencyTTL).Err(); err != nil {
		s.log.Warn("could not record an idempotency key", "asset_id", assetID, "err", err)
	}
}
