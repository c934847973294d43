package storage_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/storage"
)

func TestValidateKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"jobs/0193/9/ComfyUI_00001_.png", true},
		{"a.b/c..d/...e", true},
		{".hidden/x", true},
		{"日本語/画像.png", true},
		{"emoji/🦊.webp", true},
		{"spaces are/fine too.txt", true},
		{strings.Repeat("a", storage.MaxSegmentLen), true},
		{strings.Repeat("a/", 511) + "ab", true}, // 1024 bytes

		{"", false},
		{"/a", false},
		{"/", false},
		{"a/", false},
		{"a//b", false},
		{".", false},
		{"..", false},
		{"../a", false},
		{"a/../b", false},
		{"a/..", false},
		{"a/./b", false},
		{"a\\b", false},
		{"..\\..\\etc\\passwd", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"a\rb", false},
		{"a\x7fb", false},
		{"a\u0085b", false}, // C1 control (NEL)
		{"a\xffb", false},   // invalid UTF-8
		{strings.Repeat("a", storage.MaxSegmentLen+1), false},
		{strings.Repeat("a/", 512) + "a", false}, // 1025 bytes
	}
	for _, tt := range tests {
		err := storage.ValidateKey(tt.key)
		if tt.ok {
			require.NoError(t, err, "key %q", tt.key)
		} else {
			require.ErrorIs(t, err, storage.ErrInvalidKey, "key %q", tt.key)
		}
	}
}

func TestJoinKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		parts []string
		want  string // "" means an error
	}{
		{[]string{"jobs", "0193", "9", "ComfyUI_00001_.png"}, "jobs/0193/9/ComfyUI_00001_.png"},
		{[]string{"outputs/comfyq", "id", "x.png"}, "outputs/comfyq/id/x.png"},
		{[]string{"one"}, "one"},
		{[]string{"ünï", "cødé.png"}, "ünï/cødé.png"},

		{nil, ""},
		{[]string{""}, ""},
		{[]string{"jobs", "", "x"}, ""},
		{[]string{"jobs", ".."}, ""},
		{[]string{"jobs", "."}, ""},
		{[]string{"jobs", "../../etc/passwd"}, ""},
		{[]string{"/jobs", "x"}, ""},
		{[]string{"jobs/", "x"}, ""},
		{[]string{"jobs", "a\\b"}, ""},
		{[]string{"jobs", "a\x01b"}, ""},
		{[]string{strings.Repeat("a", 250), strings.Repeat("b", 250), strings.Repeat("c", 250), strings.Repeat("d", 250), strings.Repeat("e", 250)}, ""}, // > MaxKeyLen
	}
	for _, tt := range tests {
		got, err := storage.JoinKey(tt.parts...)
		if tt.want == "" {
			require.ErrorIs(t, err, storage.ErrInvalidKey, "parts %q", tt.parts)
			continue
		}
		require.NoError(t, err, "parts %q", tt.parts)
		require.Equal(t, tt.want, got)
	}
}

func TestSanitizeName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 300)
	tests := []struct {
		name, want string
	}{
		{"ComfyUI_00001_.png", "ComfyUI_00001_.png"},
		{"my image (1).png", "my image (1).png"},
		{"画像 ü.webp", "画像 ü.webp"},
		{"", "file"},
		{".", "file"},
		{"..", "file"},
		{"...", "file"},
		{"   ", "file"},
		{"\x00\x01", "file"},
		{"/", "_"},
		{"../../etc/passwd", "_.._etc_passwd"},
		{"..\\..\\windows\\win.ini", "_.._windows_win.ini"},
		{"/abs/path.png", "_abs_path.png"},
		{"a//b\\\\c", "a_b_c"},
		{".hidden", "hidden"},
		{".comfyq-meta", "comfyq-meta"},
		{"a\nb\tc.png", "abc.png"},
		{"a\x7fb", "ab"},
		{"evil\u202egnp.exe", "evilgnp.exe"}, // right-to-left override dropped
		{"bad\xffutf8.png", "bad_utf8.png"},
		{" trailing space .png ", "trailing space .png"},
		{long + ".png", strings.Repeat("x", storage.MaxNameLen-4) + ".png"},
		{long, strings.Repeat("x", storage.MaxNameLen)},
		{long + "." + strings.Repeat("e", 30), (long + "." + strings.Repeat("e", 30))[:storage.MaxNameLen]}, // extension too long to keep
	}
	for _, tt := range tests {
		got := storage.SanitizeName(tt.name)
		require.Equal(t, tt.want, got, "SanitizeName(%q)", tt.name)
		require.NoError(t, storage.ValidateKey(got), "SanitizeName(%q) = %q", tt.name, got)
	}
}

func TestSanitizeNameTruncatesOnRuneBoundary(t *testing.T) {
	t.Parallel()
	name := strings.Repeat("é", 150) + ".png" // 300 bytes of two-byte runes
	got := storage.SanitizeName(name)
	require.LessOrEqual(t, len(got), storage.MaxNameLen)
	require.True(t, utf8.ValidString(got))
	require.True(t, strings.HasSuffix(got, ".png"), got)
}

func FuzzSanitizeName(f *testing.F) {
	for _, s := range []string{"", ".", "..", "../x", "a/b", "a\\b", "\x00", "ComfyUI_00001_.png", "画像.png", "\xff\xfe", strings.Repeat("a", 300) + ".png"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := storage.SanitizeName(name)
		if err := storage.ValidateKey(got); err != nil {
			t.Fatalf("SanitizeName(%q) = %q, which ValidateKey refuses: %v", name, got, err)
		}
		if strings.Contains(got, "/") || len(got) > storage.MaxNameLen {
			t.Fatalf("SanitizeName(%q) = %q: not a single bounded segment", name, got)
		}
		if again := storage.SanitizeName(got); again != got {
			t.Fatalf("SanitizeName is not idempotent: %q -> %q -> %q", name, got, again)
		}
	})
}

func FuzzJoinKey(f *testing.F) {
	f.Add("jobs", "0193", "ComfyUI_00001_.png")
	f.Add("", "a", "b")
	f.Add("a/b", "..", "c")
	f.Add("x", "y\\z", "\x00")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		for _, parts := range [][]string{{a, b, c}, {a, b, storage.SanitizeName(c)}, {storage.SanitizeName(a), storage.SanitizeName(b), storage.SanitizeName(c)}} {
			key, err := storage.JoinKey(parts...)
			if err != nil {
				if !errors.Is(err, storage.ErrInvalidKey) {
					t.Fatalf("JoinKey(%q) error does not wrap ErrInvalidKey: %v", parts, err)
				}
				continue
			}
			if verr := storage.ValidateKey(key); verr != nil {
				t.Fatalf("JoinKey(%q) = %q, which ValidateKey refuses: %v", parts, key, verr)
			}
		}
		// Sanitised names always join, unless the key grows too long.
		if key, err := storage.JoinKey(storage.SanitizeName(a), storage.SanitizeName(b)); err != nil {
			t.Fatalf("JoinKey of sanitised names %q, %q failed: %v", a, b, err)
		} else if strings.Count(key, "/") != 1 {
			t.Fatalf("JoinKey of two sanitised names = %q", key)
		}
	})
}
