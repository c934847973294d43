package comfysim_test

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

// upload posts a multipart form to /upload/image (or /upload/mask).
func (b *bundle) upload(t *testing.T, path, filename string, data []byte, fields map[string]string) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		require.NoError(t, mw.WriteField(k, v))
	}
	if data != nil {
		fw, err := mw.CreateFormFile("image", filename)
		require.NoError(t, err)
		_, err = fw.Write(data)
		require.NoError(t, err)
	}
	require.NoError(t, mw.Close())
	req, err := http.NewRequest(http.MethodPost, b.base+path, &body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(out)
}

func pngOf(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// gradient is a 4×2 RGB image.
func gradient() *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, 4, 2))
	for y := 0; y < 2; y++ {
		for x := 0; x < 4; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 60), uint8(y * 200), 10, 255})
		}
	}
	return img
}

func TestUploadRenaming(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	a := pngOf(t, gradient())
	other := pngOf(t, image.NewNRGBA(image.Rect(0, 0, 1, 1)))

	code, body := b.upload(t, "/upload/image", "x.png", a, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, `{"name": "x.png", "subfolder": "", "type": "input"}`, body)
	_, body = b.upload(t, "/upload/image", "x.png", a, nil)
	require.Equal(t, `{"name": "x.png", "subfolder": "", "type": "input"}`, body, "identical bytes reuse the name")
	_, body = b.upload(t, "/upload/image", "x.png", other, nil)
	require.Equal(t, `{"name": "x (1).png", "subfolder": "", "type": "input"}`, body)
	_, body = b.upload(t, "/upload/image", "x.png", append([]byte("z"), other...), nil)
	require.Equal(t, `{"name": "x (2).png", "subfolder": "", "type": "input"}`, body)
	_, body = b.upload(t, "/upload/image", "x.png", other, nil)
	require.Equal(t, `{"name": "x (1).png", "subfolder": "", "type": "input"}`, body, "a duplicate of a renamed copy")
	_, body = b.upload(t, "/upload/image", "x.png", other, map[string]string{"overwrite": "true"})
	require.Equal(t, `{"name": "x.png", "subfolder": "", "type": "input"}`, body)
	got, err := os.ReadFile(filepath.Join(b.sim.Dir(), "input", "x.png"))
	require.NoError(t, err)
	require.Equal(t, other, got)

	_, body = b.upload(t, "/upload/image", "y.png", a, map[string]string{"subfolder": "sub", "type": "temp"})
	require.Equal(t, `{"name": "y.png", "subfolder": "sub", "type": "temp"}`, body)
	_, err = os.Stat(filepath.Join(b.sim.Dir(), "temp", "sub", "y.png"))
	require.NoError(t, err)

	// Uploaded images are listed in LoadImage's combo.
	_, oi := b.get(t, "/object_info/LoadImage")
	list := oi["LoadImage"].(map[string]any)["input"].(map[string]any)["required"].(map[string]any)["image"].([]any)[0]
	require.Equal(t, []any{"example.png", "x (1).png", "x (2).png", "x.png"}, list)

	for _, tc := range []struct {
		name, filename string
		data           []byte
		fields         map[string]string
		code           int
	}{
		{"no image", "", nil, nil, http.StatusBadRequest},
		{"empty file name", "", a, nil, http.StatusBadRequest},
		{"escaping name", "../evil.png", a, nil, http.StatusBadRequest},
		{"escaping subfolder", "e.png", a, map[string]string{"subfolder": "../.."}, http.StatusBadRequest},
		{"bad type", "e.png", a, map[string]string{"type": "models"}, http.StatusInternalServerError},
	} {
		code, _ := b.upload(t, "/upload/image", tc.filename, tc.data, tc.fields)
		require.Equal(t, tc.code, code, tc.name)
	}
}

func TestUploadMask(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ws := dialWS(t, b.base, "c")
	ws.next()
	p := b.queue(t, map[string]any{"prompt": emptyImageSave("orig"), "client_id": "c"})
	ws.untilDone(p)

	mask := image.NewNRGBA(image.Rect(0, 0, 64, 64))
	for i := range mask.Pix {
		mask.Pix[i] = 100
	}
	code, body := b.upload(t, "/upload/mask", "masked.png", pngOf(t, mask), map[string]string{
		"original_ref": `{"filename": "orig_00001_.png", "subfolder": "", "type": "output"}`,
	})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, `{"name": "masked.png", "subfolder": "", "type": "input"}`, body)
	data, err := os.ReadFile(filepath.Join(b.sim.Dir(), "input", "masked.png"))
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, uint8(100), color.NRGBAModel.Convert(img.At(3, 3)).(color.NRGBA).A)
	require.Contains(t, string(data), "tEXtprompt", "text chunks of the original are kept")
}

// TestLoadInvertSave is §10's three-node workflow after an upload.
func TestLoadInvertSave(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ws := dialWS(t, b.base, "c")
	ws.next()
	code, body := b.upload(t, "/upload/image", "check_gradient.png", pngOf(t, gradient()), nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, `{"name": "check_gradient.png", "subfolder": "", "type": "input"}`, body)
	prompt := map[string]any{
		"1": map[string]any{"class_type": "LoadImage", "inputs": map[string]any{"image": "check_gradient.png"}},
		"2": map[string]any{"class_type": "ImageInvert", "inputs": map[string]any{"image": []any{"1", 0}}},
		"3": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"2", 0}, "filename_prefix": "inverted"}},
	}
	p := b.queue(t, map[string]any{"prompt": prompt, "client_id": "c"})
	ms := ws.untilDone(p)
	require.Equal(t, []string{"status", "status", "execution_start", "execution_cached",
		"progress_state", "executing", "progress_state",
		"progress_state", "executing", "progress_state",
		"progress_state", "executing", "executed", "progress_state",
		"execution_success", "status", "executing"}, types(ms))
	require.Contains(t, string(ms[12].Raw), `"filename": "inverted_00001_.png"`)

	_, _, data := httpDo(t, http.MethodGet, b.base+"/view?filename=inverted_00001_.png&type=output", nil)
	img, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 4, 2), img.Bounds())
	src := gradient()
	for y := 0; y < 2; y++ {
		for x := 0; x < 4; x++ {
			s := src.NRGBAAt(x, y)
			g := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			require.InDelta(t, 255-int(s.R), int(g.R), 1)
			require.InDelta(t, 255-int(s.G), int(g.G), 1)
			require.InDelta(t, 255-int(s.B), int(g.B), 1)
		}
	}
	// The PNG's prompt shows LoadImage's IS_CHANGED hash, as ComfyUI's do.
	require.Contains(t, string(data), `"is_changed": ["`)

	// Same file: full cache hit. New bytes under the same name: LoadImage
	// re-runs (IS_CHANGED is the file's SHA-256).
	p2 := b.queue(t, map[string]any{"prompt": prompt, "client_id": "c"})
	ms = ws.untilDone(p2)
	require.Equal(t, []any{"1", "2", "3"}, ms[3].Data["nodes"])
	b.upload(t, "/upload/image", "check_gradient.png", pngOf(t, image.NewNRGBA(image.Rect(0, 0, 2, 2))), map[string]string{"overwrite": "1"})
	p3 := b.queue(t, map[string]any{"prompt": prompt, "client_id": "c"})
	ms = ws.untilDone(p3)
	require.Equal(t, []any{}, ms[3].Data["nodes"])
	require.Contains(t, string(ms[12].Raw), "inverted_00002_.png")
}

func TestViewRules(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ws := dialWS(t, b.base, "c")
	ws.next()
	p := b.queue(t, map[string]any{"prompt": emptyImageSave("sub/v"), "client_id": "c"})
	ms := ws.untilDone(p)
	require.Contains(t, string(ms[9].Raw), `{"filename": "v_00001_.png", "subfolder": "sub", "type": "output"}`)

	view := func(q url.Values) (int, http.Header, []byte) {
		return httpDo(t, http.MethodGet, b.base+"/view?"+q.Encode(), nil)
	}
	for _, tc := range []struct {
		name string
		q    url.Values
		code int
	}{
		{"no filename", url.Values{}, 404},
		{"empty filename", url.Values{"filename": {""}}, 400},
		{"absolute", url.Values{"filename": {"/etc/passwd"}}, 400},
		{"dot dot", url.Values{"filename": {"a..b.png"}}, 400},
		{"bad type", url.Values{"filename": {"v_00001_.png"}, "type": {"models"}}, 400},
		{"subfolder escapes", url.Values{"filename": {"v_00001_.png"}, "subfolder": {"../.."}}, 403},
		{"absolute subfolder", url.Values{"filename": {"v_00001_.png"}, "subfolder": {"/etc"}}, 403},
		{"missing", url.Values{"filename": {"nope.png"}}, 404},
		{"wrong folder", url.Values{"filename": {"v_00001_.png"}}, 404},
		{"found", url.Values{"filename": {"v_00001_.png"}, "subfolder": {"sub"}}, 200},
		{"path in filename is dropped", url.Values{"filename": {"x/v_00001_.png"}, "subfolder": {"sub"}}, 200},
		{"annotation beats type", url.Values{"filename": {"example.png [input]"}, "type": {"temp"}}, 200},
	} {
		code, hdr, body := view(tc.q)
		require.Equal(t, tc.code, code, tc.name)
		if code != 200 {
			require.Empty(t, body, tc.name)
		} else {
			require.NotEmpty(t, hdr.Get("Content-Length"), tc.name)
		}
	}

	base := url.Values{"filename": {"v_00001_.png"}, "subfolder": {"sub"}}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for kk, vv := range base {
			q[kk] = vv
		}
		q.Set(k, v)
		return q
	}
	_, hdr, body := view(with("preview", "jpeg;50"))
	require.Equal(t, "image/jpeg", hdr.Get("Content-Type"))
	require.Equal(t, `filename="v_00001_.png"`, hdr.Get("Content-Disposition"))
	img, err := jpeg.Decode(bytes.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, 64, img.Bounds().Dx())

	_, hdr, body = view(with("preview", "webp"))
	require.Equal(t, "image/webp", hdr.Get("Content-Type"))
	requireWebP(t, body, 64, 64)
	q := with("preview", "jpeg")
	q.Set("channel", "rgba")
	_, hdr, _ = view(q)
	require.Equal(t, "image/webp", hdr.Get("Content-Type"), "a channel with 'a' forces webp")

	_, hdr, body = view(with("channel", "rgb"))
	require.Equal(t, "image/png", hdr.Get("Content-Type"))
	_, err = png.Decode(bytes.NewReader(body))
	require.NoError(t, err)
	_, _, body = view(with("channel", "a"))
	img, err = png.Decode(bytes.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, color.NRGBA{0, 0, 0, 255}, color.NRGBAModel.Convert(img.At(1, 1)))

	// Content-Type by extension; HTML is downgraded.
	_, up := b.upload(t, "/upload/image", "page.html", []byte("<html></html>"), nil)
	require.Contains(t, up, "page.html")
	_, hdr, _ = view(url.Values{"filename": {"page.html"}, "type": {"input"}})
	require.Equal(t, "application/octet-stream", hdr.Get("Content-Type"))
	b.upload(t, "/upload/image", "a.webp", []byte("RIFF"), nil)
	_, hdr, _ = view(url.Values{"filename": {"a.webp"}, "type": {"input"}})
	require.Equal(t, "image/webp", hdr.Get("Content-Type"))

	// Range requests, as aiohttp's FileResponse.
	req, _ := http.NewRequest(http.MethodGet, b.base+"/view?"+base.Encode(), nil)
	req.Header.Set("Range", "bytes=0-7")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Equal(t, "\x89PNG\r\n\x1a\n", string(got))
}

// requireWebP checks a lossless WebP's container and VP8L header.
func requireWebP(t *testing.T, b []byte, w, h int) {
	t.Helper()
	require.Equal(t, "RIFF", string(b[:4]))
	require.Equal(t, uint32(len(b)-8), binary.LittleEndian.Uint32(b[4:8]))
	require.Equal(t, "WEBPVP8L", string(b[8:16]))
	require.Equal(t, byte(0x2f), b[20])
	bits := binary.LittleEndian.Uint32(b[21:25])
	require.Equal(t, w, int(bits&0x3fff)+1)
	require.Equal(t, h, int(bits>>14&0x3fff)+1)
}
