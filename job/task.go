package job

import (
	"encoding/json"
	"fmt"
)

// asynq task types. A breaking payload change gets a new type name, with both handlers
// registered until the old queue drains.
const (
	TypeJob     = "comfyq:job"
	TypeWebhook = "comfyq:webhook"
)

// PayloadVersion is the newest version of Payload this code reads and writes: 2 for a
// payload with SealedExtraData (a worker of version 1 would run it without its sealed
// fields, so it must hand it back), 1 otherwise.
const PayloadVersion = 2

// Payload is the body of a comfyq:job task: everything a worker needs to run the job,
// already resolved (templates applied, UI format converted).
type Payload struct {
	V     int    `json:"v"`
	JobID string `json:"job_id"`
	// Tenant is the job's tenant (Job.Tenant): the worker hands its turn in the
	// queue's fair share on when it takes the task.
	Tenant string `json:"tenant,omitempty"`
	// Prompt is the API-format workflow to submit.
	Prompt json.RawMessage `json:"prompt"`
	// Images maps an input path ("10.inputs.image") to the file to upload there.
	Images   map[string]ImageSource `json:"images,omitempty"`
	TimeoutS int                    `json:"timeout_s"`
	// RetryOn lists the job's own retryable exception types (Spec.RetryOn).
	RetryOn []string     `json:"retry_on,omitempty"`
	Webhook *WebhookSpec `json:"webhook,omitempty"`
	// ExtraPNGInfo is passed to ComfyUI as extra_data.extra_pnginfo (e.g. the UI workflow).
	ExtraPNGInfo map[string]json.RawMessage `json:"extra_pnginfo,omitempty"`
	// SealedExtraData is a JSON object of extra_data fields for the prompt (a Comfy API
	// v2 submission's api_key_comfy_org), encrypted with the deployment's seal key
	// (package internal/seal, context SealContext): secrets never sit in Redis readable.
	SealedExtraData string `json:"sealed_extra_data,omitempty"`
}

// SealContext is the authenticated context of Payload.SealedExtraData.
const SealContext = "comfyq:extra_data"

// EncodePayload encodes a task payload.
func EncodePayload(p *Payload) ([]byte, error) {
	if p.V == 0 {
		p.V = 1
		if p.SealedExtraData != "" {
			p.V = 2
		}
	}
	return json.Marshal(p)
}

// DecodePayload decodes a task payload, refusing versions this code does not know.
func DecodePayload(data []byte) (*Payload, error) {
	var p Payload
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("job: decode payload: %w", err)
	}
	if p.V > PayloadVersion {
		return nil, fmt.Errorf("job: payload version %d is newer than this worker understands (%d): upgrade the worker", p.V, PayloadVersion)
	}
	if !ValidID(p.JobID) {
		return nil, fmt.Errorf("job: payload has an invalid job id %q", p.JobID)
	}
	return &p, nil
}
