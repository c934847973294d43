package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/comfysim/simtest"
	"github.com/comfyq/comfyq/internal/fixtures"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
)

const (
	cliUserKey  = "cli-user-key-0123456789"
	cliAdminKey = "cli-admin-key-0123456789"
)

// TestAPICommands runs `comfyq api` and drives it with the CLI's --api mode: a UI-format
// workflow registered as a template, submitted with parameters, followed to its end.
func TestAPICommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	redisURL := testenv.NewRedis(t)
	outputs := t.TempDir()
	objectInfo := fixtures.Path(fixtures.ObjectInfo)
	simAddr, apiAddr := freeAddr(t), freeAddr(t)
	background(t, "sim", "--listen", simAddr, "--comfyui-version", simtest.Version(t), "--model", "v1-5-pruned-emaonly-fp16.safetensors")
	waitHTTP(t, "http://"+simAddr+"/system_stats")
	background(t, "worker", "--redis", redisURL, "--storage", "file://"+outputs, "--comfy", "http://"+simAddr, "--log-level", "warn")
	background(t, "api", "--redis", redisURL, "--storage", "file://"+outputs, "--listen", apiAddr,
		"--api-keys", cliUserKey, "--admin-keys", cliAdminKey, "--object-info", objectInfo, "--log-level", "warn")
	waitHTTP(t, "http://"+apiAddr+"/healthz")
	apiURL := "http://" + apiAddr
	ui := fixtures.Workflow("default_graph.ui.json")

	// Registering needs the admin key.
	code, _, stderr := run(t, ctx, "template", "add", "txt2img", "--workflow", ui, "--api", apiURL, "--api-key", cliUserKey)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "forbidden")
	code, out, stderr := run(t, ctx, "template", "add", "txt2img", "--workflow", ui, "--description", "the default graph",
		"--api", apiURL, "--api-key", cliAdminKey)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	require.Contains(t, out, "template txt2img version 1")
	require.Contains(t, out, "prompt")
	code, _, stderr = run(t, ctx, "template", "add", "txt2img", "--workflow", ui, "--api", apiURL, "--api-key", cliAdminKey)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--replace")
	code, out, _ = run(t, ctx, "template", "add", "txt2img", "--workflow", ui, "--replace", "--api", apiURL, "--api-key", cliAdminKey)
	require.Equal(t, 0, code)
	require.Contains(t, out, "version 2")
	code, _, stderr = run(t, ctx, "template", "add", "titled", "--workflow", ui, "--param-from-titles", "--api", apiURL, "--api-key", cliAdminKey)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no node of the workflow is titled")

	// A title naming an input makes that input the parameter; other names are reported.
	titled := filepath.Join(t.TempDir(), "titled.json")
	require.NoError(t, os.WriteFile(titled, []byte(`{
 "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}, "_meta": {"title": "Input: color"}},
 "2": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}, "_meta": {"title": "Input: size"}},
 "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
}`), 0o644))
	code, out, stderr = run(t, ctx, "template", "add", "colors", "--workflow", titled, "--api", apiURL, "--api-key", cliAdminKey)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	require.Regexp(t, `(?m)^  color\s+integer`, out)
	require.NotContains(t, out, "color_width")
	require.Contains(t, out, "names made")
	require.Contains(t, out, `size_width  from input width of node 2 ("Input: size")`)

	code, out, _ = run(t, ctx, "template", "list", "--api", apiURL, "--api-key", cliUserKey)
	require.Equal(t, 0, code)
	require.Contains(t, out, "txt2img")
	code, out, _ = run(t, ctx, "template", "show", "txt2img", "--json", "--api", apiURL, "--api-key", cliUserKey)
	require.Equal(t, 0, code)
	var info api.TemplateInfo
	require.NoError(t, json.Unmarshal([]byte(out), &info))
	require.Equal(t, 2, info.Version)
	require.NotEmpty(t, info.ParamsSchema)

	// Submit with parameters and wait, through the API.
	code, out, stderr = run(t, ctx, "submit", "--template", "txt2img", "--param", "prompt=a red fox", "--param", "steps=3",
		"--wait", "--json", "--api", apiURL, "--api-key", cliUserKey)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	var j job.Job
	require.NoError(t, json.Unmarshal([]byte(out), &j), out)
	require.Equal(t, job.StatusSucceeded, j.Status)
	require.Equal(t, 2, j.TemplateVersion)
	require.Len(t, j.Outputs, 1)
	require.Equal(t, apiURL+"/v1/files/"+j.Outputs[0].Key, j.Outputs[0].URL)

	code, out, _ = run(t, ctx, "status", j.ID, "--api", apiURL, "--api-key", cliUserKey)
	require.Equal(t, 0, code)
	require.Contains(t, out, "succeeded")
	code, _, stderr = run(t, ctx, "cancel", j.ID, "--api", apiURL, "--api-key", cliUserKey)
	require.Equal(t, 0, code)
	require.Contains(t, stderr, "already ended")
	code, _, stderr = run(t, ctx, "status", "01937c9e-8f3a-7b2c-9d1e-4f5a6b7c8d9e", "--api", apiURL, "--api-key", cliUserKey)
	require.Equal(t, 4, code)
	require.Contains(t, stderr, "not found")
	code, _, stderr = run(t, ctx, "status", j.ID, "--api", apiURL, "--api-key", "wrong-key-0123456789")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "check --api-key")

	// Bad parameters are all reported, nothing is enqueued.
	code, _, stderr = run(t, ctx, "submit", "--template", "txt2img", "--param", "steps=-1", "--param", "colour=red",
		"--api", apiURL, "--api-key", cliUserKey)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "invalid_params")
	require.Contains(t, stderr, "colour")
	require.Contains(t, stderr, "steps")

	// The same template store, straight from Redis.
	code, out, _ = run(t, ctx, "template", "show", "txt2img", "--redis", redisURL)
	require.Equal(t, 0, code)
	require.Contains(t, out, "version      2")
	code, _, _ = run(t, ctx, "template", "rm", "txt2img", "--api", apiURL, "--api-key", cliAdminKey)
	require.Equal(t, 0, code)
	code, _, stderr = run(t, ctx, "template", "rm", "txt2img", "--redis", redisURL)
	require.Equal(t, 4, code)
	require.Contains(t, stderr, "not found")

	// Keys through the API: an admin creates one; its tenant does not see the user
	// key's job.
	code, _, stderr = run(t, ctx, "keys", "create", "--name", "x", "--tenant", "acme", "--api", apiURL, "--api-key", cliUserKey)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "forbidden")
	code, out, stderr = run(t, ctx, "keys", "create", "--name", "acme-app", "--tenant", "acme", "--api", apiURL, "--api-key", cliAdminKey)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	secret := regexp.MustCompile(`secret: (\S+)`).FindStringSubmatch(out)
	require.NotNil(t, secret, out)
	code, _, stderr = run(t, ctx, "status", j.ID, "--api", apiURL, "--api-key", secret[1])
	require.NotEqual(t, 0, code, "another tenant's job is not found")
	require.Contains(t, stderr, "not found")
	code, out, _ = run(t, ctx, "keys", "list", "--api", apiURL, "--api-key", cliAdminKey)
	require.Equal(t, 0, code)
	require.Contains(t, out, "acme-app")
	require.Contains(t, out, "(flag or environment)", "the static keys are listed, without secrets")
	require.NotContains(t, out, cliUserKey)
}

func TestAPIRefusesToStartWithoutKeys(t *testing.T) {
	t.Parallel()
	code, _, stderr := run(t, context.Background(), "api", "--redis", testenv.NewRedis(t), "--storage", "file://"+t.TempDir(),
		"--listen", freeAddr(t))
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "--no-auth")
}

func TestWorkflowConvert(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	objectInfo := fixtures.Path(fixtures.ObjectInfo)
	dir := fixtures.Path(fixtures.Workflows)
	out := filepath.Join(t.TempDir(), "api.json")
	code, _, stderr := run(t, ctx, "workflow", "convert", filepath.Join(dir, "default_embedding.ui.json"), "--object-info", objectInfo, "-o", out)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	got, err := comfy.ParseWorkflow(data)
	require.NoError(t, err)
	want, err := comfy.ParseWorkflow(mustRead(t, filepath.Join(dir, "default_embedding.api.json")))
	require.NoError(t, err)
	require.ElementsMatch(t, want.NodeIDs(), got.NodeIDs())
	for id, n := range want {
		require.Equal(t, n.ClassType, got[id].ClassType, id)
	}

	code, stdoutText, _ := run(t, ctx, "workflow", "convert", filepath.Join(dir, "default_graph.ui.json"), "--object-info", objectInfo)
	require.Equal(t, 0, code)
	_, err = comfy.ParseWorkflow([]byte(stdoutText))
	require.NoError(t, err)

	code, _, stderr = run(t, ctx, "workflow", "convert", filepath.Join(dir, "default_embedding.api.json"), "--object-info", objectInfo)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "already an API-format workflow")
	code, _, stderr = run(t, ctx, "workflow", "convert", filepath.Join(dir, "default_graph.ui.json"))
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--object-info is required")
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	require.NoError(t, err)
	return data
}
