package job_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
)

func TestSpecNormalize(t *testing.T) {
	t.Parallel()
	s := job.Spec{Workflow: []byte(`{"1":{}}`)}
	require.NoError(t, s.Normalize())
	require.Equal(t, "default", s.Queue)
	require.Equal(t, 600, s.TimeoutS)
	require.Equal(t, 4, s.MaxAttempts)

	for name, bad := range map[string]job.Spec{
		"neither":       {},
		"both":          {Workflow: []byte(`{}`), Template: "x"},
		"queue":         {Workflow: []byte(`{}`), Queue: "bad queue!"},
		"attempts":      {Workflow: []byte(`{}`), MaxAttempts: 100},
		"timeout":       {Workflow: []byte(`{}`), TimeoutS: -1},
		"huge timeout":  {Workflow: []byte(`{}`), TimeoutS: 1 << 62},
		"image":         {Workflow: []byte(`{}`), Images: map[string]job.ImageSource{"1.inputs.image": {URL: "http://x", Key: "k"}}},
		"event":         {Workflow: []byte(`{}`), Webhook: &job.WebhookSpec{URL: "https://x", Events: []string{"job.exploded"}}},
		"params no tp":  {Workflow: []byte(`{}`), Params: map[string]any{"a": 1}},
		"reserved":      {Workflow: []byte(`{}`), Queue: "comfyq_webhooks"},
		"reserved case": {Workflow: []byte(`{}`), Queue: "ComfyQ_jobs"},
		"bad tenant":    {Workflow: []byte(`{}`), Tenant: "a b"},
	} {
		err := bad.Normalize()
		var se *job.SpecError
		require.True(t, errors.As(err, &se), name)
		require.ErrorIs(t, err, job.ErrInvalidSpec, name)
	}
}
