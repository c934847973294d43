package comfysim

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestListingsFollowOwnAndForeignWrites(t *testing.T) {
	dir := t.TempDir()
	var l listings
	mustList := func(want ...string) {
		t.Helper()
		got, err := l.list(dir)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("listing = %v, want %v", got, want)
		}
	}
	mustList()
	if err := l.writeFile(filepath.Join(dir, "a.png"), []byte("a")); err != nil {
		t.Fatal(err)
	}
	mustList("a.png") // the simulator's own write, from the cache

	// A file made by someone else: the folder's mtime moves (set apart from the
	// cached one explicitly, as a coarse clock may not), and the folder is read again.
	if err := os.WriteFile(filepath.Join(dir, "b.png"), []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dir, time.Time{}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	mustList("a.png", "b.png")

	// A foreign change just before the simulator's own write drops the cache.
	if err := os.WriteFile(filepath.Join(dir, "c.png"), []byte("c"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dir, time.Time{}, time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := l.writeFile(filepath.Join(dir, "d.png"), []byte("d")); err != nil {
		t.Fatal(err)
	}
	mustList("a.png", "b.png", "c.png", "d.png")
}

func TestRuneOffset(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want int
	}{{"abc", 0, 0}, {"abc", 2, 2}, {"abc", 5, 3}, {"äbc", 1, 2}, {"äbc", 2, 3}, {"", 1, 0}} {
		if got := runeOffset(c.s, c.n); got != c.want {
			t.Errorf("runeOffset(%q, %d) = %d, want %d", c.s, c.n, got, c.want)
		}
	}
}
