package comfysim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
	"github.com/comfyq/comfyq/internal/fixtures"
)

func TestOriginCheck(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	do := func(origin string) int {
		req, _ := http.NewRequest(http.MethodGet, b.base+"/prompt", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, do(""))
	require.Equal(t, http.StatusOK, do(b.base))
	require.Equal(t, http.StatusForbidden, do("http://evil.example"))
	require.Equal(t, http.StatusForbidden, do("http://localhost:1"))
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	code, raw := b.getRaw(t, "/api/prompt")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, `{"exec_info": {"queue_remaining": 0}}`, raw)
	code, raw = b.getRaw(t, "/nope")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "404: Not Found", raw)
	code, _ = b.getRaw(t, "/interrupt")
	require.Equal(t, http.StatusMethodNotAllowed, code)

	_, raw = b.getRaw(t, "/features")
	require.Equal(t, `{"supports_preview_metadata": true, "max_upload_size": 104857600.0}`, raw)
	_, raw = b.getRaw(t, "/api/embeddings")
	require.Equal(t, `[]`, raw)
	_, raw = b.getRaw(t, "/models/checkpoints")
	require.Equal(t, `["sim-v1-5.safetensors"]`, raw)
	code, _ = b.getRaw(t, "/models/nope")
	require.Equal(t, http.StatusNotFound, code)
	_, raw = b.getRaw(t, "/models")
	require.Contains(t, raw, `"checkpoints"`)

	_, st := b.get(t, "/system_stats")
	sys := st["system"].(map[string]any)
	require.Equal(t, "0.3.64", sys["comfyui_version"])
	for _, k := range []string{"os", "ram_total", "ram_free", "required_frontend_version", "installed_templates_version",
		"required_templates_version", "python_version", "pytorch_version", "embedded_python", "argv"} {
		require.Contains(t, sys, k)
	}
	devs := st["devices"].([]any)
	require.Len(t, devs, 1)
	for _, k := range []string{"name", "type", "index", "vram_total", "vram_free", "torch_vram_total", "torch_vram_free"} {
		require.Contains(t, devs[0], k)
	}

	// /interrupt and /free answer 200 with an empty body, whatever the body.
	for _, body := range []any{nil, "not json", map[string]any{}} {
		status, reply := b.postRaw(t, "/interrupt", body)
		require.Equal(t, http.StatusOK, status)
		require.Empty(t, reply)
	}
	code, raw = b.postRaw(t, "/free", map[string]any{"free_memory": true})
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, raw)
	code, _ = b.postRaw(t, "/queue", "{")
	require.Equal(t, http.StatusInternalServerError, code)
}

// TestObjectInfoServed: /object_info serves the fixture's entries, with the
// configured checkpoints in ckpt_name.
func TestObjectInfoServed(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{Models: []string{"b.safetensors", "a.ckpt"}})
	fixture := fixtures.ReadObjectInfo(t)
	var want map[string]any
	dec := json.NewDecoder(bytes.NewReader(fixture))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&want))

	_, got := b.get(t, "/object_info")
	require.Len(t, got, 29)
	for name, entry := range got {
		w := want[name]
		if name == "CheckpointLoaderSimple" {
			spec := entry.(map[string]any)["input"].(map[string]any)["required"].(map[string]any)["ckpt_name"].([]any)
			require.Equal(t, []any{"a.ckpt", "b.safetensors"}, spec[0])
			spec[0] = []any{}
		}
		require.True(t, reflect.DeepEqual(w, entry), "%s differs from the fixture", name)
	}
	_, one := b.get(t, "/object_info/KSampler")
	require.True(t, reflect.DeepEqual(map[string]any{"KSampler": want["KSampler"]}, one))
	_, raw := b.getRaw(t, "/object_info/Nope")
	require.Equal(t, "{}", raw)
}

// TestCacheModes: classic keeps only what the current prompt reuses, lru
// keeps results across prompts, none keeps nothing; /free drops caches.
func TestCacheModes(t *testing.T) {
	t.Parallel()
	promptA, promptB := emptyImageSave("a"), emptyImageSave("b")
	promptB["1"].(map[string]any)["inputs"].(map[string]any)["color"] = 7
	cachedOf := func(t *testing.T, b *bundle, ws *wsClient, p map[string]any) []any {
		id := b.queue(t, map[string]any{"prompt": p, "client_id": "c"})
		for _, m := range ws.untilDone(id) {
			if m.Type == "execution_cached" {
				return m.Data["nodes"].([]any)
			}
		}
		return nil
	}
	for _, tc := range []struct {
		mode         string
		aAgain, aBAA []any
	}{
		{"classic", []any{"1", "2"}, []any{}},
		{"lru", []any{"1", "2"}, []any{"1", "2"}},
		{"none", []any{}, []any{}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			b := setup(t, comfysim.Options{CacheMode: tc.mode})
			ws := dialWS(t, b.base, "c")
			ws.next()
			require.Equal(t, []any{}, cachedOf(t, b, ws, promptA))
			require.Equal(t, tc.aAgain, cachedOf(t, b, ws, promptA))
			cachedOf(t, b, ws, promptB)
			require.Equal(t, tc.aBAA, cachedOf(t, b, ws, promptA), "A, B, then A")
		})
	}
	t.Run("free", func(t *testing.T) {
		t.Parallel()
		b := setup(t, comfysim.Options{})
		ws := dialWS(t, b.base, "c")
		ws.next()
		cachedOf(t, b, ws, promptA)
		b.post(t, "/free", map[string]any{"free_memory": true, "unload_models": true})
		// The flags apply when the worker is next free, before its next prompt.
		require.Equal(t, []any{}, cachedOf(t, b, ws, promptA))
	})
	t.Run("renumbered graph hits the cache", func(t *testing.T) {
		t.Parallel()
		b := setup(t, comfysim.Options{})
		ws := dialWS(t, b.base, "c")
		ws.next()
		cachedOf(t, b, ws, txt2img(1, 2))
		renum := map[string]any{}
		for k, v := range txt2img(1, 2) {
			n := v.(map[string]any)
			for name, in := range n["inputs"].(map[string]any) {
				if l, ok := in.([]any); ok {
					n["inputs"].(map[string]any)[name] = []any{"n" + l[0].(string), l[1]}
				}
			}
			renum["n"+k] = n
		}
		require.Len(t, cachedOf(t, b, ws, renum), 7)
		// A new seed re-runs the sampler and what follows only.
		cached := cachedOf(t, b, ws, txt2img(2, 2))
		require.ElementsMatch(t, []any{"4", "5", "6", "7"}, cached)
	})
}
