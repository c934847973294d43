package templatestore

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/template"
)

func TestStorePutGetVersions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clock := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	b.store.cfg.Now = func() time.Time { return clock }

	def := template.Definition{Name: "txt2img", Description: "text to image", Workflow: readFixture(t, "default_embedding.api.json")}
	t1, err := b.store.Put(b.ctx, def)
	require.NoError(t, err)
	require.Equal(t, 1, t1.Version)
	require.Equal(t, clock, t1.CreatedAt)
	require.Len(t, t1.Params, 8)

	got, err := b.store.Get(b.ctx, "txt2img")
	require.NoError(t, err)
	require.Equal(t, 1, got.Version)
	require.Equal(t, "text to image", got.Description)
	seed, ok := got.Param("seed")
	require.True(t, ok)
	require.Equal(t, num("18446744073709551615"), seed.ExactMaximum(), "exact after a trip through Redis")
	require.Equal(t, num("193694018275622"), seed.Default)
	require.Equal(t, num("193694018275622"), got.Workflow["3"].Inputs["seed"])
	want, err := json.Marshal(t1)
	require.NoError(t, err)
	have, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(have))

	clock = clock.Add(time.Hour)
	def.Description = "v2"
	t2, err := b.store.Put(b.ctx, def)
	require.NoError(t, err)
	require.Equal(t, 2, t2.Version)
	require.Equal(t, clock.Add(-time.Hour), t2.CreatedAt, "created_at is kept")
	require.Equal(t, clock, t2.UpdatedAt)

	_, err = b.store.Create(b.ctx, def)
	require.ErrorIs(t, err, template.ErrExists)
	got, err = b.store.Get(b.ctx, "txt2img")
	require.NoError(t, err)
	require.Equal(t, 2, got.Version, "a refused Create changes nothing")
	require.Equal(t, "v2", got.Description)
}

func TestStoreConcurrentPutsGetDistinctVersions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	def := template.Definition{Name: "busy", Workflow: readFixture(t, "default_embedding.api.json")}
	const n = 8
	versions := make(chan int, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tmpl, err := b.store.Put(b.ctx, def)
			if err != nil {
				errs <- err
				return
			}
			versions <- tmpl.Version
		}()
	}
	wg.Wait()
	close(versions)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	seen := map[int]bool{}
	for v := range versions {
		require.False(t, seen[v], "version %d given twice", v)
		seen[v] = true
	}
	for v := 1; v <= n; v++ {
		require.True(t, seen[v], "version %d missing", v)
	}
	got, err := b.store.Get(b.ctx, "busy")
	require.NoError(t, err)
	require.Equal(t, n, got.Version)
}

func TestStoreListDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	wf := readFixture(t, "default_embedding.api.json")
	for _, name := range []string{"zeta", "alpha", "mid-1", "mid_0"} {
		_, err := b.store.Create(b.ctx, template.Definition{Name: name, Workflow: wf})
		require.NoError(t, err)
	}
	list, err := b.store.List(b.ctx)
	require.NoError(t, err)
	var got []string
	for _, tmpl := range list {
		got = append(got, tmpl.Name)
	}
	require.Equal(t, []string{"alpha", "mid-1", "mid_0", "zeta"}, got)

	require.NoError(t, b.store.Delete(b.ctx, "mid-1"))
	require.ErrorIs(t, b.store.Delete(b.ctx, "mid-1"), template.ErrNotFound)
	require.ErrorIs(t, b.store.Delete(b.ctx, "Not A Name"), template.ErrNotFound)
	_, err = b.store.Get(b.ctx, "mid-1")
	require.ErrorIs(t, err, template.ErrNotFound)
	_, err = b.store.Get(b.ctx, "../etc")
	require.ErrorIs(t, err, template.ErrNotFound)

	// A name left in the index without its key (written by hand) is skipped.
	require.NoError(t, b.rdb.ZAdd(b.ctx, IndexKey, redis.Z{Member: "ghost"}).Err())
	list, err = b.store.List(b.ctx)
	require.NoError(t, err)
	require.Len(t, list, 3)

	require.NoError(t, b.rdb.Exists(b.ctx, KeyPrefix+"alpha").Err())
	n, err := b.rdb.Exists(b.ctx, "comfyq:template:alpha").Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the documented key")
}

func TestStoreRefusesBadDefinitions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	wf := readFixture(t, "default_embedding.api.json")
	cases := []struct {
		name  string
		def   template.Definition
		code  job.Code
		field string
	}{
		{"bad name", template.Definition{Name: "Bad Name", Workflow: wf}, template.CodeInvalidTemplate, "name"},
		{"long name", template.Definition{Name: strings.Repeat("a", 65), Workflow: wf}, template.CodeInvalidTemplate, "name"},
		{"no workflow", template.Definition{Name: "x"}, template.CodeInvalidWorkflow, "workflow"},
		{"not json", template.Definition{Name: "x", Workflow: json.RawMessage(`[1,2]`)}, template.CodeInvalidWorkflow, "workflow"},
		{"dangling link", template.Definition{Name: "x", Workflow: json.RawMessage(`{"1": {"class_type": "VAEDecode", "inputs": {"samples": ["9", 0]}}}`)}, template.CodeInvalidWorkflow, "workflow"},
		{"bad param", template.Definition{Name: "x", Workflow: wf, Params: []template.ParamSpec{{Name: "p", Targets: []string{"CLIPTextEncode.inputs.text"}}}}, template.CodeInvalidTemplate, "params.p"},
	}
	for _, c := range cases {
		_, err := b.store.Put(b.ctx, c.def)
		se := asSpecError(t, err)
		require.Equal(t, c.code, se.Code, c.name)
		require.Equal(t, c.field, se.Field, c.name)
	}
	_, err := b.store.Put(b.ctx, cases[4].def)
	require.NotEmpty(t, asSpecError(t, err).Details, "workflow problems are listed")
	list, err := b.store.List(b.ctx)
	require.NoError(t, err)
	require.Empty(t, list, "nothing stored")
}

func TestStoreUIFormat(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tmpl, err := b.store.Put(b.ctx, template.Definition{Name: "from-ui", Workflow: readFixture(t, "default_embedding.ui.json")})
	require.NoError(t, err)
	api := template.Discover(loadWorkflow(t, "default_embedding.api.json"), b.info, "")
	require.Equal(t, names(api), names(tmpl.Params), "the UI file gives the parameters of its API pair")
	p := paramsByName(t, tmpl.Params)
	require.Equal(t, api[0].Targets, p["prompt"].Targets)
	require.Equal(t, api[0].Default, p["prompt"].Default)
	require.Equal(t, num("18446744073709551615"), p["seed"].ExactMaximum())
	require.Equal(t, num("193694018275622"), p["seed"].Default)

	// Titles set in the UI make the parameters.
	var doc map[string]any
	require.NoError(t, json.Unmarshal(readFixture(t, "default_embedding.ui.json"), &doc))
	for _, n := range doc["nodes"].([]any) {
		node := n.(map[string]any)
		switch node["id"].(float64) {
		case 6:
			node["title"] = "Input: subject"
		case 3:
			node["title"] = "Input: sampler"
		}
	}
	titled, err := json.Marshal(doc)
	require.NoError(t, err)
	tmpl, err = b.store.Put(b.ctx, template.Definition{Name: "titled-ui", Workflow: titled})
	require.NoError(t, err)
	require.Equal(t, []string{"sampler_seed", "sampler_steps", "sampler_cfg", "sampler_sampler_name",
		"sampler_scheduler", "sampler_denoise", "subject"}, names(tmpl.Params))
	p = paramsByName(t, tmpl.Params)
	require.Equal(t, []string{"6.inputs.text"}, p["subject"].Targets)
	require.Equal(t, template.TypeNumber, p["sampler_cfg"].Type)

	// UI format without object_info: refused, saying why.
	bare := New(b.rdb, Config{})
	_, err = bare.Put(b.ctx, template.Definition{Name: "from-ui", Workflow: readFixture(t, "default_embedding.ui.json")})
	se := asSpecError(t, err)
	require.Equal(t, template.CodeInvalidWorkflow, se.Code)
	require.Contains(t, se.Message, "UI-format")
	// API format without object_info: types from the values.
	tmpl, err = bare.Put(b.ctx, template.Definition{Name: "bare", Workflow: readFixture(t, "default_embedding.api.json")})
	require.NoError(t, err)
	seed, _ := tmpl.Param("seed")
	require.Nil(t, seed.Maximum)

	// object_info that cannot be read fails the registration.
	down := New(b.rdb, Config{ObjectInfo: func(context.Context) (comfy.ObjectInfo, error) {
		return nil, errors.New("connection refused")
	}})
	_, err = down.Put(b.ctx, template.Definition{Name: "bare", Workflow: readFixture(t, "default_embedding.api.json")})
	require.ErrorIs(t, err, template.ErrObjectInfo)
	require.ErrorContains(t, err, "connection refused")
}

func TestStoreTitledWorkflowResolve(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.store.Put(b.ctx, template.Definition{Name: "titled", Workflow: json.RawMessage(titledWorkflow)})
	require.NoError(t, err)
	res, err := b.store.Resolve(b.ctx, "titled", map[string]any{"prompt": "a fox", "sampler_seed": num("18446744073709551615")})
	require.NoError(t, err)
	require.Equal(t, 1, res.Version)
	wf, err := comfy.ParseWorkflow(res.Workflow)
	require.NoError(t, err)
	require.Equal(t, "a fox", wf["6"].Inputs["text"])
	require.Equal(t, "a fox", wf["16"].Inputs["text"])
	require.Equal(t, num("18446744073709551615"), wf["3"].Inputs["seed"], "exact through the JSON of job.Resolved")
	require.Equal(t, map[string][]string{"photo": {"10.inputs.image"}}, res.ImageTargets)

	_, err = b.store.Resolve(b.ctx, "nope", nil)
	require.ErrorIs(t, err, template.ErrNotFound)
	se := asSpecError(t, err)
	require.Equal(t, template.CodeUnknownTemplate, se.Code)
	require.Equal(t, "template", se.Field)

	_, err = b.store.Resolve(b.ctx, "titled", map[string]any{"photo": "x.png", "prompt": 1})
	v := asSpecError(t, err).Details.([]template.Violation)
	require.Len(t, v, 2)
}

// TestProducerSubmitsTemplates runs a template submission through the producer library,
// which takes the Store as its TemplateResolver.
func TestProducerSubmitsTemplates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.store.Put(b.ctx, template.Definition{Name: "img2img", Workflow: readFixture(t, "loadimage_img2img.api.json")})
	require.NoError(t, err)
	tmpl, err := b.store.Put(b.ctx, template.Definition{Name: "img2img", Workflow: readFixture(t, "loadimage_img2img.api.json")})
	require.NoError(t, err)
	p, err := producer.New(producer.Config{Redis: b.rdb, Templates: b.store})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })

	j, err := p.Enqueue(b.ctx, job.Spec{
		Template: "img2img",
		Params:   map[string]any{"prompt": "a fox", "seed": 7},
		Images:   map[string]job.ImageSource{"image": {URL: "https://example.com/fox.png"}},
	})
	require.NoError(t, err)
	require.Equal(t, "img2img", j.Template)
	require.Equal(t, tmpl.Version, j.TemplateVersion)

	_, err = p.Enqueue(b.ctx, job.Spec{Template: "img2img", Params: map[string]any{"seed": -1, "steps": "many"}})
	se := asSpecError(t, err)
	require.Equal(t, template.CodeInvalidParams, se.Code)
	require.Len(t, se.Details, 2)

	_, err = p.Enqueue(b.ctx, job.Spec{Template: "missing"})
	require.ErrorIs(t, err, template.ErrNotFound)
}

func TestStoreFailsWithoutRedis(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.rdb.Close())
	_, err := b.store.Put(b.ctx, template.Definition{Name: "x", Workflow: readFixture(t, "default_embedding.api.json")})
	require.Error(t, err)
	require.NotErrorIs(t, err, job.ErrInvalidSpec)
	_, err = b.store.Get(b.ctx, "x")
	require.Error(t, err)
	require.NotErrorIs(t, err, template.ErrNotFound)
	_, err = b.store.List(b.ctx)
	require.Error(t, err)
	require.Error(t, b.store.Delete(b.ctx, "x"))
}

func TestResolveNotFoundError(t *testing.T) {
	t.Parallel()
	err := error(&notFoundError{name: "x", SpecError: &job.SpecError{Code: template.CodeUnknownTemplate, Field: "template", Message: `template "x" not found`}})
	require.ErrorIs(t, err, template.ErrNotFound)
	require.ErrorIs(t, err, job.ErrInvalidSpec)
	var se *job.SpecError
	require.True(t, errors.As(err, &se))
	require.Equal(t, template.CodeUnknownTemplate, se.Code)
	require.Equal(t, `template: not found: "x"`, err.Error())
}
