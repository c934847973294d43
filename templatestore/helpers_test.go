package templatestore

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/internal/fixtures"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/template"
)

// objectInfo is parsed once: the file is large and every test reads it.
var objectInfo = sync.OnceValues(func() (comfy.ObjectInfo, error) {
	data, err := os.ReadFile(fixtures.Path(fixtures.ObjectInfo))
	if err != nil {
		return nil, err
	}
	return comfy.ParseObjectInfo(data)
})

func loadInfo(tb testing.TB) comfy.ObjectInfo {
	tb.Helper()
	info, err := objectInfo()
	require.NoError(tb, err, "read the object_info fixture (expected in %s)", fixtures.Dir())
	return info
}

func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	return fixtures.ReadWorkflow(tb, name)
}

func loadWorkflow(tb testing.TB, name string) comfy.Workflow {
	tb.Helper()
	wf, err := comfy.ParseWorkflow(readFixture(tb, name))
	require.NoError(tb, err)
	return wf
}

// titledWorkflow is the titled workflow of package template's discovery tests: every
// kind of titled node, two of them sharing a title, and a LoadImage.
const titledWorkflow = `{
 "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5.safetensors"}},
 "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}, "_meta": {"title": "Input: prompt"}},
 "16": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}, "_meta": {"title": "Input: prompt"}},
 "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
 "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}, "_meta": {"title": "Input: size"}},
 "10": {"class_type": "LoadImage", "inputs": {"image": "cat.png", "upload": "image"}, "_meta": {"title": "Input: photo"}},
 "11": {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}},
 "3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
        "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["11", 0]},
        "_meta": {"title": "Input: sampler"}},
 "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
 "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}}
}`

// bundle is what a Redis-backed test needs.
type bundle struct {
	ctx   context.Context
	rdb   redis.UniversalClient
	store *Store
	info  comfy.ObjectInfo
}

// setup starts a private Redis for the test and a Store with the object_info fixture.
func setup(t *testing.T) *bundle {
	t.Helper()
	opt, err := redis.ParseURL(testenv.NewRedis(t))
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	info := loadInfo(t)
	return &bundle{
		ctx: context.Background(),
		rdb: rdb,
		store: New(rdb, Config{ObjectInfo: func(context.Context) (comfy.ObjectInfo, error) {
			return info, nil
		}}),
		info: info,
	}
}

func asSpecError(tb testing.TB, err error) *job.SpecError {
	tb.Helper()
	var se *job.SpecError
	require.ErrorAs(tb, err, &se)
	require.ErrorIs(tb, err, job.ErrInvalidSpec)
	return se
}

// paramsByName indexes params and checks names are unique.
func paramsByName(tb testing.TB, params []template.Param) map[string]template.Param {
	tb.Helper()
	m := map[string]template.Param{}
	for _, p := range params {
		_, dup := m[p.Name]
		require.False(tb, dup, "duplicate parameter %q", p.Name)
		m[p.Name] = p
	}
	return m
}

func names(params []template.Param) []string {
	out := make([]string, len(params))
	for i, p := range params {
		out[i] = p.Name
	}
	return out
}

func num(s string) json.Number { return json.Number(s) }
