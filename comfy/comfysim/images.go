package comfysim

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strconv"
	"sync"
)

// imageVal is an IMAGE travelling between nodes: not a tensor, but enough
// to render it. Pixels are float32 like ComfyUI's tensors and are converted
// to bytes as SaveImage does (255*x clipped and truncated).
type imageVal struct {
	w, h, batch int
	rgb         [3]float32  // uniform colour when src is nil
	src         image.Image // loaded pixels (LoadImage), sampled to w×h
	inverts     int         // ImageInvert applications
	// fn, when set, defines every batch item's pixels in normalised
	// coordinates (u, v in [0, 1)), RGBA: the image nodes of nodes_image.go
	// compose it. src and rgb are then unused.
	fn func(b int, u, v float64) [4]float32
	// channels is 4 for an RGBA image (JoinImageWithAlpha), else 3.
	channels int
}

// chans is the size of the last tensor dimension.
func (im *imageVal) chans() int {
	if im.channels == 4 {
		return 4
	}
	return 3
}

// atN is the RGBA value of batch item b at normalised (u, v).
func (im *imageVal) atN(b int, u, v float64) [4]float32 {
	var p [4]float32
	if im.fn != nil {
		p = im.fn(b, u, v)
	} else {
		x := min(int(u*float64(im.w)), im.w-1)
		y := min(int(v*float64(im.h)), im.h-1)
		q := im.pixelBase(max(x, 0), max(y, 0))
		p = [4]float32{q[0], q[1], q[2], 1}
	}
	if im.fn != nil {
		for i := 0; i < im.inverts; i++ {
			p = [4]float32{1 - p[0], 1 - p[1], 1 - p[2], 1 - p[3]}
		}
	}
	return p
}

// at is the RGBA value of batch item b at pixel (x, y).
func (im *imageVal) at(b, x, y int) [4]float32 {
	if im.fn == nil {
		q := im.pixel(x, y)
		return [4]float32{q[0], q[1], q[2], 1}
	}
	return im.atN(b, (float64(x)+0.5)/float64(im.w), (float64(y)+0.5)/float64(im.h))
}

// pixel returns the float RGB value at (x, y) of the first batch item.
func (im *imageVal) pixel(x, y int) [3]float32 {
	if im.fn != nil {
		p := im.at(0, x, y)
		return [3]float32{p[0], p[1], p[2]}
	}
	p := im.pixelBase(x, y)
	for i := 0; i < im.inverts; i++ {
		p = [3]float32{1 - p[0], 1 - p[1], 1 - p[2]}
	}
	return p
}

// pixelBase is pixel before inversions, for images without fn.
func (im *imageVal) pixelBase(x, y int) [3]float32 {
	var p [3]float32
	if im.src == nil {
		p = im.rgb
	} else {
		b := im.src.Bounds()
		sx := b.Min.X + x*b.Dx()/max(im.w, 1)
		sy := b.Min.Y + y*b.Dy()/max(im.h, 1)
		c := color.NRGBAModel.Convert(im.src.At(sx, sy)).(color.NRGBA)
		p = [3]float32{float32(c.R) / 255, float32(c.G) / 255, float32(c.B) / 255}
	}
	return p
}

func toByte(v float32) uint8 {
	f := float32(255) * v
	switch {
	case f <= 0 || f != f:
		return 0
	case f >= 255:
		return 255
	}
	return uint8(f)
}

// rgbImage adapts an imageVal to image.Image without allocating its pixels,
// so very large images are encoded row by row.
type rgbImage struct {
	im *imageVal
	b  int // batch item
}

func (r rgbImage) ColorModel() color.Model { return color.NRGBAModel }
func (r rgbImage) Bounds() image.Rectangle { return image.Rect(0, 0, r.im.w, r.im.h) }
func (r rgbImage) Opaque() bool            { return r.im.chans() == 3 }
func (r rgbImage) At(x, y int) color.Color {
	if r.im.fn == nil {
		p := r.im.pixel(x, y)
		return color.NRGBA{toByte(p[0]), toByte(p[1]), toByte(p[2]), 255}
	}
	p := r.im.at(r.b, x, y)
	a := uint8(255)
	if r.im.chans() == 4 {
		a = toByte(p[3])
	}
	return color.NRGBA{toByte(p[0]), toByte(p[1]), toByte(p[2]), a}
}

// render returns the opaque image's pixels as an *image.NRGBA, which image/png
// encodes from its bytes instead of one At call (and one allocation) per pixel.
func (r rgbImage) render() *image.NRGBA {
	w, h := r.im.w, r.im.h
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		row := out.Pix[y*out.Stride:]
		for x := range w {
			p := r.im.at(r.b, x, y)
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = toByte(p[0]), toByte(p[1]), toByte(p[2]), 255
		}
	}
	return out
}

// encodePNG writes an RGB PNG with tEXt chunks placed after IHDR, as PIL
// writes PngInfo text.
func encodePNG(img image.Image, texts [][2]string, level png.CompressionLevel) ([]byte, error) {
	if r, ok := img.(rgbImage); ok && r.Opaque() {
		img = r.render() // the same bytes, encoded faster
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: level, BufferPool: pngBuffers}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	if len(texts) == 0 {
		return buf.Bytes(), nil
	}
	b := buf.Bytes()
	const ihdrEnd = 8 + 4 + 4 + 13 + 4
	var out bytes.Buffer
	out.Grow(len(b) + 256)
	out.Write(b[:ihdrEnd])
	for _, t := range texts {
		writeChunk(&out, "tEXt", append(append([]byte(latin1(t[0])), 0), latin1(t[1])...))
	}
	out.Write(b[ihdrEnd:])
	return out.Bytes(), nil
}

// pngBuffers lets successive encodes reuse their zlib writers: a new one per
// image was most of the simulator's allocation (flate's compressor is ~1 MB).
var pngBuffers = &pngBufferPool{}

type pngBufferPool struct{ p sync.Pool }

func (b *pngBufferPool) Get() *png.EncoderBuffer {
	if v, ok := b.p.Get().(*png.EncoderBuffer); ok {
		return v
	}
	return nil
}

func (b *pngBufferPool) Put(v *png.EncoderBuffer) { b.p.Put(v) }

// latin1 encodes s as ISO-8859-1 (json.dumps output is ASCII anyway).
func latin1(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			r = '?'
		}
		out = append(out, byte(r))
	}
	return out
}

func writeChunk(w *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	w.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	w.WriteString(typ)
	w.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	w.Write(n[:])
}

// pngTexts reads the tEXt (and uncompressed iTXt) chunks of a PNG.
func pngTexts(b []byte) [][2]string {
	var out [][2]string
	if len(b) < 8 || string(b[1:4]) != "PNG" {
		return nil
	}
	for i := 8; i+8 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		if n < 0 || i+12+n > len(b) {
			break
		}
		data := b[i+8 : i+8+n]
		switch typ {
		case "tEXt":
			if k, v, ok := bytes.Cut(data, []byte{0}); ok {
				out = append(out, [2]string{fromLatin1(k), fromLatin1(v)})
			}
		case "iTXt":
			// keyword \0 compression-flag method language \0 translated \0 text
			if k, rest, ok := bytes.Cut(data, []byte{0}); ok && len(rest) >= 2 && rest[0] == 0 {
				parts := bytes.SplitN(rest[2:], []byte{0}, 3)
				if len(parts) == 3 {
					out = append(out, [2]string{fromLatin1(k), string(parts[2])})
				}
			}
		}
		i += 12 + n
	}
	return out
}

func fromLatin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// pngHasAlpha reports whether a PNG's colour type carries alpha (PIL mode
// RGBA or LA).
func pngColorType(b []byte) int {
	if len(b) < 26 || string(b[1:4]) != "PNG" || string(b[12:16]) != "IHDR" {
		return -1
	}
	return int(b[25])
}

// encodeJPEG encodes img at quality q (PIL's quality, clamped to 1..100).
func encodeJPEG(img image.Image, q int) ([]byte, error) {
	q = min(max(q, 1), 100)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// uniformImage is a w×h image of one colour.
type uniformImage struct {
	w, h int
	c    color.NRGBA
}

func (u uniformImage) ColorModel() color.Model { return color.NRGBAModel }
func (u uniformImage) Bounds() image.Rectangle { return image.Rect(0, 0, u.w, u.h) }
func (u uniformImage) At(int, int) color.Color { return u.c }
func (u uniformImage) Opaque() bool            { return u.c.A == 255 }

// examplePNG is the input/example.png of a fresh node: a small gradient.
func examplePNG() []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 64, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 4), uint8(y * 4), 128, 255})
		}
	}
	b, _ := encodePNG(img, nil, png.DefaultCompression)
	return b
}

// containSize is PIL's ImageOps.contain size for a w×h image in a box.
func containSize(w, h, box int) (int, int) {
	if w <= 0 || h <= 0 {
		return 1, 1
	}
	imRatio := float64(w) / float64(h)
	switch {
	case imRatio > 1:
		return box, max(1, int(roundHalfEven(float64(h)/float64(w)*float64(box))))
	case imRatio < 1:
		return max(1, int(roundHalfEven(float64(w)/float64(h)*float64(box)))), box
	}
	return box, box
}

func itoa(i int) string { return strconv.Itoa(i) }
