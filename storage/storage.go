package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
	"time"
)

// Errors returned by every Store. Backends wrap them with details, so callers test
// them with errors.Is.
var (
	// ErrNotFound is returned by Get and Stat when no object has the key.
	ErrNotFound = errors.New("storage: object not found")
	// ErrNoURL is returned by URL when the store has no way to hand out a URL,
	// such as a file store without a base URL.
	ErrNoURL = errors.New("storage: store has no URL for objects")
	// ErrInvalidKey is returned for a key that breaks the rules of ValidateKey.
	ErrInvalidKey = errors.New("storage: invalid key")
	// ErrSizeMismatch is returned by Put when the reader yields more or fewer
	// bytes than PutOptions.Size said; nothing is stored.
	ErrSizeMismatch = errors.New("storage: content size differs from the size given")
	// ErrInvalidOptions is returned by Put for PutOptions that PutOptions.Validate
	// refuses.
	ErrInvalidOptions = errors.New("storage: invalid put options")
)

// Object describes a stored object.
type Object struct {
	// Key is the object's key, as given to the Store (without any prefix the
	// backend adds).
	Key string
	// Size is the object's length in bytes.
	Size int64
	// ContentType is the MIME type given when the object was put, or the one the
	// backend guessed; empty if unknown.
	ContentType string
	// SHA256 is the lower-case hex SHA-256 of the content, when known: always
	// for Put's result, and for Get and Stat on objects that a comfyq Store put.
	SHA256 string
	// ETag is the backend's entity tag, without quotes; opaque, and empty when the
	// backend has none.
	ETag string
	// ModTime is when the object was last written.
	ModTime time.Time
	// Metadata is the user metadata given to Put, as Get and Stat read it back;
	// nil when there is none.
	Metadata map[string]string
}

// PutOptions are the per-call options of Store.Put.
type PutOptions struct {
	// ContentType is the object's MIME type. Empty means the backend guesses from
	// the key's extension, falling back to "application/octet-stream".
	ContentType string
	// Size is the content's length in bytes if the caller knows it, or -1 if not;
	// 0 counts as unknown too, so that the zero PutOptions works. A positive Size
	// is checked: a reader that yields a different number of bytes fails the Put
	// and nothing is stored.
	Size int64
	// Metadata is user metadata stored with the object (S3's x-amz-meta-*).
	// Names are lower-case ASCII letters, digits, "-" and "_"; values printable
	// ASCII; "sha256" is reserved. See Validate.
	Metadata map[string]string
}

// maxMetadataLen bounds the user metadata, names and values together, as S3
// does (2 KiB).
const maxMetadataLen = 2048

// Validate checks the options, as every Store's Put does before it reads
// anything. The error wraps ErrInvalidOptions.
func (o PutOptions) Validate() error {
	for _, r := range o.ContentType {
		if r < 0x20 || r > 0x7e {
			return fmt.Errorf("%w: content type %q has a character outside printable ASCII", ErrInvalidOptions, o.ContentType)
		}
	}
	total := 0
	for name, value := range o.Metadata {
		if name == "" {
			return fmt.Errorf("%w: empty metadata name", ErrInvalidOptions)
		}
		if name == reservedMetaSHA256 {
			return fmt.Errorf("%w: metadata name %q is reserved", ErrInvalidOptions, name)
		}
		for _, r := range name {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
				return fmt.Errorf("%w: metadata name %q: only lower-case ASCII letters, digits, \"-\" and \"_\" are allowed", ErrInvalidOptions, name)
			}
		}
		for _, r := range value {
			if r < 0x20 || r > 0x7e {
				return fmt.Errorf("%w: metadata %q: value has a character outside printable ASCII", ErrInvalidOptions, name)
			}
		}
		total += len(name) + len(value)
	}
	if total > maxMetadataLen {
		return fmt.Errorf("%w: metadata is %d bytes, more than %d", ErrInvalidOptions, total, maxMetadataLen)
	}
	return nil
}

// reservedMetaSHA256 is the metadata name under which backends keep the SHA-256.
const reservedMetaSHA256 = "sha256"

// TypeByKey returns the MIME type for the key's extension, as the backends guess
// it when PutOptions.ContentType is empty: "image/png" for "a/b.png", and
// "application/octet-stream" when the extension is unknown.
func TypeByKey(key string) string {
	ext := strings.ToLower(path.Ext(key))
	if t, ok := mediaTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// mediaTypes are the types of files ComfyUI writes, fixed here so that the guess
// does not depend on the machine's mime.types (Go's built-in table has no audio
// or video types).
var mediaTypes = map[string]string{
	".png":  "image/png",
	".jpg":  "image/jpeg",
	".jpeg": "image/jpeg",
	".webp": "image/webp",
	".gif":  "image/gif",
	".avif": "image/avif",
	".bmp":  "image/bmp",
	".tif":  "image/tiff",
	".tiff": "image/tiff",
	".exr":  "image/x-exr",
	".svg":  "image/svg+xml",
	".mp4":  "video/mp4",
	".m4v":  "video/mp4",
	".webm": "video/webm",
	".mov":  "video/quicktime",
	".mkv":  "video/x-matroska",
	".avi":  "video/x-msvideo",
	".wav":  "audio/wav",
	".mp3":  "audio/mpeg",
	".flac": "audio/flac",
	".ogg":  "audio/ogg",
	".opus": "audio/ogg",
	".m4a":  "audio/mp4",
	".txt":  "text/plain; charset=utf-8",
	".json": "application/json",
	".glb":  "model/gltf-binary",
	".gltf": "model/gltf+json",
}

// Store is a place to keep objects under keys. It is implemented by the backends
// in the subpackages s3 and file; every method is safe for concurrent use, takes
// the caller's context and validates keys with ValidateKey.
type Store interface {
	// Put streams r into key, replacing any object already there, without holding
	// the whole content in memory. It returns the stored object's description,
	// with the size and SHA-256 computed while streaming. A Put that fails or is
	// canceled leaves the old object or none, never a partial one.
	Put(ctx context.Context, key string, r io.Reader, opts PutOptions) (Object, error)
	// Get opens the object for reading; the caller closes the reader. It returns
	// an error wrapping ErrNotFound if there is no such object.
	Get(ctx context.Context, key string) (io.ReadCloser, Object, error)
	// Stat describes the object without reading it; ErrNotFound if absent.
	Stat(ctx context.Context, key string) (Object, error)
	// Delete removes the object. Deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// URL returns a URL from which a client can fetch the object with a plain
	// GET: a presigned URL valid for ttl on S3 (ttl <= 0 picks the backend's
	// default), the configured base URL plus the key for the file backend, which
	// returns an error wrapping ErrNoURL when it has no base URL. URL does not
	// check that the object exists.
	URL(ctx context.Context, key string, ttl time.Duration) (string, error)
	// Ping checks that the store is reachable and that its bucket or directory
	// exists, for readiness checks.
	Ping(ctx context.Context) error
	// String describes the store without secrets, e.g. "s3://bucket/prefix".
	String() string
}
