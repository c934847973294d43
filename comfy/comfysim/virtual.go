package comfysim

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"io"
	"path/filepath"
	"time"
)

// virtualFile is a video or audio output that exists only as a size and a
// seed: its bytes are generated on the fly when served, so a 1 GiB output
// costs neither memory nor disk.
type virtualFile struct {
	size    int64
	seed    uint64
	header  []byte // container magic, so the bytes look like the format
	modTime time.Time
}

// addVirtual registers an output file at path.
func (s *Server) addVirtual(path string, size int64, seedText string) {
	h := fnv.New64a()
	_, _ = h.Write([]byte(seedText))
	vf := &virtualFile{size: size, seed: h.Sum64(), header: magicFor(filepath.Ext(path)), modTime: time.Now()}
	abs, _ := filepath.Abs(path)
	s.vmu.Lock()
	s.virtual[abs] = vf
	s.vmu.Unlock()
}

func (s *Server) lookupVirtual(path string) *virtualFile {
	abs, _ := filepath.Abs(path)
	s.vmu.Lock()
	defer s.vmu.Unlock()
	return s.virtual[abs]
}

func magicFor(ext string) []byte {
	switch ext {
	case ".mp4":
		return []byte{0, 0, 0, 0x20, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm', 0, 0, 2, 0,
			'i', 's', 'o', 'm', 'i', 's', 'o', '2', 'a', 'v', 'c', '1', 'm', 'p', '4', '1'}
	case ".webm":
		return []byte{0x1a, 0x45, 0xdf, 0xa3}
	case ".flac":
		return []byte("fLaC")
	}
	return nil
}

// reader returns an io.ReadSeeker over the file's bytes.
func (vf *virtualFile) reader() io.ReadSeeker { return &virtualReader{vf: vf} }

type virtualReader struct {
	vf  *virtualFile
	off int64
}

// word is the deterministic 8-byte word at index i (splitmix64).
func (vf *virtualFile) word(i uint64) uint64 {
	z := vf.seed + (i+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *virtualReader) Read(p []byte) (int, error) {
	size := r.vf.size
	if r.off >= size {
		return 0, io.EOF
	}
	if rem := size - r.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n := 0
	for n < len(p) {
		off := r.off + int64(n)
		if off < int64(len(r.vf.header)) {
			p[n] = r.vf.header[off]
			n++
			continue
		}
		wi := uint64(off) / 8
		pos := int(off % 8)
		if pos == 0 && len(p)-n >= 8 {
			binary.LittleEndian.PutUint64(p[n:], r.vf.word(wi))
			n += 8
			continue
		}
		var buf [8]byte
		binary.LittleEndian.PutUint64(buf[:], r.vf.word(wi))
		c := copy(p[n:], buf[pos:])
		n += c
	}
	r.off += int64(n)
	return n, nil
}

func (r *virtualReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.vf.size + offset
	default:
		return 0, errors.New("comfysim: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("comfysim: negative position")
	}
	r.off = abs
	return abs, nil
}
