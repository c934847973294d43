// Package media recognises the files a submission gives as inputs (package job's
// ImageSource): pictures, and the video and audio some loader nodes read from the
// same input folder. The bytes decide, never a name or a declared type: a page of
// HTML, a script or an SVG (which can carry script) is not an input, whatever its
// data: URL or file name says.
package media

import (
	"fmt"
	"net/http"
	"strings"
)

// SniffLen is how many leading bytes Sniff looks at (http.DetectContentType's).
const SniffLen = 512

// Sniff returns the content type of a file from its first bytes (at most SniffLen
// are read) and whether it is an accepted input: an image (PNG, JPEG, GIF, WebP,
// BMP, ICO), a video (MP4, WebM, AVI) or an audio file (WAV, MP3, FLAC, Ogg). The
// detection is the standard library's (the WHATWG MIME Sniffing algorithm).
func Sniff(head []byte) (contentType string, ok bool) {
	ct := http.DetectContentType(head)
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	return ct, accepted(mt)
}

func accepted(mt string) bool {
	switch {
	case mt == "image/svg+xml":
		return false
	case strings.HasPrefix(mt, "image/"), strings.HasPrefix(mt, "video/"), strings.HasPrefix(mt, "audio/"):
		return true
	case mt == "application/ogg":
		return true
	}
	return false
}

// DataURL splits a base64 data: URL ("data:image/png;base64,iVBOR…") into its
// declared media type and its base64 payload. A string that is not a data: URL is
// returned as the payload with isDataURL false. A data: URL that is not base64 is
// an error: inputs are binary.
func DataURL(s string) (mediaType, payload string, isDataURL bool, err error) {
	rest, found := strings.CutPrefix(s, "data:")
	if !found {
		return "", s, false, nil
	}
	params, payload, found := strings.Cut(rest, ",")
	if !found {
		return "", "", true, fmt.Errorf("media: a data: URL has a comma before its data")
	}
	params, isBase64 := strings.CutSuffix(params, ";base64")
	if !isBase64 {
		return "", "", true, fmt.Errorf("media: a data: URL of an input must be base64 (data:image/png;base64,…)")
	}
	mediaType, _, _ = strings.Cut(params, ";")
	return strings.ToLower(strings.TrimSpace(mediaType)), payload, true, nil
}

// CheckDeclared refuses a data: URL whose declared type is not an accepted input
// (data:text/html, data:image/svg+xml). An empty type is judged by the bytes alone.
func CheckDeclared(mediaType string) error {
	if mediaType == "" || accepted(mediaType) {
		return nil
	}
	return fmt.Errorf("media: a data: URL of type %s is not an image, video or audio file", mediaType)
}
