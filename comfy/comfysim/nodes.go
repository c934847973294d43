package comfysim

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	_ "image/jpeg" // LoadImage decodes JPEG uploads
)

// nodeFunc is a class's FUNCTION: its outputs (RETURN_TYPES order) and UI.
type nodeFunc func(rc *runCtx) ([]any, *object, error)

// maxPixels bounds simulated tensors: larger images raise
// torch.OutOfMemoryError, as a real node would run out of VRAM.
const maxPixels = 1 << 28

// nodeImpls attach behaviour to the classes of the embedded object_info.
var nodeImpls = map[string]func(d *classDef){
	"CheckpointLoaderSimple": func(d *classDef) { d.run = runCheckpointLoader },
	"CLIPTextEncode":         func(d *classDef) { d.run = runCLIPTextEncode },
	"EmptyLatentImage":       func(d *classDef) { d.run = runEmptyLatentImage },
	"KSampler":               func(d *classDef) { d.run = runKSampler },
	"VAEDecode":              func(d *classDef) { d.run = runVAEDecode },
	"VAELoader":              func(d *classDef) { d.run = runVAELoader },
	"EmptyImage":             func(d *classDef) { d.run = runEmptyImage },
	"LoadImage": func(d *classDef) {
		d.run = runLoadImage
		d.isChanged = loadImageIsChanged
		d.validateInputs = []string{"image"}
		d.validate = loadImageValidate
	},
	"ImageInvert":      func(d *classDef) { d.run = runImageInvert },
	"ImageScale":       func(d *classDef) { d.run = runImageScale },
	"SaveImage":        func(d *classDef) { d.run = runSaveImage },
	"PreviewImage":     func(d *classDef) { d.run = runPreviewImage },
	"CreateVideo":      func(d *classDef) { d.run = runCreateVideo },
	"SaveVideo":        func(d *classDef) { d.run = runSaveVideo },
	"SaveWEBM":         func(d *classDef) { d.run = runSaveWEBM },
	"EmptyLatentAudio": func(d *classDef) { d.run = runEmptyLatentAudio },
	"VAEDecodeAudio":   func(d *classDef) { d.run = runVAEDecodeAudio },
	"SaveAudio":        func(d *classDef) { d.run = runSaveAudio },
	"PreviewAny":       func(d *classDef) { d.run = runPreviewAny },
}

// --- runtime values ---

type modelVal struct{ name string }
type clipVal struct{ name string }
type vaeVal struct{ name string }
type condVal struct{ text string }

// maskVal is a MASK: value everywhere, or fn (normalised coordinates).
type maskVal struct {
	w, h, batch int
	value       float32
	fn          func(b int, u, v float64) float32
}

func (m maskVal) atN(b int, u, v float64) float32 {
	if m.fn != nil {
		return m.fn(b, u, v)
	}
	return m.value
}

// latentVal is a LATENT: an image latent (w, h in latent pixels) or an
// audio latent (length).
type latentVal struct {
	w, h, batch int
	audio       bool
	length      int
	seconds     float64
	rgb         [3]float32 // colour VAEDecode will produce
}

type videoVal struct {
	w, h, frames int
	fps          float64
	audio        *audioVal
}

type audioVal struct {
	batch, samples, rate int
}

func objectAddr(kind, name string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(kind + "\x00" + name))
	return fmt.Sprintf("0x7f%010x", h.Sum64()&0xffffffffff)
}

func (m modelVal) pyStr() string {
	return "<comfy.model_patcher.ModelPatcher object at " + objectAddr("model", m.name) + ">"
}
func (c clipVal) pyStr() string {
	return "<comfy.sd.CLIP object at " + objectAddr("clip", c.name) + ">"
}
func (v vaeVal) pyStr() string { return "<comfy.sd.VAE object at " + objectAddr("vae", v.name) + ">" }
func (c condVal) pyStr() string {
	return "[[" + torchStr([]int{1, 77, 768}, hashedLeaf(c.text)) + ", {'pooled_output': " +
		torchStr([]int{1, 768}, hashedLeaf(c.text+"p")) + "}]]"
}
func (m maskVal) pyStr() string {
	return torchStr([]int{m.batch, m.h, m.w}, func(int) float32 { return m.value })
}
func (im *imageVal) pyStr() string {
	return torchStr([]int{im.batch, im.h, im.w, im.chans()}, func(i int) float32 { return im.at(0, 0, 0)[i] })
}
func (l *latentVal) pyStr() string {
	if l.audio {
		return "{'samples': " + torchStr([]int{l.batch, 64, l.length}, func(int) float32 { return 0 }) + ", 'type': 'audio'}"
	}
	return "{'samples': " + torchStr([]int{l.batch, 4, l.h, l.w}, func(int) float32 { return 0 }) + "}"
}
func (v *videoVal) pyStr() string {
	return "<comfy_api.latest._input_impl.video_types.VideoFromComponents object at " +
		objectAddr("video", fmt.Sprint(v.w, v.h, v.frames)) + ">"
}
func (a *audioVal) pyStr() string {
	return "{'waveform': " + torchStr([]int{a.batch, 2, a.samples}, func(int) float32 { return 0 }) +
		", 'sample_rate': " + strconv.Itoa(a.rate) + "}"
}

func hashedLeaf(seed string) func(int) float32 {
	return func(i int) float32 {
		h := fnv.New32a()
		_, _ = fmt.Fprintf(h, "%s/%d", seed, i)
		return float32(int(h.Sum32()%20000)-10000) / 10000
	}
}

// torchStr renders a tensor whose values depend only on the last index the
// way str(torch.Tensor) does, summarised with 3 edge items beyond 1000
// elements.
func torchStr(shape []int, leaf func(i int) float32) string {
	numel := 1
	for _, d := range shape {
		numel *= d
	}
	summarize := numel > 1000
	last := shape[len(shape)-1]
	var shown []int
	if summarize && last > 6 {
		shown = []int{0, 1, 2, -1, last - 3, last - 2, last - 1}
	} else {
		for i := 0; i < last; i++ {
			shown = append(shown, i)
		}
	}
	intMode := true
	for _, i := range shown {
		if i >= 0 {
			v := float64(leaf(i))
			if v != math.Trunc(v) {
				intMode = false
			}
		}
	}
	elems := make([]string, len(shown))
	width := 0
	for k, i := range shown {
		if i < 0 {
			continue
		}
		v := float64(leaf(i))
		if intMode {
			elems[k] = strconv.FormatFloat(v, 'f', 0, 64) + "."
		} else {
			elems[k] = strconv.FormatFloat(v, 'f', 4, 64)
		}
		width = max(width, len(elems[k]))
	}
	for k, i := range shown {
		if i < 0 {
			elems[k] = "..."
			continue
		}
		elems[k] = strings.Repeat(" ", width-len(elems[k])) + elems[k]
	}
	vector := "[" + strings.Join(elems, ", ") + "]"
	var rec func(dim, indent int) string
	rec = func(dim, indent int) string {
		if dim == len(shape)-1 {
			return vector
		}
		sub := rec(dim+1, indent+1)
		var slices []string
		if summarize && shape[dim] > 6 {
			slices = []string{sub, sub, sub, "...", sub, sub, sub}
		} else {
			for i := 0; i < shape[dim]; i++ {
				slices = append(slices, sub)
			}
		}
		sep := "," + strings.Repeat("\n", len(shape)-dim-1) + strings.Repeat(" ", indent+1)
		return "[" + strings.Join(slices, sep) + "]"
	}
	return "tensor(" + rec(0, 7) + ")"
}

// --- input helpers ---

func (rc *runCtx) val(name string) any {
	v, _ := rc.in.Get(name)
	return v
}

func (rc *runCtx) int(name string) int64     { return intValue(rc.val(name)) }
func (rc *runCtx) float(name string) float64 { return floatValue(rc.val(name)) }
func (rc *runCtx) str(name string) string    { return pyStr(rc.val(name)) }

// wrongType is the exception a node raises when given something else.
func wrongType(v any, attr string) error {
	return raise("AttributeError", "'%s' object has no attribute '%s'", pyTypeName(v), attr)
}

func (rc *runCtx) image(name string) (*imageVal, error) {
	v := rc.val(name)
	if im, ok := v.(*imageVal); ok {
		return im, nil
	}
	return nil, wrongType(v, "shape")
}

func (rc *runCtx) latent(name string) (*latentVal, error) {
	v := rc.val(name)
	if l, ok := v.(*latentVal); ok {
		return l, nil
	}
	return nil, raise("TypeError", "'%s' object is not subscriptable", pyTypeName(v))
}

func checkPixels(w, h, batch int) error {
	n := float64(w) * float64(h) * float64(max(batch, 1))
	if n <= maxPixels {
		return nil
	}
	return raise("torch.OutOfMemoryError",
		"Allocation on device would exceed allowed memory. (out of memory)\nCurrently allocated     : 1.90 GiB\nRequested               : %.2f GiB\nDevice limit            : 23.64 GiB\nFree (according to CUDA): 20.12 GiB\nPyTorch limit (set by user-supplied memory fraction)\n                        : 17179869184.00 GiB",
		n*12/(1<<30))
}

// --- loaders and conditioning ---

func runCheckpointLoader(rc *runCtx) ([]any, *object, error) {
	name := rc.str("ckpt_name")
	return []any{modelVal{name}, clipVal{name}, vaeVal{name}}, nil, nil
}

func runVAELoader(rc *runCtx) ([]any, *object, error) {
	return []any{vaeVal{rc.str("vae_name")}}, nil, nil
}

func runCLIPTextEncode(rc *runCtx) ([]any, *object, error) {
	if rc.val("clip") == nil {
		return nil, nil, raise("RuntimeError", "ERROR: clip input is invalid: None\n\nIf the clip is from a checkpoint loader node your checkpoint does not contain a valid clip or text encoder model.")
	}
	return []any{condVal{rc.str("text")}}, nil, nil
}

// --- latents and sampling ---

func runEmptyLatentImage(rc *runCtx) ([]any, *object, error) {
	w, h, b := int(rc.int("width")), int(rc.int("height")), int(rc.int("batch_size"))
	if err := checkPixels(w, h, b); err != nil {
		return nil, nil, err
	}
	return []any{&latentVal{w: w / 8, h: h / 8, batch: b, rgb: [3]float32{0.5, 0.5, 0.5}}}, nil, nil
}

func runKSampler(rc *runCtx) ([]any, *object, error) {
	in, err := rc.latent("latent_image")
	if err != nil {
		return nil, nil, err
	}
	steps := int(rc.int("steps"))
	if rc.float("denoise") <= 0 {
		steps = 0
	}
	// The result's colour is a function of everything that shapes a real
	// sample, so changing the seed (or the prompt) changes the image.
	h := fnv.New64a()
	for _, k := range []string{"seed", "steps", "cfg", "sampler_name", "scheduler", "denoise"} {
		_, _ = fmt.Fprintf(h, "%s=%s;", k, pyStr(rc.val(k)))
	}
	for _, k := range []string{"model", "positive", "negative"} {
		_, _ = fmt.Fprintf(h, "%s=%s;", k, pyStr(rc.val(k)))
	}
	_, _ = fmt.Fprintf(h, "in=%v", in.rgb)
	sum := h.Sum64()
	out := *in
	out.rgb = [3]float32{float32(sum&0xff) / 255, float32(sum>>8&0xff) / 255, float32(sum>>16&0xff) / 255}

	previews := map[[3]uint8][]byte{}
	for step := 1; step <= steps; step++ {
		if err := rc.r.delay(rc.r.s.opts.StepDelay); err != nil {
			return nil, nil, err
		}
		var preview []byte
		if rc.r.s.opts.PreviewMethod == "auto" && !in.audio {
			preview = previewJPEG(previews, in, out.rgb, step, steps)
		}
		if err := rc.r.hook(rc.nodeID, step, steps, preview); err != nil {
			return nil, nil, err
		}
	}
	return []any{&out}, nil, nil
}

// previewJPEG is the step's latent preview: the latent's colour moving
// towards the result, fitted in 512×512 (--preview-size), quality 95.
func previewJPEG(cache map[[3]uint8][]byte, l *latentVal, target [3]float32, step, steps int) []byte {
	t := float32(step) / float32(steps)
	var c [3]uint8
	for i := range c {
		v := l.rgb[i] + (target[i]-l.rgb[i])*t
		c[i] = uint8(toByte(v)) &^ 0x0f // a few distinct previews per run
	}
	if b, ok := cache[c]; ok {
		return b
	}
	w, h := containSize(l.w, l.h, 512)
	b, err := encodeJPEG(uniformImage{w: w, h: h, c: color.NRGBA{c[0], c[1], c[2], 255}}, 95)
	if err != nil {
		return nil
	}
	cache[c] = b
	return b
}

func runVAEDecode(rc *runCtx) ([]any, *object, error) {
	l, err := rc.latent("samples")
	if err != nil {
		return nil, nil, err
	}
	if l.audio {
		return nil, nil, raise("RuntimeError", "Given groups=1, weight of size [512, 4, 3, 3], expected input[%d, 64, 1, %d] to have 4 channels, but got 64 channels instead", l.batch, l.length)
	}
	if err := checkPixels(l.w*8, l.h*8, l.batch); err != nil {
		return nil, nil, err
	}
	return []any{&imageVal{w: l.w * 8, h: l.h * 8, batch: l.batch, rgb: l.rgb}}, nil, nil
}

// --- images ---

func runEmptyImage(rc *runCtx) ([]any, *object, error) {
	w, h, b := int(rc.int("width")), int(rc.int("height")), int(rc.int("batch_size"))
	if err := checkPixels(w, h, b); err != nil {
		return nil, nil, err
	}
	c := rc.int("color")
	rgb := [3]float32{float32(float64((c>>16)&0xff) / 255), float32(float64((c>>8)&0xff) / 255), float32(float64(c&0xff) / 255)}
	return []any{&imageVal{w: w, h: h, batch: b, rgb: rgb}}, nil, nil
}

func runImageInvert(rc *runCtx) ([]any, *object, error) {
	im, err := rc.image("image")
	if err != nil {
		return nil, nil, err
	}
	out := *im
	out.inverts++
	return []any{&out}, nil, nil
}

func runImageScale(rc *runCtx) ([]any, *object, error) {
	im, err := rc.image("image")
	if err != nil {
		return nil, nil, err
	}
	w, h := int(rc.int("width")), int(rc.int("height"))
	if w == 0 && h == 0 {
		return []any{im}, nil, nil
	}
	if w == 0 {
		w = max(1, int(roundHalfEven(float64(im.w)*float64(h)/float64(im.h))))
	} else if h == 0 {
		h = max(1, int(roundHalfEven(float64(im.h)*float64(w)/float64(im.w))))
	}
	if err := checkPixels(w, h, im.batch); err != nil {
		return nil, nil, err
	}
	out := *im
	out.w, out.h = w, h
	return []any{&out}, nil, nil
}

func roundHalfEven(f float64) float64 { return math.RoundToEven(f) }

func runLoadImage(rc *runCtx) ([]any, *object, error) {
	name := rc.str("image")
	path, ok := rc.r.s.annotatedPath(name)
	if !ok {
		return nil, nil, raise("FileNotFoundError", "[Errno 2] No such file or directory: %s", pyReprString(name))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, raise("FileNotFoundError", "[Errno 2] No such file or directory: %s", pyReprString(path))
		}
		return nil, nil, raise("IsADirectoryError", "[Errno 21] Is a directory: %s", pyReprString(path))
	}
	img, format, err := image.Decode(strings.NewReader(string(data)))
	if err != nil {
		return nil, nil, raise("PIL.UnidentifiedImageError", "cannot identify image file %s", pyReprString(path))
	}
	frames := 1
	if format == "gif" {
		if g, err := gif.DecodeAll(strings.NewReader(string(data))); err == nil && len(g.Image) > 0 {
			frames = len(g.Image)
		}
	}
	b := img.Bounds()
	im := &imageVal{w: b.Dx(), h: b.Dy(), batch: frames, src: img}
	return []any{im, maskVal{w: b.Dx(), h: b.Dy(), batch: frames}}, nil, nil
}

// loadImageIsChanged is LoadImage.IS_CHANGED: the file's SHA-256.
func loadImageIsChanged(s *Server, inputs *object) (any, error) {
	v, _ := inputs.Get("image")
	name, ok := v.(string)
	if !ok {
		return nil, wrongType(v, "endswith")
	}
	path, ok := s.annotatedPath(name)
	if !ok {
		return nil, raise("FileNotFoundError", "[Errno 2] No such file or directory: %s", pyReprString(name))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, raise("FileNotFoundError", "%v", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// loadImageValidate is LoadImage.VALIDATE_INPUTS.
func loadImageValidate(s *Server, args *object) (any, *pyError) {
	v, ok := args.Get("image")
	if !ok {
		return nil, raise("TypeError", "LoadImage.VALIDATE_INPUTS() missing 1 required positional argument: 'image'")
	}
	name, isStr := v.(string)
	if !isStr {
		return nil, raise("AttributeError", "'%s' object has no attribute 'endswith'", pyTypeName(v))
	}
	if path, ok := s.annotatedPath(name); ok {
		if _, err := os.Stat(path); err == nil {
			return true, nil
		}
	}
	return "Invalid image file: " + name, nil
}

func runSaveImage(rc *runCtx) ([]any, *object, error) {
	im, err := rc.image("images")
	if err != nil {
		return nil, nil, err
	}
	ui, err := saveImages(rc, im, rc.str("filename_prefix"), rc.r.s.outputDir, "output", png.DefaultCompression)
	return []any{}, ui, err
}

func runPreviewImage(rc *runCtx) ([]any, *object, error) {
	im, err := rc.image("images")
	if err != nil {
		return nil, nil, err
	}
	key := rc.nodeID + "\x00" + rc.def.name
	suffix, ok := rc.r.inst.objects[key]
	if !ok {
		const letters = "abcdefghijklmnopqrstupvxyz" // sic, as nodes.py
		b := make([]byte, 5)
		for i := range b {
			b[i] = letters[rand.IntN(len(letters))]
		}
		suffix = "_temp_" + string(b)
		rc.r.inst.objects[key] = suffix
	}
	ui, err := saveImages(rc, im, "ComfyUI"+suffix, rc.r.s.tempDir, "temp", png.BestSpeed)
	return []any{}, ui, err
}

// saveImages is SaveImage.save_images: one PNG per batch item with the
// prompt (and extra_pnginfo) as text chunks.
func saveImages(rc *runCtx, im *imageVal, prefix, dir, typ string, level png.CompressionLevel) (*object, error) {
	s := rc.r.s
	sp, err := s.saveImagePath(prefix, dir, im.w, im.h)
	if err != nil {
		return nil, err
	}
	var texts [][2]string
	if p, ok := rc.in.Get("prompt"); ok && p != nil {
		texts = append(texts, [2]string{"prompt", string(encodePy(p))})
	}
	if e, ok := rc.in.Get("extra_pnginfo"); ok && e != nil {
		eo, ok := e.(*object)
		if !ok {
			return nil, raise("TypeError", "%s indices must be integers or slices, not str", pyTypeName(e))
		}
		for _, k := range eo.Keys() {
			v, _ := eo.Get(k)
			texts = append(texts, [2]string{k, string(encodePy(v))})
		}
	}
	data, err := encodePNG(rgbImage{im: im}, texts, level)
	if err != nil {
		return nil, raise("OSError", "%v", err)
	}
	results := []any{}
	counter := sp.counter
	for i := 0; i < im.batch; i++ {
		if ctxErr := rc.r.ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if im.fn != nil && i > 0 { // batch items differ (ImageBatch, noise, …)
			if data, err = encodePNG(rgbImage{im: im, b: i}, texts, level); err != nil {
				return nil, raise("OSError", "%v", err)
			}
		}
		name := strings.ReplaceAll(sp.filename, "%batch_num%", strconv.Itoa(i))
		file := fmt.Sprintf("%s_%05d_.png", name, counter)
		if err := rc.r.s.listings.writeFile(filepath.Join(sp.folder, file), data); err != nil {
			return nil, raise("OSError", "%v", err)
		}
		results = append(results, obj("filename", file, "subfolder", sp.subfolder, "type", typ))
		counter++
	}
	return obj("images", results), nil
}

// --- video ---

func runCreateVideo(rc *runCtx) ([]any, *object, error) {
	im, err := rc.image("images")
	if err != nil {
		return nil, nil, err
	}
	v := &videoVal{w: im.w, h: im.h, frames: im.batch, fps: rc.float("fps")}
	if a, ok := rc.val("audio").(*audioVal); ok {
		v.audio = a
	}
	return []any{v}, nil, nil
}

func runSaveVideo(rc *runCtx) ([]any, *object, error) {
	v, ok := rc.val("video").(*videoVal)
	if !ok {
		return nil, nil, wrongType(rc.val("video"), "get_dimensions")
	}
	return saveVideo(rc, rc.str("filename_prefix"), v.w, v.h, "mp4")
}

func runSaveWEBM(rc *runCtx) ([]any, *object, error) {
	im, err := rc.image("images")
	if err != nil {
		return nil, nil, err
	}
	return saveVideo(rc, rc.str("filename_prefix"), im.w, im.h, "webm")
}

func saveVideo(rc *runCtx, prefix string, w, h int, ext string) ([]any, *object, error) {
	s := rc.r.s
	sp, err := s.saveImagePath(prefix, s.outputDir, w, h)
	if err != nil {
		return nil, nil, err
	}
	if err := rc.r.ctx.Err(); err != nil {
		return nil, nil, err
	}
	file := fmt.Sprintf("%s_%05d_.%s", sp.filename, sp.counter, ext)
	s.addVirtual(filepath.Join(sp.folder, file), s.opts.VideoSize, rc.r.promptID+"/"+rc.nodeID+"/"+file)
	ui := obj("images", []any{obj("filename", file, "subfolder", sp.subfolder, "type", "output")}, "animated", []any{true})
	return []any{}, ui, nil
}

// --- audio ---

func runEmptyLatentAudio(rc *runCtx) ([]any, *object, error) {
	seconds := rc.float("seconds")
	b := int(rc.int("batch_size"))
	length := int(roundHalfEven(seconds*44100/2048)/2) * 2
	return []any{&latentVal{audio: true, length: length, seconds: seconds, batch: b}}, nil, nil
}

func runVAEDecodeAudio(rc *runCtx) ([]any, *object, error) {
	l, err := rc.latent("samples")
	if err != nil {
		return nil, nil, err
	}
	if !l.audio {
		return nil, nil, raise("RuntimeError", "Given groups=1, weight of size [64, 64, 1], expected input[%d, 4, %d] to have 64 channels, but got 4 channels instead", l.batch, l.w*l.h)
	}
	return []any{&audioVal{batch: l.batch, samples: l.length * 2048, rate: 44100}}, nil, nil
}

func runSaveAudio(rc *runCtx) ([]any, *object, error) {
	a, ok := rc.val("audio").(*audioVal)
	if !ok {
		return nil, nil, raise("TypeError", "'%s' object is not subscriptable", pyTypeName(rc.val("audio")))
	}
	s := rc.r.s
	sp, err := s.saveImagePath(rc.str("filename_prefix"), s.outputDir, 0, 0)
	if err != nil {
		return nil, nil, err
	}
	results := []any{}
	counter := sp.counter
	for i := 0; i < a.batch; i++ {
		if err := rc.r.ctx.Err(); err != nil {
			return nil, nil, err
		}
		name := strings.ReplaceAll(sp.filename, "%batch_num%", strconv.Itoa(i))
		file := fmt.Sprintf("%s_%05d_.flac", name, counter)
		s.addVirtual(filepath.Join(sp.folder, file), s.opts.AudioSize, rc.r.promptID+"/"+rc.nodeID+"/"+file)
		results = append(results, obj("filename", file, "subfolder", sp.subfolder, "type", "output"))
		counter++
	}
	return []any{}, obj("audio", results), nil
}

// --- text ---

// runPreviewAny is PreviewAny.main.
func runPreviewAny(rc *runCtx) ([]any, *object, error) {
	src := rc.val("source")
	var text string
	switch v := src.(type) {
	case nil:
		text = "None"
	case string:
		text = v
	case bool:
		text = pyStr(v)
	case *object, []any:
		text = string(encodePy(v)) // json.dumps
	default:
		text = pyStr(v)
	}
	return []any{}, obj("text", []any{text}), nil
}
