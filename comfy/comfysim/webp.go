package comfysim

import (
	"encoding/binary"
	"image"
	"image/color"
	"math/bits"
)

// encodeWebP writes img as a lossless WebP (VP8L). The standard library has
// no WebP encoder and go.mod has none, so this is a minimal one: no
// transforms, no backward references, fixed 8-bit prefix codes. Files are
// valid WebP but about 4 bytes per pixel; quality is ignored.
func encodeWebP(img image.Image) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	bw := &bitWriter{}
	bw.write(0x2f, 8) // VP8L signature
	bw.write(uint32(w-1), 14)
	bw.write(uint32(h-1), 14)
	alphaPos := len(bw.buf)*8 + int(bw.nbits) // alpha_is_used, patched below
	bw.write(0, 1)
	bw.write(0, 3) // version
	bw.write(0, 1) // no transform
	bw.write(0, 1) // no colour cache
	bw.write(0, 1) // no meta prefix codes

	writeFixedCode(bw, 280) // green + length prefixes
	writeFixedCode(bw, 256) // red
	writeFixedCode(bw, 256) // blue
	writeFixedCode(bw, 256) // alpha
	// distance: a simple code with the single symbol 0
	bw.write(1, 1)
	bw.write(0, 1)
	bw.write(0, 1)
	bw.write(0, 1)

	usesAlpha := false
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if c.A != 255 {
				usesAlpha = true
			}
			bw.write(uint32(bits.Reverse8(c.G)), 8)
			bw.write(uint32(bits.Reverse8(c.R)), 8)
			bw.write(uint32(bits.Reverse8(c.B)), 8)
			bw.write(uint32(bits.Reverse8(c.A)), 8)
		}
	}
	data := bw.bytes()
	if usesAlpha {
		data[alphaPos/8] |= 1 << (alphaPos % 8)
	}

	pad := len(data) & 1
	out := make([]byte, 0, 20+len(data)+pad)
	out = append(out, "RIFF"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(4+8+len(data)+pad))
	out = append(out, "WEBPVP8L"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(data)))
	out = append(out, data...)
	if pad == 1 {
		out = append(out, 0)
	}
	return out
}

// writeFixedCode writes a normal prefix code giving symbols 0..255 length 8
// and any further symbols length 0. The code-length code has two symbols,
// 0 and 8, of length 1 each.
func writeFixedCode(bw *bitWriter, alphabet int) {
	bw.write(0, 1)    // normal code
	bw.write(12-4, 4) // 12 code-length code lengths: order 17,18,0,1,2,3,4,5,16,6,7,8
	for i := 0; i < 12; i++ {
		switch i {
		case 2, 11: // symbols 0 and 8
			bw.write(1, 3)
		default:
			bw.write(0, 3)
		}
	}
	bw.write(0, 1) // max_symbol = alphabet size
	for s := 0; s < alphabet; s++ {
		if s < 256 {
			bw.write(1, 1) // canonical code of length-symbol 8
		} else {
			bw.write(0, 1) // length-symbol 0
		}
	}
}

// bitWriter packs bits least significant first, as VP8L reads them.
type bitWriter struct {
	buf   []byte
	acc   uint64
	nbits uint
}

func (w *bitWriter) write(v uint32, n uint) {
	w.acc |= uint64(v) << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
}

func (w *bitWriter) bytes() []byte {
	if w.nbits > 0 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc, w.nbits = 0, 0
	}
	return w.buf
}
