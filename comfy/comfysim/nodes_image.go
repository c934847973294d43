package comfysim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"image/png"
	"math"
	"path/filepath"
	"strconv"
	"strings"
)

// The model-free image classes an orchestrator meets in real workflows, after
// ComfyUI's nodes.py and comfy_extras (nodes_images.py, nodes_mask.py,
// nodes_compositing.py, nodes_post_processing.py). Pixels are functions of
// normalised coordinates (imageVal.fn); shapes, batch sizes, errors and
// output files follow the real classes.

func init() {
	for name, run := range map[string]nodeFunc{
		"ImageBatch":           runImageBatch,
		"ImageBlur":            runImageBlur,
		"ImageCrop":            runImageCrop,
		"ImageCompositeMasked": runImageCompositeMasked,
		"SolidMask":            runSolidMask,
		"JoinImageWithAlpha":   runJoinImageWithAlpha,
		"ImageAddNoise":        runImageAddNoise,
		"RepeatImageBatch":     runRepeatImageBatch,
		"SaveAnimatedWEBP":     runSaveAnimatedWEBP,
		"SaveAnimatedPNG":      runSaveAnimatedPNG,
	} {
		nodeImpls[name] = func(d *classDef) { d.run = run }
	}
}

// composed returns an image of the given shape whose pixels are fn.
func composed(w, h, batch, channels int, fn func(b int, u, v float64) [4]float32) *imageVal {
	return &imageVal{w: w, h: h, batch: batch, channels: channels, fn: fn}
}

// runImageBatch is nodes.py ImageBatch.batch: image2 is resized to image1's
// size, then the two are concatenated. 0.3.64 concatenates as they are, so an
// RGB and an RGBA image raise torch.cat's size mismatch; 0.38 first pads the
// one without alpha with an opaque alpha channel.
func runImageBatch(rc *runCtx) ([]any, *object, error) {
	a, err := rc.image("image1")
	if err != nil {
		return nil, nil, err
	}
	b, err := rc.image("image2")
	if err != nil {
		return nil, nil, err
	}
	ch := a.chans()
	if a.chans() != b.chans() {
		if !rc.r.s.jobsAPI() {
			return nil, nil, &pyError{typ: "RuntimeError",
				msg: fmt.Sprintf("Sizes of tensors must match except in dimension 0. Expected size %d but got size %d for tensor number 1 in the list.",
					a.chans(), b.chans()),
				traceback: classTraceback(rc.def, "batch", "s = torch.cat((image1, image2), dim=0)")}
		}
		ch = 4
	}
	if err := checkPixels(a.w, a.h, a.batch+b.batch); err != nil {
		return nil, nil, err
	}
	n := a.batch
	return []any{composed(a.w, a.h, a.batch+b.batch, ch, func(i int, u, v float64) [4]float32 {
		if i < n {
			return a.atN(i, u, v)
		}
		return b.atN(i-n, u, v) // common_upscale to image1's size: same normalised point
	})}, nil, nil
}

// runImageBlur is nodes_post_processing.py Blur: radius 0 is the identity.
// A blur leaves the simulator's uniform regions unchanged, and edges are not
// smoothed: the shape is what matters downstream.
func runImageBlur(rc *runCtx) ([]any, *object, error) {
	im, err := rc.image("image")
	if err != nil {
		return nil, nil, err
	}
	out := *im
	return []any{&out}, nil, nil
}

// runImageCrop is nodes_images.py ImageCrop.crop: x and y are clamped inside
// the image and the crop ends at its border.
func runImageCrop(rc *runCtx) ([]any, *object, error) {
	im, err := rc.image("image")
	if err != nil {
		return nil, nil, err
	}
	x := min(int(rc.int("x")), im.w-1)
	y := min(int(rc.int("y")), im.h-1)
	w := min(x+int(rc.int("width")), im.w) - x
	h := min(y+int(rc.int("height")), im.h) - y
	W, H := float64(im.w), float64(im.h)
	return []any{composed(w, h, im.batch, im.chans(), func(b int, u, v float64) [4]float32 {
		return im.atN(b, (float64(x)+u*float64(w))/W, (float64(y)+v*float64(h))/H)
	})}, nil, nil
}

// runImageCompositeMasked is nodes_mask.py ImageCompositeMasked.composite:
// source (optionally resized to the destination) pasted at x, y through mask,
// repeated to the destination's batch.
func runImageCompositeMasked(rc *runCtx) ([]any, *object, error) {
	dst, err := rc.image("destination")
	if err != nil {
		return nil, nil, err
	}
	src, err := rc.image("source")
	if err != nil {
		return nil, nil, err
	}
	if dst.chans() != src.chans() {
		return nil, nil, &pyError{typ: "RuntimeError",
			msg:       fmt.Sprintf("The size of tensor a (%d) must match the size of tensor b (%d) at non-singleton dimension 1", src.chans(), dst.chans()),
			traceback: classTraceback(rc.def, "composite", "destination[..., top:bottom, left:right] = source_portion + destination_portion")}
	}
	sw, sh := src.w, src.h
	if pyTruthy(rc.val("resize_source")) {
		sw, sh = dst.w, dst.h
	}
	x := max(-sw, min(int(rc.int("x")), dst.w))
	y := max(-sh, min(int(rc.int("y")), dst.h))
	mask, hasMask := rc.val("mask").(maskVal)
	W, H := float64(dst.w), float64(dst.h)
	return []any{composed(dst.w, dst.h, dst.batch, dst.chans(), func(b int, u, v float64) [4]float32 {
		d := dst.atN(b, u, v)
		px, py := int(u*W), int(v*H)
		if px < x || py < y || px >= x+sw || py >= y+sh {
			return d
		}
		su, sv := (float64(px-x)+0.5)/float64(sw), (float64(py-y)+0.5)/float64(sh)
		s := src.atN(b%src.batch, su, sv)
		m := float32(1)
		if hasMask {
			m = mask.atN(b%max(mask.batch, 1), su, sv)
		}
		var o [4]float32
		for i := range o {
			o[i] = m*s[i] + (1-m)*d[i]
		}
		return o
	})}, nil, nil
}

// runSolidMask is nodes_mask.py SolidMask: torch.full((1, height, width), value).
func runSolidMask(rc *runCtx) ([]any, *object, error) {
	w, h := int(rc.int("width")), int(rc.int("height"))
	if err := checkPixels(w, h, 1); err != nil {
		return nil, nil, err
	}
	return []any{maskVal{w: w, h: h, batch: 1, value: float32(rc.float("value"))}}, nil, nil
}

// runJoinImageWithAlpha is nodes_compositing.py JoinImageWithAlpha: RGBA with
// alpha = 1 - mask (resized to the image), batch the smaller of the two.
func runJoinImageWithAlpha(rc *runCtx) ([]any, *object, error) {
	im, err := rc.image("image")
	if err != nil {
		return nil, nil, err
	}
	m, ok := rc.val("alpha").(maskVal)
	if !ok {
		return nil, nil, wrongType(rc.val("alpha"), "shape")
	}
	return []any{composed(im.w, im.h, min(im.batch, max(m.batch, 1)), 4, func(b int, u, v float64) [4]float32 {
		p := im.atN(b, u, v)
		p[3] = 1 - m.atN(b, u, v)
		return p
	})}, nil, nil
}

// runImageAddNoise is nodes_images.py ImageAddNoise: image + strength ×
// randn(seed), clipped to [0, 1]. The noise is a deterministic function of
// the seed, so the same inputs give the same pixels.
func runImageAddNoise(rc *runCtx) ([]any, *object, error) {
	im, err := rc.image("image")
	if err != nil {
		return nil, nil, err
	}
	seed := rc.str("seed")
	strength := float32(rc.float("strength"))
	W, H := float64(im.w), float64(im.h)
	return []any{composed(im.w, im.h, im.batch, im.chans(), func(b int, u, v float64) [4]float32 {
		p := im.atN(b, u, v)
		x, y := int(u*W), int(v*H)
		for c := 0; c < im.chans(); c++ {
			n := gaussian(seed, b, x, y, c)
			p[c] = float32(math.Min(1, math.Max(0, float64(p[c]+strength*n))))
		}
		return p
	})}, nil, nil
}

// gaussian is a standard normal value determined by its arguments
// (Box-Muller over two hashed uniforms).
func gaussian(seed string, b, x, y, c int) float32 {
	h := fnv.New64a()
	_, _ = fmt.Fprintf(h, "%s/%d/%d/%d/%d", seed, b, x, y, c)
	s := h.Sum64()
	u1 := (float64(s>>40) + 1) / (1 << 24)
	u2 := float64(s&0xffffff) / (1 << 24)
	return float32(math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2))
}

// runRepeatImageBatch is nodes_images.py RepeatImageBatch: image.repeat((amount, 1, 1, 1)).
func runRepeatImageBatch(rc *runCtx) ([]any, *object, error) {
	im, err := rc.image("image")
	if err != nil {
		return nil, nil, err
	}
	amount := int(rc.int("amount"))
	if err := checkPixels(im.w, im.h, im.batch*amount); err != nil {
		return nil, nil, err
	}
	n := im.batch
	return []any{composed(im.w, im.h, n*amount, im.chans(), func(b int, u, v float64) [4]float32 {
		return im.atN(b%n, u, v)
	})}, nil, nil
}

// runSaveAnimatedWEBP is nodes_images.py SaveAnimatedWEBP.save_images: one
// animated WebP of every frame, {"images": [...], "animated": [frames != 1]}.
// Frames are lossless whatever lossless, quality and method say (the
// simulator's WebP encoder knows only VP8L), and no EXIF is written.
func runSaveAnimatedWEBP(rc *runCtx) ([]any, *object, error) {
	im, err := rc.image("images")
	if err != nil {
		return nil, nil, err
	}
	fps := rc.float("fps")
	var frames [][]byte
	for b := 0; b < im.batch; b++ {
		if cerr := rc.r.ctx.Err(); cerr != nil {
			return nil, nil, cerr
		}
		frames = append(frames, encodeWebP(rgbImage{im: im, b: b})[12:]) // the VP8L chunk
	}
	data := animatedWebP(im.w, im.h, im.chans() == 4, int(1000.0/fps), frames)
	ui, err := saveAnimated(rc, im, "webp", data)
	if err != nil {
		return nil, nil, err
	}
	ui.Set("animated", []any{im.batch != 1})
	return []any{}, ui, nil
}

// runSaveAnimatedPNG is nodes_images.py SaveAnimatedPNG.save_images: one APNG,
// the prompt and extra_pnginfo in "comf" chunks after the image data, and
// {"images": [...], "animated": [true]}.
func runSaveAnimatedPNG(rc *runCtx) ([]any, *object, error) {
	im, err := rc.image("images")
	if err != nil {
		return nil, nil, err
	}
	var chunks [][2]string
	if p, ok := rc.in.Get("prompt"); ok && p != nil {
		chunks = append(chunks, [2]string{"prompt", string(encodePy(p))})
	}
	if e, ok := rc.in.Get("extra_pnginfo"); ok && e != nil {
		if eo, ok := e.(*object); ok {
			for _, k := range eo.Keys() {
				v, _ := eo.Get(k)
				chunks = append(chunks, [2]string{k, string(encodePy(v))})
			}
		}
	}
	level := png.CompressionLevel(-int(rc.int("compress_level")))
	if rc.int("compress_level") == 0 {
		level = png.NoCompression
	}
	data, err := animatedPNG(im, rc.float("fps"), chunks, level)
	if err != nil {
		return nil, nil, raise("OSError", "%v", err)
	}
	ui, err := saveAnimated(rc, im, "png", data)
	if err != nil {
		return nil, nil, err
	}
	ui.Set("animated", []any{true})
	return []any{}, ui, nil
}

// saveAnimated writes one file "<prefix>_<counter>_.<ext>" in output/.
func saveAnimated(rc *runCtx, im *imageVal, ext string, data []byte) (*object, error) {
	s := rc.r.s
	sp, err := s.saveImagePath(rc.str("filename_prefix"), s.outputDir, im.w, im.h)
	if err != nil {
		return nil, err
	}
	file := fmt.Sprintf("%s_%05d_.%s", strings.ReplaceAll(sp.filename, "%batch_num%", "0"), sp.counter, ext)
	if err := rc.r.s.listings.writeFile(filepath.Join(sp.folder, file), data); err != nil {
		return nil, raise("OSError", "%v", err)
	}
	return obj("images", []any{obj("filename", file, "subfolder", sp.subfolder, "type", "output")}), nil
}

// animatedWebP wraps VP8L frame chunks in an animated WebP container (VP8X,
// ANIM, one ANMF per frame), as PIL's save_all writes it.
func animatedWebP(w, h int, alpha bool, durationMS int, frames [][]byte) []byte {
	u24 := func(b []byte, v int) []byte { return append(b, byte(v), byte(v>>8), byte(v>>16)) }
	chunk := func(out []byte, typ string, data []byte) []byte {
		out = append(out, typ...)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(data)))
		out = append(out, data...)
		if len(data)&1 == 1 {
			out = append(out, 0)
		}
		return out
	}
	flags := byte(0x02) // animation
	if alpha {
		flags |= 0x10
	}
	vp8x := u24(u24([]byte{flags, 0, 0, 0}, w-1), h-1)
	var body []byte
	body = chunk(body, "VP8X", vp8x)
	body = chunk(body, "ANIM", []byte{0, 0, 0, 0, 0, 0}) // background, loop forever
	for _, f := range frames {
		hdr := u24(u24(u24(u24(u24(nil, 0), 0), w-1), h-1), durationMS)
		hdr = append(hdr, 0)
		body = chunk(body, "ANMF", append(hdr, f...))
	}
	out := append([]byte("RIFF"), 0, 0, 0, 0)
	out = append(out, "WEBP"...)
	out = append(out, body...)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

// animatedPNG writes an APNG: acTL, then per frame fcTL and the frame's
// image data (IDAT for the first, fdAT after), then the "comf" metadata.
func animatedPNG(im *imageVal, fps float64, comf [][2]string, level png.CompressionLevel) ([]byte, error) {
	var out bytes.Buffer
	seq := uint32(0)
	put := func(typ string, data []byte) {
		var c bytes.Buffer
		writeChunk(&c, typ, data)
		out.Write(c.Bytes())
	}
	delayNum, delayDen := uint16(math.Round(1000/fps)), uint16(1000)
	for b := 0; b < im.batch; b++ {
		frame, err := encodePNG(rgbImage{im: im, b: b}, nil, level)
		if err != nil {
			return nil, err
		}
		if b == 0 {
			out.Write(frame[:8+4+4+13+4]) // signature and IHDR
			ac := binary.BigEndian.AppendUint32(nil, uint32(im.batch))
			put("acTL", binary.BigEndian.AppendUint32(ac, 0))
		}
		fc := binary.BigEndian.AppendUint32(nil, seq)
		seq++
		for _, v := range []uint32{uint32(im.w), uint32(im.h), 0, 0} {
			fc = binary.BigEndian.AppendUint32(fc, v)
		}
		fc = binary.BigEndian.AppendUint16(fc, delayNum)
		fc = binary.BigEndian.AppendUint16(fc, delayDen)
		fc = append(fc, 0, 0)
		put("fcTL", fc)
		for _, idat := range pngChunks(frame, "IDAT") {
			if b == 0 {
				put("IDAT", idat)
				continue
			}
			put("fdAT", append(binary.BigEndian.AppendUint32(nil, seq), idat...))
			seq++
		}
	}
	for _, c := range comf {
		put("comf", append(append([]byte(latin1(c[0])), 0), latin1(c[1])...))
	}
	put("IEND", nil)
	return out.Bytes(), nil
}

// pngChunks returns the data of every chunk of type typ.
func pngChunks(b []byte, typ string) [][]byte {
	var out [][]byte
	for i := 8; i+12 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[i:]))
		if i+12+n > len(b) {
			break
		}
		if string(b[i+4:i+8]) == typ {
			out = append(out, b[i+8:i+8+n])
		}
		i += 12 + n
	}
	return out
}

// classTraceback is traceback.format_tb for an exception raised in a
// class's function at the given source line.
func classTraceback(def *classDef, function, line string) []any {
	tb := nodeTraceback(def)
	module, _ := def.info.getString("python_module")
	file := "/ComfyUI/" + replaceDots(module) + ".py"
	tb[len(tb)-1] = "  File \"" + file + "\", line " + strconv.Itoa(classLine(def.name)) + ", in " + function + "\n    " + line + "\n"
	return tb
}

// classLine is a stable stand-in for the source line of a class's function.
func classLine(name string) int { return 100 + int(crc32.ChecksumIEEE([]byte(name))%1900) }
