package comfy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"strings"
)

// ViewOptions are the optional /view parameters.
type ViewOptions struct {
	// Preview re-encodes the image: "webp" or "jpeg", optionally with ";quality"
	// ("webp;90"). Empty returns the file unchanged.
	Preview string
	// Channel is "rgba" (default), "rgb" or "a".
	Channel string
}

// File is a streamed file from the node. Close Body when done.
type File struct {
	Body io.ReadCloser
	// Size is the Content-Length, or -1 when unknown.
	Size        int64
	ContentType string
	// Filename is the name from Content-Disposition, else the requested name.
	Filename string
}

// View opens an output, input or temp file (GET /view) and streams it: the body is
// never buffered, so files of any size can be copied to storage. It is bounded by ctx
// only (no RequestTimeout). A missing file gives ErrNotFound; a bad name or type (400) or
// a subfolder outside the base directory (403) an *HTTPError.
func (c *Client) View(ctx context.Context, ref FileRef, opts *ViewOptions) (*File, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if ref.Filename == "" {
		return nil, errors.New("comfy: View: empty filename")
	}
	q := url.Values{"filename": {ref.Filename}, "subfolder": {ref.Subfolder}}
	if ref.Type != "" {
		q.Set("type", ref.Type)
	}
	if opts != nil {
		if opts.Preview != "" {
			q.Set("preview", opts.Preview)
		}
		if opts.Channel != "" {
			q.Set("channel", opts.Channel)
		}
	}
	req, err := c.newRequest(ctx, http.MethodGet, "/view", q, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	f := &File{
		Body:        &viewBody{ReadCloser: resp.Body, c: c, ctx: ctx, path: req.URL.Path},
		Size:        resp.ContentLength,
		ContentType: resp.Header.Get("Content-Type"),
		Filename:    path.Base(ref.Filename),
	}
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil && params["filename"] != "" {
		f.Filename = path.Base(params["filename"])
	} else if name, ok := dispositionFilename(resp.Header.Get("Content-Disposition")); ok {
		f.Filename = path.Base(name)
	}
	return f, nil
}

// dispositionFilename parses ComfyUI's bare `filename="x"` (no disposition type), which
// mime.ParseMediaType refuses.
func dispositionFilename(h string) (string, bool) {
	const key = `filename="`
	i := strings.Index(h, key)
	if i < 0 {
		return "", false
	}
	rest := h[i+len(key):]
	j := strings.LastIndex(rest, `"`)
	if j <= 0 {
		return "", false
	}
	return rest[:j], true
}

// viewBody maps read errors of a streamed body to ErrUnavailable (a reset connection)
// unless the caller's context ended.
type viewBody struct {
	io.ReadCloser
	c    *Client
	ctx  context.Context
	path string
}

func (b *viewBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = b.c.transportError(b.ctx, http.MethodGet, b.path, err)
	}
	return n, err
}

// UploadRequest is a file to upload with UploadImage or UploadMask.
type UploadRequest struct {
	// Name is the file name on the node. Required.
	Name string
	// Body is streamed, never buffered whole.
	Body io.Reader
	// Subfolder is the folder under the type's directory ("" by default).
	Subfolder string
	// Type is "input" (default), "temp" or "output".
	Type string
	// Overwrite replaces an existing file of the same name. Without it ComfyUI keeps an
	// identical file as is and renames a different one to "name (1).ext".
	Overwrite bool
}

// UploadImage uploads a file (POST /upload/image, multipart streamed through a pipe) and
// returns the name it was stored under, which can differ from the requested one. To
// use it in LoadImage set the input "image" to ref.Filename, prefixed with
// ref.Subfolder+"/" when there is one (or see FileRef.LoadImageValue).
func (c *Client) UploadImage(ctx context.Context, req UploadRequest) (FileRef, error) {
	return c.upload(ctx, "/upload/image", req, nil)
}

// UploadMask uploads a mask (POST /upload/mask): ComfyUI copies the uploaded image's
// alpha channel into the original image and saves the result under req.Name.
func (c *Client) UploadMask(ctx context.Context, req UploadRequest, original FileRef) (FileRef, error) {
	if original.Filename == "" {
		return FileRef{}, errors.New("comfy: UploadMask: original has no filename")
	}
	ref := original
	if ref.Type == "" {
		ref.Type = "input"
	}
	b, err := json.Marshal(ref)
	if err != nil {
		return FileRef{}, fmt.Errorf("comfy: UploadMask: %w", err)
	}
	return c.upload(ctx, "/upload/mask", req, map[string]string{"original_ref": string(b)})
}

func (c *Client) upload(ctx context.Context, route string, r UploadRequest, extra map[string]string) (FileRef, error) {
	if c.closed.Load() {
		return FileRef{}, ErrClosed
	}
	if r.Name == "" {
		return FileRef{}, fmt.Errorf("comfy: upload: empty file name")
	}
	if r.Body == nil {
		return FileRef{}, fmt.Errorf("comfy: upload: nil body")
	}
	switch r.Type {
	case "", "input", "temp", "output":
	default:
		return FileRef{}, fmt.Errorf("comfy: upload: type %q is not input, temp or output", r.Type)
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	writeErr := make(chan error, 1)
	go func() {
		err := writeMultipart(mw, r, extra)
		_ = pw.CloseWithError(err) // always nil for a pipe writer
		writeErr <- err
	}()
	req, err := c.newRequest(ctx, http.MethodPost, route, nil, pr)
	if err != nil {
		_ = pr.CloseWithError(err) // always nil for a pipe reader
		<-writeErr                 //nolint:errcheck // the writer can only report the pipe closed just above
		return FileRef{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(ctx, req)
	// Stop the writer whatever happened, and wait for it: it reads the caller's Body,
	// which must not be touched after we return.
	pr.CloseWithError(errUploadDone)
	werr := <-writeErr
	if err != nil {
		if werr != nil && !errors.Is(werr, io.ErrClosedPipe) && !errors.Is(werr, errUploadDone) {
			return FileRef{}, fmt.Errorf("comfy: upload %s: read body: %w", r.Name, werr)
		}
		return FileRef{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return FileRef{}, statusError(resp)
	}
	var out struct {
		Name      string `json:"name"`
		Subfolder string `json:"subfolder"`
		Type      string `json:"type"`
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody))
	if err := dec.Decode(&out); err != nil {
		return FileRef{}, fmt.Errorf("comfy: POST %s: decode response: %w", route, err)
	}
	if out.Name == "" {
		return FileRef{}, fmt.Errorf("comfy: POST %s: response has no name", route)
	}
	return FileRef{Filename: out.Name, Subfolder: out.Subfolder, Type: out.Type}, nil
}

var errUploadDone = errors.New("comfy: upload finished")

var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"")

func writeMultipart(mw *multipart.Writer, r UploadRequest, extra map[string]string) error {
	fields := [][2]string{{"type", r.Type}, {"subfolder", r.Subfolder}}
	if fields[0][1] == "" {
		fields[0][1] = "input"
	}
	if r.Overwrite {
		fields = append(fields, [2]string{"overwrite", "true"})
	}
	for _, k := range sortedKeys(extra) {
		fields = append(fields, [2]string{k, extra[k]})
	}
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return err
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="image"; filename="%s"`, quoteEscaper.Replace(r.Name)))
	ct := mime.TypeByExtension(path.Ext(r.Name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	part, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := io.Copy(part, r.Body); err != nil {
		return err
	}
	return mw.Close()
}

// LoadImageValue returns the string LoadImage's "image" input takes for this file:
// "sub/name.png", with " [output]" or " [temp]" appended for those types (§4).
func (r FileRef) LoadImageValue() string {
	v := r.Filename
	if r.Subfolder != "" {
		v = r.Subfolder + "/" + v
	}
	if r.Type != "" && r.Type != "input" {
		v += " [" + r.Type + "]"
	}
	return v
}
