package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Preview is the latest in-progress preview image of a job (a sampler's JPEG), kept
// for live streams only: one per job, replaced by the next, gone PreviewTTL after the
// last.
type Preview struct {
	NodeID      string    `json:"node_id"`
	ContentType string    `json:"content_type"`
	Data        []byte    `json:"data"`
	At          time.Time `json:"at"`
}

// PreviewTTL is how long a job's latest preview is kept.
const PreviewTTL = 10 * time.Minute

func previewKey(id string) string { return KeyPrefix + "preview:" + id }

// SetPreview replaces the job's latest preview.
func (s *Store) SetPreview(ctx context.Context, id string, p Preview) error {
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("jobstore: preview: %w", err)
	}
	if err := s.rdb.Set(ctx, previewKey(id), data, PreviewTTL).Err(); err != nil {
		return fmt.Errorf("jobstore: preview %s: %w", id, err)
	}
	return nil
}

// Preview returns the job's latest preview, or nil when it has none.
func (s *Store) Preview(ctx context.Context, id string) (*Preview, error) {
	data, err := s.rdb.Get(ctx, previewKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("jobstore: preview %s: %w", id, err)
	}
	var p Preview
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("jobstore: decode preview %s: %w", id, err)
	}
	return &p, nil
}
