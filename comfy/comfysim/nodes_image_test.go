package comfysim_test

import (
	"bytes"
	"encoding/binary"
	"image/png"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

func node(class string, inputs map[string]any) map[string]any {
	return map[string]any{"class_type": class, "inputs": inputs}
}

func empty(w, h, batch, color int) map[string]any {
	return node("EmptyImage", map[string]any{"width": w, "height": h, "batch_size": batch, "color": color})
}

// run queues a prompt and returns its history entry once it ended.
func (b *bundle) run(t *testing.T, prompt map[string]any) map[string]any {
	t.Helper()
	before := b.sim.Stats().PromptsExecuted
	id := b.queue(t, map[string]any{"prompt": prompt})
	waitExecuted(t, b, before+1)
	return b.history(t, id)
}

func (b *bundle) viewPNG(t *testing.T, f map[string]any) []byte {
	t.Helper()
	q := url.Values{"filename": {f["filename"].(string)}, "subfolder": {f["subfolder"].(string)}, "type": {f["type"].(string)}}
	code, _, data := httpDo(t, http.MethodGet, b.base+"/view?"+q.Encode(), nil)
	require.Equal(t, http.StatusOK, code)
	return data
}

func images(h map[string]any, node string) []any {
	return h["outputs"].(map[string]any)[node].(map[string]any)["images"].([]any)
}

// rgba is an RGB image with an alpha channel from SolidMask: RGBA tensors.
func rgba() map[string]any {
	return map[string]any{
		"1": empty(8, 8, 1, 0xff0000),
		"2": node("SolidMask", map[string]any{"value": 0.25, "width": 8, "height": 8}),
		"3": node("JoinImageWithAlpha", map[string]any{"image": []any{"1", 0}, "alpha": []any{"2", 0}}),
	}
}

func TestImageBatchChannelMismatch(t *testing.T) {
	t.Parallel()
	p := rgba()
	p["4"] = empty(16, 16, 2, 0x00ff00)
	p["5"] = node("ImageBatch", map[string]any{"image1": []any{"4", 0}, "image2": []any{"3", 0}})
	p["6"] = node("SaveImage", map[string]any{"images": []any{"5", 0}, "filename_prefix": "batch"})

	old := setup(t, comfysim.Options{})
	h := old.run(t, p)
	st := h["status"].(map[string]any)
	require.Equal(t, "error", st["status_str"])
	msgs := st["messages"].([]any)
	e := msgs[len(msgs)-1].([]any)[1].(map[string]any)
	require.Equal(t, "RuntimeError", e["exception_type"])
	require.Equal(t, "Sizes of tensors must match except in dimension 0. Expected size 3 but got size 4 for tensor number 1 in the list.\n", e["exception_message"])
	require.Equal(t, "5", e["node_id"])
	tb := e["traceback"].([]any)
	require.Contains(t, tb[len(tb)-1], "in batch\n    s = torch.cat((image1, image2), dim=0)\n")

	// 0.38 pads the RGB image with an opaque alpha first (nodes.py ImageBatch).
	b := setup038(t, comfysim.Options{})
	h = b.run(t, p)
	require.Equal(t, "success", h["status"].(map[string]any)["status_str"])
	files := images(h, "6")
	require.Len(t, files, 3)
	img, err := png.Decode(bytes.NewReader(b.viewPNG(t, files[2].(map[string]any))))
	require.NoError(t, err)
	require.Equal(t, 16, img.Bounds().Dx(), "image2 resized to image1's size")
	_, _, _, a := img.At(3, 3).RGBA()
	require.InDelta(t, 0.75*0xffff, float64(a), 0x200, "alpha = 1 - mask")
}

func TestImageClassesShapes(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	h := b.run(t, map[string]any{
		"1": empty(40, 30, 1, 0x102030),
		"2": node("ImageCrop", map[string]any{"image": []any{"1", 0}, "width": 100, "height": 10, "x": 25, "y": 5}),
		"3": node("RepeatImageBatch", map[string]any{"image": []any{"2", 0}, "amount": 3}),
		"4": node("ImageBlur", map[string]any{"image": []any{"3", 0}, "blur_radius": 3, "sigma": 1.0}),
		"5": node("ImageAddNoise", map[string]any{"image": []any{"4", 0}, "seed": 7, "strength": 0.5}),
		"6": node("SaveImage", map[string]any{"images": []any{"5", 0}, "filename_prefix": "shapes"}),
		"7": empty(20, 20, 1, 0),
		"8": node("SolidMask", map[string]any{"value": 1.0, "width": 20, "height": 20}),
		"9": node("ImageCompositeMasked", map[string]any{"destination": []any{"7", 0}, "source": []any{"1", 0},
			"x": 10, "y": 10, "resize_source": false, "mask": []any{"8", 0}}),
		"10": node("PreviewImage", map[string]any{"images": []any{"9", 0}}),
	})
	require.Equal(t, "success", h["status"].(map[string]any)["status_str"], "%v", h["status"])
	files := images(h, "6")
	require.Len(t, files, 3, "RepeatImageBatch ×3")
	img, err := png.Decode(bytes.NewReader(b.viewPNG(t, files[0].(map[string]any))))
	require.NoError(t, err)
	require.Equal(t, [2]int{15, 10}, [2]int{img.Bounds().Dx(), img.Bounds().Dy()}, "the crop ends at the border")
	prev := images(h, "10")
	require.Equal(t, "temp", prev[0].(map[string]any)["type"])
	img, err = png.Decode(bytes.NewReader(b.viewPNG(t, prev[0].(map[string]any))))
	require.NoError(t, err)
	r, g, _, _ := img.At(15, 15).RGBA()
	require.Equal(t, [2]uint32{0x1010, 0x2020}, [2]uint32{r, g}, "source pasted at 10,10")
	r, _, _, _ = img.At(5, 5).RGBA()
	require.Zero(t, r, "destination elsewhere")
}

func TestSaveAnimated(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	h := b.run(t, map[string]any{
		"1": empty(16, 16, 4, 0x808080),
		"2": node("SaveAnimatedWEBP", map[string]any{"images": []any{"1", 0}, "filename_prefix": "anim", "fps": 6.0,
			"lossless": true, "quality": 80, "method": "default"}),
		"3": node("SaveAnimatedPNG", map[string]any{"images": []any{"1", 0}, "filename_prefix": "anim", "fps": 6.0, "compress_level": 4}),
	})
	require.Equal(t, "success", h["status"].(map[string]any)["status_str"], "%v", h["status"])
	out := h["outputs"].(map[string]any)
	webp := out["2"].(map[string]any)
	require.Equal(t, []any{true}, webp["animated"])
	wf := webp["images"].([]any)[0].(map[string]any)
	require.Equal(t, "anim_00001_.webp", wf["filename"])
	data := b.viewPNG(t, wf)
	require.Equal(t, "RIFF", string(data[:4]))
	require.Equal(t, "WEBPVP8X", string(data[8:16]))
	require.Equal(t, uint32(len(data)-8), binary.LittleEndian.Uint32(data[4:]))
	apng := out["3"].(map[string]any)
	require.Equal(t, []any{true}, apng["animated"])
	af := apng["images"].([]any)[0].(map[string]any)
	data = b.viewPNG(t, af)
	img, err := png.Decode(bytes.NewReader(data)) // the default image of an APNG
	require.NoError(t, err)
	require.Equal(t, 16, img.Bounds().Dx())
	require.Contains(t, string(data), "acTL")
	require.Contains(t, string(data), "fdAT")
	require.Contains(t, string(data), "comfprompt")
}
