// Package digest measures a stream while a backend copies it: it counts the
// bytes, computes their SHA-256, enforces a declared size and stops when the
// caller's context ends.
package digest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"github.com/comfyq/comfyq/storage"
)

// Reader wraps the content given to Store.Put. Read it to the end, then Size and
// SHA256 describe what was read.
type Reader struct {
	ctx  context.Context
	r    io.Reader
	h    hash.Hash
	n    int64
	want int64 // expected size, or -1
	err  error // sticky error
}

// NewReader returns a Reader over r. size is the declared size, or a value <= 0
// if unknown (as in storage.PutOptions.Size).
func NewReader(ctx context.Context, r io.Reader, size int64) *Reader {
	if size <= 0 {
		size = -1
	}
	return &Reader{ctx: ctx, r: r, h: sha256.New(), want: size}
}

// Read reads from the underlying reader, hashing and counting the bytes. It
// fails with the context's error once the context is done, and with an error
// wrapping storage.ErrSizeMismatch if the content is longer or shorter than
// declared.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return 0, err
	}
	if r.want >= 0 && int64(len(p)) > r.want-r.n+1 {
		// Read at most one byte past the declared end: enough to notice a
		// longer stream without reading all of it.
		p = p[:r.want-r.n+1]
	}
	n, err := r.r.Read(p)
	if n > 0 {
		r.h.Write(p[:n])
		r.n += int64(n)
	}
	if r.want >= 0 && r.n > r.want {
		r.err = fmt.Errorf("%w: content is longer than the declared %d bytes", storage.ErrSizeMismatch, r.want)
		return 0, r.err
	}
	if err == io.EOF && r.want >= 0 && r.n != r.want {
		r.err = fmt.Errorf("%w: content is %d bytes, declared %d", storage.ErrSizeMismatch, r.n, r.want)
		return n, r.err
	}
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// Size returns the number of bytes read so far.
func (r *Reader) Size() int64 { return r.n }

// SHA256 returns the lower-case hex SHA-256 of the bytes read so far.
func (r *Reader) SHA256() string { return hex.EncodeToString(r.h.Sum(nil)) }
