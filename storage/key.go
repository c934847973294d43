package storage

import (
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on keys, chosen so that a valid key is valid on S3 (1024 bytes of UTF-8)
// and on common file systems (255 bytes per name).
const (
	// MaxKeyLen is the longest key in bytes.
	MaxKeyLen = 1024
	// MaxSegmentLen is the longest "/"-separated segment of a key in bytes.
	MaxSegmentLen = 255
	// MaxNameLen is the longest name SanitizeName returns, in bytes.
	MaxNameLen = 200
)

// maxExtLen bounds the extension SanitizeName keeps when it shortens a name; a
// longer "extension" is just part of the name.
const maxExtLen = 16

// ValidateKey reports whether key is a valid object key: one or more segments
// separated by "/", none of them empty, "." or "..", no backslash, no control
// character, valid UTF-8, at most MaxSegmentLen bytes per segment and MaxKeyLen
// in all. The error wraps ErrInvalidKey.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key is %d bytes, longer than %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	if strings.HasPrefix(key, "/") {
		return fmt.Errorf("%w %q: leading \"/\"", ErrInvalidKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if err := validateSegment(seg); err != nil {
			return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, err.Error())
		}
	}
	return nil
}

// segmentError is the reason a segment is invalid; it is wrapped into an
// ErrInvalidKey error by the callers.
type segmentError string

func (e segmentError) Error() string { return string(e) }

func validateSegment(seg string) error {
	switch seg {
	case "":
		return segmentError("empty segment")
	case ".", "..":
		return segmentError(fmt.Sprintf("segment %q not allowed", seg))
	}
	if len(seg) > MaxSegmentLen {
		return segmentError(fmt.Sprintf("segment is %d bytes, longer than %d", len(seg), MaxSegmentLen))
	}
	if !utf8.ValidString(seg) {
		return segmentError("not valid UTF-8")
	}
	for _, r := range seg {
		if r == '\\' {
			return segmentError("backslash not allowed")
		}
		if unicode.IsControl(r) {
			return segmentError(fmt.Sprintf("control character %U not allowed", r))
		}
	}
	return nil
}

// JoinKey joins parts into a key with "/". A part may itself hold several
// segments ("outputs/comfyq"); every segment must be valid as ValidateKey says,
// so JoinKey refuses empty parts, "." and "..", leading and trailing slashes. It
// does not sanitise: pass names that come from outside through SanitizeName
// first. The error wraps ErrInvalidKey.
func JoinKey(parts ...string) (string, error) {
	if len(parts) == 0 {
		return "", fmt.Errorf("%w: no parts to join", ErrInvalidKey)
	}
	for i, p := range parts {
		if p == "" {
			return "", fmt.Errorf("%w: part %d is empty", ErrInvalidKey, i)
		}
		for seg := range strings.SplitSeq(p, "/") {
			if err := validateSegment(seg); err != nil {
				return "", fmt.Errorf("%w: part %d %q: %s", ErrInvalidKey, i, p, err.Error())
			}
		}
	}
	key := strings.Join(parts, "/")
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return key, nil
}

// SanitizeName turns an untrusted file name into one safe to use as a single key
// segment, keeping it recognisable: path separators ("/" and "\"), runs of them
// included, become one "_"; control characters are dropped; invalid UTF-8 becomes
// "_"; bidirectional-text controls, which can disguise an extension, are dropped
// too; leading dots and spaces and trailing spaces are trimmed (so no "." or
// ".." and no hidden files); a name longer than MaxNameLen bytes is shortened,
// keeping its extension; and a name left empty becomes "file". The result always
// passes ValidateKey.
func SanitizeName(name string) string {
	name = strings.ToValidUTF8(name, "_")
	var b strings.Builder
	b.Grow(len(name))
	lastSep := false
	for _, r := range name {
		switch {
		case r == '/' || r == '\\':
			if !lastSep {
				b.WriteByte('_')
			}
			lastSep = true
			continue
		case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r):
			continue
		}
		lastSep = false
		b.WriteRune(r)
	}
	s := strings.TrimLeftFunc(b.String(), func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
	s = strings.TrimRightFunc(s, unicode.IsSpace)
	if len(s) > MaxNameLen {
		s = shorten(s, MaxNameLen)
	}
	if s == "" {
		return "file"
	}
	return s
}

// shorten cuts s to at most n bytes on a rune boundary, keeping a short extension.
func shorten(s string, n int) string {
	ext := path.Ext(s)
	if len(ext) > maxExtLen || len(ext) == len(s) {
		ext = ""
	}
	stem := truncateUTF8(s[:len(s)-len(ext)], n-len(ext))
	stem = strings.TrimRightFunc(stem, unicode.IsSpace)
	if stem == "" {
		// The stem was all spaces: keep the extension alone, without its dot.
		return truncateUTF8(strings.TrimLeft(ext, "."), n)
	}
	return stem + ext
}

// truncateUTF8 returns the longest prefix of s of at most n bytes that ends on a
// rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
