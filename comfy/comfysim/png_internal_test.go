package comfysim

import (
	"bytes"
	"image/png"
	"testing"
)

// TestRenderedPNGIsTheSame: the fast path of encodePNG (pixels rendered to an
// *image.NRGBA first) writes the very bytes the per-pixel path writes.
func TestRenderedPNGIsTheSame(t *testing.T) {
	t.Parallel()
	images := []*imageVal{
		{w: 64, h: 48, batch: 1, rgb: [3]float32{1, 0.5, 0.25}},
		{w: 7, h: 5, batch: 2, fn: func(b int, u, v float64) [4]float32 {
			return [4]float32{float32(u), float32(v), float32(b) / 2, 1}
		}},
	}
	for i, im := range images {
		for b := range im.batch {
			var slow bytes.Buffer
			if err := (&png.Encoder{CompressionLevel: 4}).Encode(&slow, rgbImage{im: im, b: b}); err != nil {
				t.Fatal(err)
			}
			fast, err := encodePNG(rgbImage{im: im, b: b}, nil, 4)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(slow.Bytes(), fast) {
				t.Fatalf("image %d batch %d: the rendered PNG differs", i, b)
			}
		}
	}
}
