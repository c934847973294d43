package comfysim

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestListingsFollowOwnAndForeignWrites(t *testing.T) {
	dir := t.TempDir()
	var l listings
	key := counterKey{name: "img", runes: 3}
	mustCount := func(want int, wantFound bool) {
		t.Helper()
		got, err := l.saveCounter(dir, key)
		if err != nil {
			t.Fatal(err)
		}
		if got.max != want || got.found != wantFound {
			t.Fatalf("saveCounter = %d, %v; want %d, %v", got.max, got.found, want, wantFound)
		}
	}
	write := func(name string) {
		t.Helper()
		if err := l.writeFile(filepath.Join(dir, name), []byte(name)); err != nil {
			t.Fatal(err)
		}
	}
	foreign := func(name string, mtime time.Time) {
		t.Helper()
		// A file made by someone else: the folder's mtime moves (set apart from the
		// cached one explicitly, as a coarse clock may not).
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, time.Time{}, mtime); err != nil {
			t.Fatal(err)
		}
	}
	mustCount(0, false)
	write("img_00001_.png")
	mustCount(1, true) // the simulator's own write, from the cache
	write("other_00007_.png")
	write("img_x_.png") // int("x") fails: counter 0, as ComfyUI's map_filename
	mustCount(1, true)

	foreign("img_00005_.png", time.Now().Add(time.Hour))
	mustCount(5, true) // the folder is read again

	// A foreign change just before the simulator's own write drops the cache.
	foreign("img_00009_.png", time.Now().Add(2*time.Hour))
	write("img_00006_.png")
	mustCount(9, true)

	// Another prefix of the same folder is counted from the same listing.
	other, err := l.saveCounter(dir, counterKey{name: "other", runes: 5})
	if err != nil || other.max != 7 || !other.found {
		t.Fatalf("other prefix: %+v, %v", other, err)
	}
	write("other_00008_.png")
	if other, _ = l.saveCounter(dir, counterKey{name: "other", runes: 5}); other.max != 8 {
		t.Fatalf("other prefix after a write: %d, want 8", other.max)
	}
}

// TestCounterOf follows get_save_image_path's map_filename and filter.
func TestCounterOf(t *testing.T) {
	key := counterKey{name: "ä", runes: 1}
	for _, c := range []struct {
		name    string
		counter int
		ok      bool
	}{
		{"ä_00012_.png", 12, true},
		{"ä_12.png", 0, true}, // int("12.png") fails
		{"ä_ 3 _.png", 3, true},
		{"ä_1_000_.png", 1, true},
		{"äb_00001_.png", 0, false},
		{"a_00001_.png", 0, false},
		{"ä", 0, false},
	} {
		got, ok := key.counterOf(c.name)
		if got != c.counter || ok != c.ok {
			t.Errorf("counterOf(%q) = %d, %v; want %d, %v", c.name, got, ok, c.counter, c.ok)
		}
	}
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
