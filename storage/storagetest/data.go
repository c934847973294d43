package storagetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	"github.com/comfyq/comfyq/storage"
)

// Reader produces size bytes of deterministic pseudo-random content, generated
// as it is read: a test can stream gigabytes through a Store without holding
// them, and produce the same bytes again to compare.
type Reader struct {
	state uint64
	left  int64
	buf   [8]byte
	bufN  int // unread bytes at the end of buf
}

// NewReader returns a Reader of size bytes for seed. Two Readers with the same
// seed produce the same bytes.
func NewReader(seed uint64, size int64) *Reader {
	return &Reader{state: seed*0x9E3779B97F4A7C15 + 1, left: size}
}

// next is splitmix64: fast, and good enough to defeat compression and dedup.
func (r *Reader) next() uint64 {
	r.state += 0x9E3779B97F4A7C15
	z := r.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := 0
	for n < len(p) && r.bufN > 0 {
		p[n] = r.buf[8-r.bufN]
		r.bufN--
		n++
	}
	for ; n+8 <= len(p); n += 8 {
		binary.LittleEndian.PutUint64(p[n:], r.next())
	}
	if n < len(p) {
		binary.LittleEndian.PutUint64(r.buf[:], r.next())
		r.bufN = 8
		for n < len(p) {
			p[n] = r.buf[8-r.bufN]
			r.bufN--
			n++
		}
	}
	r.left -= int64(n)
	return n, nil
}

// Bytes returns the n bytes that NewReader(seed, n) produces.
func Bytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(NewReader(seed, int64(n)), b)
	return b
}

// Compare reads got and want to the end and reports the number of equal bytes
// read, with an error if they differ in content or length.
func Compare(got, want io.Reader) (int64, error) {
	const chunk = 64 << 10
	gb, wb := make([]byte, chunk), make([]byte, chunk)
	var n int64
	for {
		gn, gerr := io.ReadFull(got, gb)
		wn, werr := io.ReadFull(want, wb)
		if gerr != nil && gerr != io.EOF && gerr != io.ErrUnexpectedEOF {
			return n, gerr
		}
		if werr != nil && werr != io.EOF && werr != io.ErrUnexpectedEOF {
			return n, werr
		}
		m := min(gn, wn)
		if i := firstDiff(gb[:m], wb[:m]); i >= 0 {
			return n + int64(i), fmt.Errorf("storagetest: content differs at byte %d", n+int64(i))
		}
		n += int64(m)
		if gn != wn {
			return n, fmt.Errorf("storagetest: length differs: one reader ended after %d bytes", n)
		}
		if gn < chunk {
			return n, nil
		}
	}
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

// BenchmarkPut measures Put of objects of size bytes, streamed from a Reader,
// into s; the keys are deleted as it goes. Backends call it from their own
// benchmarks:
//
//	func BenchmarkPut(b *testing.B) { storagetest.BenchmarkPut(b, newStore(b), 8<<20) }
func BenchmarkPut(b *testing.B, s storage.Store, size int64) {
	ctx := context.Background()
	b.SetBytes(size)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		key := fmt.Sprintf("bench/%d.bin", i)
		if _, err := s.Put(ctx, key, NewReader(uint64(i), size), storage.PutOptions{Size: size}); err != nil {
			b.Fatalf("Put: %v", err)
		}
		b.StopTimer()
		if err := s.Delete(ctx, key); err != nil {
			b.Fatalf("Delete: %v", err)
		}
		b.StartTimer()
		i++
	}
}
