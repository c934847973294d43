package comfysim

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ComfyUI lists the output folder on every save to find the next file counter
// (folder_paths.get_save_image_path). The simulator does the same, but keeps the
// last listing of each folder while the folder's modification time is the one it
// recorded, and adds the files it writes itself to it: a folder of thousands of
// outputs is not read again for every image. A file another process creates in
// the folder changes its modification time, and the next save reads it again.
// (The one case this misses is a file made by someone else between the simulator's
// own write and its stat of the folder right after, within the same clock tick.)

// dirListing is a folder's entries as last read, valid while its mtime is mod.
// counters remembers, for each file name prefix asked, the largest counter among
// the entries (saveCounter): the same answer as scanning every name for every
// save, which is quadratic in the files a run leaves in the folder.
type dirListing struct {
	mod      time.Time
	names    map[string]bool
	counters map[counterKey]counterMemo
}

// counterKey asks for the counters of the files named Name_NNNNN…, where Name is
// Runes characters long (get_save_image_path slices by characters).
type counterKey struct {
	name  string
	runes int
}

type counterMemo struct {
	max   int
	found bool
}

// counterOf is get_save_image_path's map_filename and filter for one entry: ok when
// the entry is k.name followed by "_", with the digits up to the next "_" as its
// counter (0 when they are not an integer, as int() failing gives).
func (k counterKey) counterOf(name string) (counter int, ok bool) {
	// name[:runes+1] in characters, as Python slices a str
	cut := runeOffset(name, k.runes+1)
	pre := name[:cut]
	if pre == "" || pre[len(pre)-1] != '_' || pre[:len(pre)-1] != k.name {
		return 0, false
	}
	first, _, _ := strings.Cut(name[cut:], "_")
	if i, isInt := parsePyInt(first); isInt && i.IsInt64() {
		counter = int(i.Int64())
	}
	return counter, true
}

func (m *counterMemo) add(counter int) {
	if !m.found || counter > m.max {
		m.max, m.found = counter, true
	}
}

// listings caches dirListings by absolute folder path.
type listings struct {
	mu sync.Mutex
	m  map[string]*dirListing
}

// saveCounter returns the largest counter of dir's files named k (counterKey), if
// any, from the cache when dir has not changed since it was read.
func (l *listings) saveCounter(dir string, k counterKey) (counterMemo, error) {
	var m counterMemo
	err := l.with(dir, func(c *dirListing) {
		var ok bool
		if m, ok = c.counters[k]; !ok {
			for n := range c.names {
				if d, match := k.counterOf(n); match {
					m.add(d)
				}
			}
			c.counters[k] = m
		}
	})
	return m, err
}

// with calls fn, under the lock, with dir's listing: the cached one while dir's
// modification time is the one recorded, else read again.
func (l *listings) with(dir string, fn func(*dirListing)) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	l.mu.Lock()
	c := l.m[dir]
	if c != nil && c.mod.Equal(st.ModTime()) {
		fn(c)
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	// Stat before reading: a file added in between leaves the recorded mtime older
	// than the folder's, so the next call reads the folder again.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	c = &dirListing{mod: st.ModTime(), names: make(map[string]bool, len(entries)), counters: map[counterKey]counterMemo{}}
	for _, e := range entries {
		c.names[e.Name()] = true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*dirListing{}
	}
	l.m[dir] = c
	fn(c)
	return nil
}

// writeFile is os.WriteFile for a file the simulator saves in an output folder; it
// keeps that folder's cached listing current.
func (l *listings) writeFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	before, statErr := os.Stat(dir)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	after, err := os.Stat(dir)
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.m[dir]
	if c == nil {
		return nil
	}
	if statErr != nil || err != nil || !c.mod.Equal(before.ModTime()) {
		delete(l.m, dir) // changed by someone else meanwhile: read it again next time
		return nil
	}
	if name := filepath.Base(path); !c.names[name] {
		c.names[name] = true
		for k, m := range c.counters {
			if d, match := k.counterOf(name); match {
				m.add(d)
				c.counters[k] = m
			}
		}
	}
	c.mod = after.ModTime()
	return nil
}
