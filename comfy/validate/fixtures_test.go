package validate_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/validate"
	"github.com/comfyq/comfyq/internal/fixtures"
)

func objectInfo(t testing.TB) comfy.ObjectInfo {
	t.Helper()
	info, err := comfy.ParseObjectInfo(fixtures.ReadObjectInfo(t))
	require.NoError(t, err)
	return info
}

// noOutputs are the fixtures that are fragments of a graph, without an output node:
// ComfyUI refuses them too (prompt_no_outputs).
var noOutputs = map[string]bool{
	"reroute_legacy_branching.ui.json": true,
	"reroute_legacy_floating.ui.json":  true,
}

// olderPrompts are API-format prompts that an older ComfyUI wrote, before
// DualCFGGuider's "style" became a required input: ComfyUI 0.3.64 refuses them as
// they are (required_input_missing). Their UI files, converted, fill the input with
// its default and validate.
var olderPrompts = map[string]string{
	"groupnode_sdxl_edit.api.json":  "37:7",
	"groupnode_hidream_e1.api.json": "37:7",
}

// TestRealWorkflowsValidate: every real workflow of testdata validates against the
// object_info of ComfyUI 0.3.64, API-format files as they are and UI-format files as
// converted.
func TestRealWorkflowsValidate(t *testing.T) {
	t.Parallel()
	info := objectInfo(t)
	files, err := filepath.Glob(fixtures.Path(fixtures.Workflows, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			var wf comfy.Workflow
			if strings.HasSuffix(name, ".ui.json") {
				wf, err = comfy.ConvertUI(data, info, nil)
			} else {
				wf, err = comfy.ParseWorkflow(data)
			}
			require.NoError(t, err)
			err = validate.Prompt(wf, info, validate.Options{})
			if noOutputs[name] {
				var ve *comfy.ValidationError
				require.True(t, errors.As(err, &ve), "%v", err)
				require.Equal(t, "prompt_no_outputs", ve.Err.Type)
				return
			}
			if node, ok := olderPrompts[name]; ok {
				var ve *comfy.ValidationError
				require.True(t, errors.As(err, &ve), "%v", err)
				require.Len(t, ve.NodeErrors, 1, "%v", err)
				ne := ve.NodeErrors[node]
				require.Equal(t, "DualCFGGuider", ne.ClassType, "%v", err)
				require.Len(t, ne.Errors, 1)
				require.Equal(t, "required_input_missing", ne.Errors[0].Type)
				require.Equal(t, "style", ne.Errors[0].Details)
				return
			}
			require.NoError(t, err)
			// Without object_info, only the structure is checked.
			require.NoError(t, validate.Prompt(wf, nil, validate.Options{}))
		})
	}
}
