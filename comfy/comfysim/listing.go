package comfysim

import (
	"os"
	"path/filepath"
	"slices"
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
type dirListing struct {
	mod   time.Time
	names []string
}

// listings caches dirListings by absolute folder path.
type listings struct {
	mu sync.Mutex
	m  map[string]*dirListing
}

// list returns the names in dir (os.listdir), from the cache when dir has not
// changed since it was read.
func (l *listings) list(dir string) ([]string, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	c := l.m[dir]
	if c != nil && c.mod.Equal(st.ModTime()) {
		names := slices.Clone(c.names)
		l.mu.Unlock()
		return names, nil
	}
	l.mu.Unlock()
	// Stat before reading: a file added in between leaves the recorded mtime older
	// than the folder's, so the next call reads the folder again.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*dirListing{}
	}
	l.m[dir] = &dirListing{mod: st.ModTime(), names: slices.Clone(names)}
	l.mu.Unlock()
	return names, nil
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
	if name := filepath.Base(path); !slices.Contains(c.names, name) {
		c.names = append(c.names, name)
	}
	c.mod = after.ModTime()
	return nil
}
