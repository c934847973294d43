package template

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy"
)

func TestCompileWithoutAStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	info := func(context.Context) (comfy.ObjectInfo, error) { return loadInfo(t), nil }

	tmpl, err := Compile(ctx, Definition{Name: "from-ui", Workflow: readFixture(t, "default_embedding.ui.json")}, info)
	require.NoError(t, err)
	require.Equal(t, names(Discover(loadWorkflow(t, "default_embedding.api.json"), loadInfo(t), "")), names(tmpl.Params))
	require.Zero(t, tmpl.Version, "a store assigns the version")
	require.True(t, tmpl.CreatedAt.IsZero())

	_, err = Compile(ctx, Definition{Name: "Bad Name", Workflow: readFixture(t, "default_embedding.api.json")}, info)
	se := asSpecError(t, err)
	require.Equal(t, CodeInvalidTemplate, se.Code)
	require.Equal(t, "name", se.Field)

	_, err = Compile(ctx, Definition{Name: "x", Workflow: json.RawMessage(`{"1": {"class_type": "VAEDecode", "inputs": {"samples": ["9", 0]}}}`)}, info)
	se = asSpecError(t, err)
	require.Equal(t, CodeInvalidWorkflow, se.Code)
	require.NotEmpty(t, se.Details, "workflow problems are listed")

	_, err = Compile(ctx, Definition{Name: "from-ui", Workflow: readFixture(t, "default_embedding.ui.json")}, nil)
	se = asSpecError(t, err)
	require.Equal(t, CodeInvalidWorkflow, se.Code)
	require.Contains(t, se.Message, "UI-format")

	_, err = Compile(ctx, Definition{Name: "x", Workflow: readFixture(t, "default_embedding.api.json")},
		func(context.Context) (comfy.ObjectInfo, error) { return nil, errors.New("connection refused") })
	require.ErrorIs(t, err, ErrObjectInfo)
	require.ErrorContains(t, err, "connection refused")
}

// TestLinksNoRedis keeps the template types, and the HTTP API's Go client that uses
// them, free of the Redis client and the stores: storage is package templatestore.
func TestLinksNoRedis(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".", "../api/apiclient").Output()
	require.NoError(t, err)
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/redis/", "github.com/hibiken/asynq", "github.com/comfyq/comfyq/jobstore", "github.com/comfyq/comfyq/templatestore"} {
			require.False(t, strings.HasPrefix(pkg, banned), "template or api/apiclient links %s", pkg)
		}
	}
}
