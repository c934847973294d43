// Package keystore keeps comfyq's managed API keys in Redis: each key's record
// (apikey.Key) under the SHA-256 digest of its secret, never the secret itself.
//
//	comfyq:apikey:DIGEST   the key's record (JSON)
//	comfyq:apikeys         hash: key id -> digest (listing, revocation)
//
// Create returns the secret once; nothing can show it again.
package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/apikey"
)

const (
	recordPrefix = "comfyq:apikey:"
	indexKey     = "comfyq:apikeys"
)

// ErrNotFound is returned for a key id or secret the store does not know.
var ErrNotFound = errors.New("keystore: key not found")

// Store is the managed keys' store on Redis.
type Store struct {
	rdb redis.UniversalClient
}

// New returns a Store on rdb; it does not close rdb.
func New(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

// Create stores a new key with a fresh id and secret, and returns the record and the
// secret. k's ID, Hint, Static and CreatedAt are set here; the rest is validated.
func (s *Store) Create(ctx context.Context, k apikey.Key) (*apikey.Key, string, error) {
	if k.Role == "" {
		k.Role = apikey.RoleUser
	}
	if err := k.Validate(); err != nil {
		return nil, "", err
	}
	secret, err := apikey.NewSecret()
	if err != nil {
		return nil, "", err
	}
	if k.ID, err = apikey.NewID(); err != nil {
		return nil, "", err
	}
	now := time.Now().UTC().Truncate(time.Second)
	k.CreatedAt, k.Hint, k.Static = &now, apikey.Hint(secret), false
	data, err := json.Marshal(&k)
	if err != nil {
		return nil, "", fmt.Errorf("keystore: encode: %w", err)
	}
	digest := apikey.Digest(secret)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, recordPrefix+digest, data, 0)
		p.HSet(ctx, indexKey, k.ID, digest)
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("keystore: create: %w", err)
	}
	return &k, secret, nil
}

// Lookup returns the record of the key whose secret has this SHA-256 digest
// (apikey.Digest), or ErrNotFound.
func (s *Store) Lookup(ctx context.Context, digest string) (*apikey.Key, error) {
	data, err := s.rdb.Get(ctx, recordPrefix+digest).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: lookup: %w", err)
	}
	var k apikey.Key
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("keystore: decode: %w", err)
	}
	return &k, nil
}

// List returns every managed key, oldest first.
func (s *Store) List(ctx context.Context) ([]*apikey.Key, error) {
	index, err := s.rdb.HGetAll(ctx, indexKey).Result()
	if err != nil {
		return nil, fmt.Errorf("keystore: list: %w", err)
	}
	keys := make([]string, 0, len(index))
	for _, digest := range index {
		keys = append(keys, recordPrefix+digest)
	}
	out := []*apikey.Key{}
	if len(keys) == 0 {
		return out, nil
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("keystore: list: %w", err)
	}
	for _, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		var k apikey.Key
		if json.Unmarshal([]byte(str), &k) == nil {
			out = append(out, &k)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].CreatedAt, out[j].CreatedAt
		if a != nil && b != nil && !a.Equal(*b) {
			return a.Before(*b)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Get returns the record of the key with this id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*apikey.Key, error) {
	digest, err := s.rdb.HGet(ctx, indexKey, id).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: get: %w", err)
	}
	return s.Lookup(ctx, digest)
}

// Revoke deletes the key with this id: its secret stops working at once. It returns
// the record it deleted, or ErrNotFound.
func (s *Store) Revoke(ctx context.Context, id string) (*apikey.Key, error) {
	k, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	digest, err := s.rdb.HGet(ctx, indexKey, id).Result()
	if err != nil {
		return nil, fmt.Errorf("keystore: revoke: %w", err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, recordPrefix+digest)
		p.HDel(ctx, indexKey, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("keystore: revoke: %w", err)
	}
	return k, nil
}
