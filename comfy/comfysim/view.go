package comfysim

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/comfyq/comfyq/internal/retry"
)

// handleView is GET /view (server.py view_image).
func (s *Server) handleView(w http.ResponseWriter, r *http.Request, _ string) {
	delay, failStatus, cutAfter := s.takeViewFault()
	if err := retry.Sleep(r.Context(), delay); err != nil {
		return
	}
	if failStatus != 0 {
		writeEmpty(w, failStatus)
		return
	}
	if cutAfter > 0 {
		w = &cutWriter{ResponseWriter: w, left: cutAfter}
	}

	q := r.URL.Query()
	if !q.Has("filename") {
		writeEmpty(w, http.StatusNotFound)
		return
	}
	filename, dirType := annotatedFilepath(q.Get("filename"))
	if filename == "" {
		writeEmpty(w, http.StatusBadRequest)
		return
	}
	if filename[0] == '/' || strings.Contains(filename, "..") {
		writeEmpty(w, http.StatusBadRequest)
		return
	}
	outputDir, ok := "", false
	if dirType != "" {
		outputDir, ok = s.dirByType(dirType)
	} else {
		t := "output"
		if q.Has("type") {
			t = q.Get("type")
		}
		outputDir, ok = s.dirByType(t)
	}
	if !ok {
		writeEmpty(w, http.StatusBadRequest)
		return
	}
	if q.Has("subfolder") {
		full := pyJoin(outputDir, q.Get("subfolder"))
		if !within(outputDir, full) {
			writeEmpty(w, http.StatusForbidden)
			return
		}
		outputDir = full
	}
	filename = pyBasename(filename)
	file := pyJoin(outputDir, filename)
	disposition := `filename="` + filename + `"`

	var content io.ReadSeeker
	var modTime time.Time
	if st, err := os.Stat(file); err == nil && st.Mode().IsRegular() {
		f, err := os.Open(file)
		if err != nil {
			writeServerError(w, r, err)
			return
		}
		defer f.Close()
		content, modTime = f, st.ModTime()
	} else if vf := s.lookupVirtual(file); vf != nil {
		content, modTime = vf.reader(), vf.modTime
	} else {
		writeEmpty(w, http.StatusNotFound)
		return
	}

	channel := q.Get("channel")
	if q.Has("preview") {
		s.viewPreview(w, r, content, q.Get("preview"), channel, disposition)
		return
	}
	if !q.Has("channel") {
		channel = "rgba"
	}
	switch channel {
	case "rgb", "a":
		s.viewChannel(w, r, content, channel, disposition)
		return
	}
	ctype := contentTypeFor(filename)
	switch ctype {
	case "text/html", "text/html-sandboxed", "application/xhtml+xml", "text/javascript", "text/css":
		ctype = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", disposition)
	if vr, ok := content.(*virtualReader); ok && r.Method == http.MethodGet && r.Header.Get("Range") == "" {
		// A whole virtual file: stream it with a large buffer.
		h := w.Header()
		h.Set("Accept-Ranges", "bytes")
		h.Set("Last-Modified", modTime.UTC().Format(http.TimeFormat))
		h.Set("Content-Length", strconv.FormatInt(vr.vf.size, 10))
		w.WriteHeader(http.StatusOK)
		buf := make([]byte, 1<<20)
		_, _ = io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{vr}, buf)
		return
	}
	// ServeContent streams (constant memory, sendfile for files), sets
	// Content-Length and serves Range requests, like aiohttp's FileResponse.
	http.ServeContent(w, r, filename, modTime, content)
}

// decodeForView opens an image as PIL would; ok is false for non-images.
func decodeForView(content io.Reader) ([]byte, image.Image, bool) {
	data, err := io.ReadAll(io.LimitReader(content, 512<<20))
	if err != nil {
		return nil, nil, false
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, nil, false
	}
	return data, img, true
}

// hasAlphaMode reports whether PIL would open the file in mode RGBA.
func hasAlphaMode(data []byte) bool { return pngColorType(data) == 6 }

func (s *Server) viewPreview(w http.ResponseWriter, r *http.Request, content io.Reader, preview, channel, disposition string) {
	data, img, ok := decodeForView(content)
	if !ok {
		writeServerError(w, r, errInternal) // PIL.UnidentifiedImageError
		return
	}
	info := strings.Split(preview, ";")
	format := info[0]
	if (format != "webp" && format != "jpeg") || strings.Contains(channel, "a") {
		format = "webp"
	}
	quality := 90
	if last := info[len(info)-1]; last != "" && isAllDigits(last) {
		quality, _ = strconv.Atoi(last)
	}
	src := img
	if format == "jpeg" || channel == "rgb" || !hasAlphaMode(data) {
		src = toRGB(img)
	}
	var body []byte
	var err error
	if format == "jpeg" {
		body, err = encodeJPEG(src, quality)
	} else {
		body = encodeWebP(src)
	}
	if err != nil {
		writeServerError(w, r, err)
		return
	}
	writeBody(w, "image/"+format, disposition, body)
}

func isAllDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func (s *Server) viewChannel(w http.ResponseWriter, r *http.Request, content io.Reader, channel, disposition string) {
	data, img, ok := decodeForView(content)
	if !ok {
		writeServerError(w, r, errInternal)
		return
	}
	var out image.Image
	if channel == "rgb" {
		out = toRGB(img)
	} else {
		b := img.Bounds()
		a := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		rgba := hasAlphaMode(data)
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				alpha := uint8(255)
				if rgba {
					alpha = color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA).A
				}
				a.SetNRGBA(x, y, color.NRGBA{0, 0, 0, alpha})
			}
		}
		out = a
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, out); err != nil {
		writeServerError(w, r, err)
		return
	}
	writeBody(w, "image/png", disposition, buf.Bytes())
}

// toRGB drops alpha like PIL's convert("RGB").
func toRGB(img image.Image) image.Image {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	for i := 3; i < len(out.Pix); i += 4 {
		out.Pix[i] = 255
	}
	return out
}

func writeBody(w http.ResponseWriter, ctype, disposition string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", disposition)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// contentTypeFor is mimetypes.guess_type(filename)[0] or
// application/octet-stream.
func contentTypeFor(name string) string {
	ext := strings.ToLower(filepath.Ext(name))
	if t, ok := mimeTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		t, _, _ = strings.Cut(t, ";")
		return t
	}
	return "application/octet-stream"
}

var mimeTypes = map[string]string{
	".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
	".gif": "image/gif", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff",
	".svg": "image/svg+xml", ".mp4": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime",
	".mkv": "video/x-matroska", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".wav": "audio/x-wav",
	".ogg": "audio/ogg", ".opus": "audio/ogg", ".json": "application/json", ".txt": "text/plain",
	".html": "text/html", ".htm": "text/html", ".js": "text/javascript", ".css": "text/css",
	".glb": "model/gltf-binary", ".gltf": "model/gltf+json", ".safetensors": "application/octet-stream",
}

// cutWriter aborts the connection after left body bytes (ViewFault.CutAfter).
type cutWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) <= c.left {
		c.left -= int64(len(p))
		return c.ResponseWriter.Write(p)
	}
	_, _ = c.ResponseWriter.Write(p[:c.left])
	c.left = 0
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	// net/http closes the connection without completing the response.
	panic(http.ErrAbortHandler)
}
