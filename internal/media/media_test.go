package media_test

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/media"
)

var png1x1, _ = base64.StdEncoding.DecodeString("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")

func TestSniff(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		data []byte
		ok   bool
	}{
		"png":           {png1x1, true},
		"jpeg":          {[]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), true},
		"gif":           {[]byte("GIF89a\x01\x00\x01\x00"), true},
		"webp":          {[]byte("RIFF\x24\x00\x00\x00WEBPVP8 "), true},
		"webm":          {[]byte("\x1a\x45\xdf\xa3\x01\x00\x00\x00"), true},
		"wav":           {[]byte("RIFF\x24\x00\x00\x00WAVEfmt "), true},
		"html":          {[]byte("<!DOCTYPE html><script>alert(1)</script>"), false},
		"html late tag": {[]byte("   <html><body>"), false},
		"svg":           {[]byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`), false},
		"text":          {[]byte("hello"), false},
		"json":          {[]byte(`{"a": 1}`), false},
		"zeros":         {make([]byte, 600), false},
		"empty":         {nil, false},
		"pdf":           {[]byte("%PDF-1.7\n"), false},
		"zip":           {[]byte("PK\x03\x04"), false},
		"elf":           {[]byte("\x7fELF\x02\x01\x01"), false},
		"html then png": {append([]byte("<html>"), png1x1...), false},
		"png then html": {append(bytes.Clone(png1x1), "<html>"...), true},
	} {
		ct, ok := media.Sniff(tt.data)
		require.Equal(t, tt.ok, ok, "%s: sniffed %s", name, ct)
		require.NotEmpty(t, ct)
	}
}

func TestDataURL(t *testing.T) {
	t.Parallel()
	mt, payload, isData, err := media.DataURL("data:image/png;base64,iVBOR")
	require.NoError(t, err)
	require.True(t, isData)
	require.Equal(t, "image/png", mt)
	require.Equal(t, "iVBOR", payload)
	require.NoError(t, media.CheckDeclared(mt))

	mt, _, _, err = media.DataURL("data:Text/HTML;charset=utf-8;base64,PGh0bWw+")
	require.NoError(t, err)
	require.Equal(t, "text/html", mt)
	require.ErrorContains(t, media.CheckDeclared(mt), "text/html is not an image")
	require.Error(t, media.CheckDeclared("image/svg+xml"))
	require.NoError(t, media.CheckDeclared(""))

	_, payload, isData, err = media.DataURL("iVBOR")
	require.NoError(t, err)
	require.False(t, isData)
	require.Equal(t, "iVBOR", payload)

	_, _, _, err = media.DataURL("data:text/html,<script>alert(1)</script>")
	require.Error(t, err)
	_, _, _, err = media.DataURL("data:image/png;base64")
	require.Error(t, err)
}

// FuzzDataURL: DataURL never panics, a string that is not a data: URL comes back
// whole, and the payload of one is the text after its first comma.
func FuzzDataURL(f *testing.F) {
	for _, s := range []string{"data:image/png;base64,iVBOR", "iVBOR", "data:,", "data:;base64,", "data:text/html,<b>",
		"data:image/png;charset=x;base64,AAAA", "data:image/png;base64"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mt, payload, isData, err := media.DataURL(s)
		if !isData {
			require.NoError(t, err)
			require.Equal(t, s, payload)
			return
		}
		if err == nil {
			require.True(t, len(payload) < len(s) && s[len(s)-len(payload)-1] == ',', "%q", s)
			_ = media.CheckDeclared(mt)
		}
	})
}
