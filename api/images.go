package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/comfyq/comfyq/internal/media"
	"github.com/comfyq/comfyq/job"
)

// checkBase64Image refuses a base64 input (plain or a data: URL) that does not decode,
// is over MaxImageBytes, is declared as something else than an image (data:text/html)
// or whose bytes are not an image, a video or an audio file (package media).
func (s *Server) checkBase64Image(field, raw string) error {
	refuse := func(msg string) error {
		return &job.SpecError{Code: CodeInvalidRequest, Field: field, Message: msg}
	}
	declared, data, _, err := media.DataURL(raw)
	if err != nil {
		return refuse(strings.TrimPrefix(err.Error(), "media: "))
	}
	if derr := media.CheckDeclared(declared); derr != nil {
		return refuse(strings.TrimPrefix(derr.Error(), "media: "))
	}
	if int64(base64.StdEncoding.DecodedLen(len(data))) > s.cfg.MaxImageBytes+2 {
		return tooLargeImage(field, s.cfg.MaxImageBytes)
	}
	head := make([]byte, media.SniffLen)
	dec := base64.NewDecoder(base64.StdEncoding, strings.NewReader(data))
	nHead, err := io.ReadFull(dec, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return refuse("base64 does not decode (standard alphabet with padding, optionally as a data: URL)")
	}
	n, err := io.Copy(io.Discard, dec)
	if err != nil {
		return refuse("base64 does not decode (standard alphabet with padding, optionally as a data: URL)")
	}
	if int64(nHead)+n > s.cfg.MaxImageBytes {
		return tooLargeImage(field, s.cfg.MaxImageBytes)
	}
	if ct, ok := media.Sniff(head[:nHead]); !ok {
		return refuse(fmt.Sprintf("the file is not an image, video or audio file (its bytes read as %s)", ct))
	}
	return nil
}
