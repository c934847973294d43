package job_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
)

// Metadata numbers survive a round trip through the Job JSON (the record in Redis, an
// event, an API answer) digit for digit.
func TestJobKeepsMetadataNumbersExact(t *testing.T) {
	t.Parallel()
	in := &job.Job{ID: "x", Metadata: map[string]any{"big": json.Number("9007199254740993"), "f": json.Number("0.1")}}
	data, err := json.Marshal(in)
	require.NoError(t, err)
	var out job.Job
	require.NoError(t, json.Unmarshal(data, &out))
	require.Equal(t, json.Number("9007199254740993"), out.Metadata["big"])
	require.Equal(t, json.Number("0.1"), out.Metadata["f"])
	require.Equal(t, in.Metadata, in.Clone().Metadata)

	var ev job.Event
	require.NoError(t, json.Unmarshal([]byte(`{"type":"status","job":{"id":"y","metadata":{"n":9007199254740993}}}`), &ev))
	require.Equal(t, json.Number("9007199254740993"), ev.Job.Metadata["n"])
}

// A payload with sealed extra_data is version 2, so that a worker of version 1 hands it
// back instead of running it without its sealed fields; others stay version 1.
func TestPayloadVersion(t *testing.T) {
	t.Parallel()
	plain, err := job.EncodePayload(&job.Payload{JobID: "0190a5a4-0000-7000-8000-000000000000"})
	require.NoError(t, err)
	require.Contains(t, string(plain), `"v":1`)
	sealed, err := job.EncodePayload(&job.Payload{JobID: "0190a5a4-0000-7000-8000-000000000000", SealedExtraData: "x"})
	require.NoError(t, err)
	require.Contains(t, string(sealed), `"v":2`)
	p, err := job.DecodePayload(sealed)
	require.NoError(t, err)
	require.Equal(t, "x", p.SealedExtraData)
}
