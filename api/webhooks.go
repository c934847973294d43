package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/webhook/delivery"
)

// Webhooks is what the API needs of the webhook dispatcher.
type Webhooks interface {
	Notify(ctx context.Context, event string, j *job.Job)
	Replay(ctx context.Context, j *job.Job) ([]job.Delivery, error)
}

// replayWebhooks re-sends a finished job's terminal webhook event.
func (s *Server) replayWebhooks(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	j, err := s.jobFor(r, id)
	if err != nil {
		return err
	}
	if s.cfg.Webhooks == nil {
		return errorf(http.StatusNotImplemented, "not_implemented", "webhooks are not configured on this server")
	}
	deliveries, err := s.cfg.Webhooks.Replay(r.Context(), j)
	switch {
	case errors.Is(err, delivery.ErrNotFinished):
		return errorf(http.StatusConflict, CodeConflict, "the job has not finished: only a finished job's terminal event can be replayed")
	case errors.Is(err, delivery.ErrNoSubscription):
		return errorf(http.StatusConflict, CodeConflict, "no webhook subscription wants this job's events")
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"deliveries": deliveries})
	return nil
}
