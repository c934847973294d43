package comfysim

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
)

// uploadForm is the parsed multipart body: the first value of each field,
// and the "image" file part.
type uploadForm struct {
	fields   map[string]string
	hasImage bool
	filename string
	data     []byte
}

func parseUploadForm(r *http.Request) (*uploadForm, error) {
	f := &uploadForm{fields: map[string]string{}}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		if err == nil && mt == "application/x-www-form-urlencoded" {
			if formErr := r.ParseForm(); formErr != nil {
				return nil, formErr
			}
			for k, v := range r.PostForm {
				if len(v) > 0 {
					f.fields[k] = v[0]
				}
			}
		}
		return f, nil
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, err
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			return nil, err
		}
		// The raw filename parameter: multipart.Part.FileName would strip
		// directories, which aiohttp does not.
		_, params, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		name := params["name"]
		filename, isFile := params["filename"]
		data, err := io.ReadAll(part)
		if err != nil {
			return nil, err
		}
		if name == "image" {
			if !f.hasImage && !f.hasField(name) {
				if isFile && filename != "" {
					f.hasImage, f.filename, f.data = true, filename, data
				} else {
					f.fields[name] = string(data)
				}
			}
			continue
		}
		if _, seen := f.fields[name]; !seen {
			f.fields[name] = string(data)
		}
	}
}

func (f *uploadForm) hasField(k string) bool { _, ok := f.fields[k]; return ok }

func (s *Server) handleUploadImage(w http.ResponseWriter, r *http.Request, _ string) {
	s.upload(w, r, nil)
}

func (s *Server) handleUploadMask(w http.ResponseWriter, r *http.Request, _ string) {
	s.upload(w, r, s.saveMask)
}

// upload is server.py image_upload.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, save func(f *uploadForm, path string) error) {
	f, err := parseUploadForm(r)
	if err != nil {
		writeServerError(w, r, err)
		return
	}
	uploadType := "input"
	if t, ok := f.fields["type"]; ok {
		uploadType = t
	}
	uploadDir, ok := s.dirByType(uploadType)
	if !ok {
		writeServerError(w, r, errInternal) // UnboundLocalError in get_dir_by_type
		return
	}
	if !f.hasImage || f.filename == "" {
		writeEmpty(w, http.StatusBadRequest)
		return
	}
	filename := f.filename
	subfolder := f.fields["subfolder"]
	fullFolder := pyJoin(uploadDir, pyNormpath(subfolder))
	target := pyJoin(fullFolder, filename)
	if !within(uploadDir, target) {
		writeEmpty(w, http.StatusBadRequest)
		return
	}
	if mkErr := os.MkdirAll(fullFolder, 0o755); mkErr != nil {
		writeServerError(w, r, mkErr)
		return
	}
	stem, ext := splitExt(filename)
	duplicate := false
	if ow := f.fields["overwrite"]; ow != "true" && ow != "1" {
		for i := 1; exists(target); i++ {
			if sameContent(target, f.data) {
				duplicate = true
				break
			}
			filename = stem + " (" + itoa(i) + ")" + ext
			target = pyJoin(fullFolder, filename)
		}
	}
	if !duplicate {
		if save != nil {
			err = save(f, target)
		} else {
			err = os.WriteFile(target, f.data, 0o644)
		}
		if err != nil {
			writeServerError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, obj("name", filename, "subfolder", subfolder, "type", uploadType))
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// sameContent is compare_image_hash: SHA-256 of the file and the upload.
func sameContent(p string, data []byte) bool {
	b, err := os.ReadFile(p)
	if err != nil {
		return false
	}
	return sha256.Sum256(b) == sha256.Sum256(data)
}

// splitExt is os.path.splitext: leading dots of the base name do not
// start an extension.
func splitExt(p string) (string, string) {
	sep := strings.LastIndex(p, "/")
	dot := strings.LastIndex(p, ".")
	if dot > sep {
		for i := sep + 1; i < dot; i++ {
			if p[i] != '.' {
				return p[:dot], p[dot:]
			}
		}
	}
	return p, ""
}

// saveMask is upload_mask's image_save_function: the referenced original
// with the uploaded image's alpha, text chunks kept. Like ComfyUI, a bad
// original_ref writes nothing yet the answer is 200.
func (s *Server) saveMask(f *uploadForm, target string) error {
	refS, ok := f.fields["original_ref"]
	if !ok {
		return errInternal
	}
	refV, err := decodeJSONBytes([]byte(refS))
	if err != nil {
		return err
	}
	ref, ok := refV.(*object)
	if !ok {
		return errInternal
	}
	fnV, ok := ref.Get("filename")
	if !ok {
		return errInternal
	}
	fn, ok := fnV.(string)
	if !ok {
		return errInternal
	}
	filename, dirType := annotatedFilepath(fn)
	if filename == "" || filename[0] == '/' || strings.Contains(filename, "..") {
		return nil
	}
	if dirType == "" {
		dirType = "output"
		if t, hasType := ref.Get("type"); hasType {
			dirType = pyStr(t)
		}
	}
	dir, ok := s.dirByType(dirType)
	if !ok {
		return nil
	}
	if sub, ok := ref.Get("subfolder"); ok && sub != "" {
		full := pyJoin(dir, pyStr(sub))
		if !within(dir, full) {
			return nil
		}
		dir = full
	}
	file := pyJoin(dir, filename)
	st, err := os.Stat(file)
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	origData, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	orig, _, err := image.Decode(bytes.NewReader(origData))
	if err != nil {
		return err
	}
	mask, _, err := image.Decode(bytes.NewReader(f.data))
	if err != nil {
		return err
	}
	ob, mb := orig.Bounds(), mask.Bounds()
	if ob.Dx() != mb.Dx() || ob.Dy() != mb.Dy() {
		return errors.New("comfysim: images do not match")
	}
	out := image.NewNRGBA(image.Rect(0, 0, ob.Dx(), ob.Dy()))
	for y := 0; y < ob.Dy(); y++ {
		for x := 0; x < ob.Dx(); x++ {
			c := color.NRGBAModel.Convert(orig.At(ob.Min.X+x, ob.Min.Y+y)).(color.NRGBA)
			c.A = color.NRGBAModel.Convert(mask.At(mb.Min.X+x, mb.Min.Y+y)).(color.NRGBA).A
			out.SetNRGBA(x, y, c)
		}
	}
	data, err := encodePNG(out, pngTexts(origData), png.DefaultCompression)
	if err != nil {
		return err
	}
	return os.WriteFile(target, data, 0o644)
}
