package comfy

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Binary frame types (§6). Type 2 is internal to ComfyUI and never sent.
const (
	BinaryPreviewImage             = 1
	BinaryText                     = 3
	BinaryPreviewImageWithMetadata = 4
)

// Image formats of a type 1 preview.
const (
	ImageFormatJPEG = 1
	ImageFormatPNG  = 2
)

// BinaryFrame is a decoded binary WebSocket frame. Its byte slices alias the frame.
type BinaryFrame struct {
	Type uint32
	// ImageFormat is set for type 1: ImageFormatJPEG or ImageFormatPNG.
	ImageFormat uint32
	// Metadata is set for type 4.
	Metadata *PreviewMetadata
	// NodeID and Text are set for type 3.
	NodeID string
	Text   string
	// Image holds the image bytes of types 1 and 4.
	Image []byte
	// Payload holds the bytes after the type word of an unknown type.
	Payload []byte
}

// PreviewMetadata is the JSON header of a type 4 preview.
type PreviewMetadata struct {
	NodeID        string  `json:"node_id"`
	PromptID      string  `json:"prompt_id"`
	DisplayNodeID string  `json:"display_node_id"`
	ParentNodeID  *string `json:"parent_node_id"`
	RealNodeID    string  `json:"real_node_id"`
	// ImageType is "image/jpeg" or "image/png".
	ImageType string `json:"image_type"`
}

// ContentType returns the MIME type of the frame's image, or "".
func (f *BinaryFrame) ContentType() string {
	switch f.Type {
	case BinaryPreviewImage:
		switch f.ImageFormat {
		case ImageFormatJPEG:
			return "image/jpeg"
		case ImageFormatPNG:
			return "image/png"
		}
	case BinaryPreviewImageWithMetadata:
		if f.Metadata != nil {
			return f.Metadata.ImageType
		}
	}
	return ""
}

var errShortFrame = errors.New("comfy: binary frame too short")

// DecodeBinaryFrame decodes a binary WebSocket frame: a big-endian uint32 type followed
// by its payload. Unknown types are returned with their Payload. It never panics.
func DecodeBinaryFrame(b []byte) (*BinaryFrame, error) {
	if len(b) < 4 {
		return nil, errShortFrame
	}
	f := &BinaryFrame{Type: binary.BigEndian.Uint32(b)}
	rest := b[4:]
	switch f.Type {
	case BinaryPreviewImage:
		if len(rest) < 4 {
			return nil, fmt.Errorf("%w: preview image without format", errShortFrame)
		}
		f.ImageFormat = binary.BigEndian.Uint32(rest)
		f.Image = rest[4:]
	case BinaryText:
		node, text, err := lengthPrefixed(rest)
		if err != nil {
			return nil, fmt.Errorf("comfy: text frame: %w", err)
		}
		if !utf8.Valid(node) {
			return nil, errors.New("comfy: text frame: node id is not UTF-8")
		}
		f.NodeID = string(node)
		f.Text = string(text)
	case BinaryPreviewImageWithMetadata:
		meta, img, err := lengthPrefixed(rest)
		if err != nil {
			return nil, fmt.Errorf("comfy: preview frame: %w", err)
		}
		var m PreviewMetadata
		if err := json.Unmarshal(meta, &m); err != nil {
			return nil, fmt.Errorf("comfy: preview frame metadata: %w", err)
		}
		f.Metadata = &m
		f.Image = img
	default:
		f.Payload = rest
	}
	return f, nil
}

// lengthPrefixed splits [u32 n][n bytes][rest].
func lengthPrefixed(b []byte) (head, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, errShortFrame
	}
	n := uint64(binary.BigEndian.Uint32(b))
	if n > uint64(len(b)-4) {
		return nil, nil, fmt.Errorf("length %d exceeds the %d bytes left", n, len(b)-4)
	}
	return b[4 : 4+n], b[4+n:], nil
}

// EncodeBinaryFrame is the inverse of DecodeBinaryFrame, for simulators and tests.
func EncodeBinaryFrame(f *BinaryFrame) ([]byte, error) {
	out := binary.BigEndian.AppendUint32(nil, f.Type)
	switch f.Type {
	case BinaryPreviewImage:
		out = binary.BigEndian.AppendUint32(out, f.ImageFormat)
		out = append(out, f.Image...)
	case BinaryText:
		out = binary.BigEndian.AppendUint32(out, uint32(len(f.NodeID)))
		out = append(out, f.NodeID...)
		out = append(out, f.Text...)
	case BinaryPreviewImageWithMetadata:
		var m PreviewMetadata
		if f.Metadata != nil {
			m = *f.Metadata
		}
		meta, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(meta)))
		out = append(out, meta...)
		out = append(out, f.Image...)
	default:
		out = append(out, f.Payload...)
	}
	return out, nil
}
