package comfysim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

type jsonNumber = json.Number

// videoPrompt is EmptyImage → CreateVideo → SaveVideo.
func videoPrompt() map[string]any {
	return map[string]any{
		"1": map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 32, "height": 16, "batch_size": 3, "color": 255}},
		"2": map[string]any{"class_type": "CreateVideo", "inputs": map[string]any{"images": []any{"1", 0}, "fps": 24}},
		"3": map[string]any{"class_type": "SaveVideo", "inputs": map[string]any{"video": []any{"2", 0}, "filename_prefix": "video/ComfyUI", "format": "auto", "codec": "auto"}},
	}
}

// audioPrompt is EmptyLatentAudio → VAEDecodeAudio (VAELoader) → SaveAudio.
func audioPrompt() map[string]any {
	return map[string]any{
		"1": map[string]any{"class_type": "EmptyLatentAudio", "inputs": map[string]any{"seconds": 2, "batch_size": 2}},
		"2": map[string]any{"class_type": "VAELoader", "inputs": map[string]any{"vae_name": "pixel_space"}},
		"3": map[string]any{"class_type": "VAEDecodeAudio", "inputs": map[string]any{"samples": []any{"1", 0}, "vae": []any{"2", 0}}},
		"4": map[string]any{"class_type": "SaveAudio", "inputs": map[string]any{"audio": []any{"3", 0}, "filename_prefix": "audio/ComfyUI"}},
	}
}

// TestVideoOutput: a 64 MiB virtual video, streamed with its size announced.
func TestVideoOutput(t *testing.T) {
	t.Parallel()
	const size = 64 << 20
	b := setup(t, comfysim.Options{VideoSize: size})
	ws := dialWS(t, b.base, "c")
	ws.next()
	p := b.queue(t, map[string]any{"prompt": videoPrompt(), "client_id": "c"})
	ms := ws.untilDone(p)
	var executed msg
	for _, m := range ms {
		if m.Type == "executed" {
			executed = m
		}
	}
	require.Contains(t, string(executed.Raw), `"output": {"images": [{"filename": "ComfyUI_00001_.mp4", "subfolder": "video", "type": "output"}], "animated": [true]}`)
	_, err := os.Stat(filepath.Join(b.sim.Dir(), "output", "video", "ComfyUI_00001_.mp4"))
	require.True(t, os.IsNotExist(err), "virtual outputs are never written to disk")

	resp, err := http.Get(b.base + "/view?filename=ComfyUI_00001_.mp4&subfolder=video&type=output")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "67108864", resp.Header.Get("Content-Length"))
	require.Equal(t, "video/mp4", resp.Header.Get("Content-Type"))
	head := make([]byte, 12)
	_, err = io.ReadFull(resp.Body, head)
	require.NoError(t, err)
	require.Equal(t, "ftyp", string(head[4:8]))
	n, err := io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	require.EqualValues(t, size-12, n)

	// Deterministic: a range read equals the same bytes of a full read.
	req, _ := http.NewRequest(http.MethodGet, b.base+"/view?filename=ComfyUI_00001_.mp4&subfolder=video", nil)
	req.Header.Set("Range", "bytes=1000-1099")
	r1, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	part, _ := io.ReadAll(r1.Body)
	r1.Body.Close()
	require.Len(t, part, 100)
	r2, err := http.Get(b.base + "/view?filename=ComfyUI_00001_.mp4&subfolder=video")
	require.NoError(t, err)
	full := make([]byte, 1100)
	_, err = io.ReadFull(r2.Body, full)
	r2.Body.Close()
	require.NoError(t, err)
	require.True(t, bytes.Equal(part, full[1000:]))

	// SaveWEBM writes .webm under images with animated too; the counter
	// counts virtual files.
	p2 := b.queue(t, map[string]any{"client_id": "c", "prompt": map[string]any{
		"1": map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 8, "height": 8, "batch_size": 2, "color": 1}},
		"2": map[string]any{"class_type": "SaveWEBM", "inputs": map[string]any{"images": []any{"1", 0}, "filename_prefix": "video/ComfyUI", "codec": "vp9", "fps": 24, "crf": 32}},
	}})
	h := waitHistory(t, b, p2)
	require.Equal(t, jsonOf(t, map[string]any{"images": []any{map[string]any{"filename": "ComfyUI_00002_.webm", "subfolder": "video", "type": "output"}}, "animated": []any{true}}),
		jsonOf(t, h["outputs"].(map[string]any)["2"]))
}

func TestAudioOutput(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{AudioSize: 5000})
	p := b.queue(t, map[string]any{"prompt": audioPrompt()})
	h := waitHistory(t, b, p)
	require.JSONEq(t, `{"audio": [{"filename": "ComfyUI_00001_.flac", "subfolder": "audio", "type": "output"},
		{"filename": "ComfyUI_00002_.flac", "subfolder": "audio", "type": "output"}]}`, jsonOf(t, h["outputs"].(map[string]any)["4"]))
	code, hdr, body := httpDo(t, http.MethodGet, b.base+"/view?filename=ComfyUI_00002_.flac&subfolder=audio", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "audio/flac", hdr.Get("Content-Type"))
	require.Len(t, body, 5000)
	require.Equal(t, "fLaC", string(body[:4]))
}

func TestPreviewNodes(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	p := b.queue(t, map[string]any{"prompt": map[string]any{
		"1": map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 8, "height": 8, "batch_size": 2, "color": 0}},
		"2": map[string]any{"class_type": "PreviewImage", "inputs": map[string]any{"images": []any{"1", 0}}},
		"3": map[string]any{"class_type": "PreviewAny", "inputs": map[string]any{"source": "hello"}},
		"4": map[string]any{"class_type": "PreviewAny", "inputs": map[string]any{"source": []any{"1", 0}}},
		"5": map[string]any{"class_type": "PreviewAny", "inputs": map[string]any{"source": 3.5}},
	}})
	h := waitHistory(t, b, p)
	out := h["outputs"].(map[string]any)
	imgs := out["2"].(map[string]any)["images"].([]any)
	require.Len(t, imgs, 2)
	name := imgs[0].(map[string]any)["filename"].(string)
	require.Regexp(t, regexp.MustCompile(`^ComfyUI_temp_[a-z]{5}_00001_\.png$`), name)
	require.Equal(t, "temp", imgs[0].(map[string]any)["type"])
	code, _, _ := httpDo(t, http.MethodGet, b.base+"/view?type=temp&filename="+name, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []any{"hello"}, out["3"].(map[string]any)["text"])
	require.Contains(t, out["4"].(map[string]any)["text"].([]any)[0], "tensor([[[[0., 0., 0.],")
	require.Equal(t, []any{"3.5"}, out["5"].(map[string]any)["text"])
}
