// Package seal encrypts small secrets that must travel through Redis without being
// readable there: the partner-node API key of a Comfy API v2 submission rides in the
// job's task payload sealed with AES-256-GCM under a key only the API servers and the
// workers hold (COMFYQ_SEAL_KEY).
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a seal key: AES-256.
const KeySize = 32

// ErrOpen is returned by Open for a sealed text that does not decrypt under the key
// (another key, or changed on the way).
var ErrOpen = errors.New("seal: cannot open: wrong key or damaged data")

// Sealer seals and opens with one key. The zero value is not usable; use New.
type Sealer struct {
	aead cipher.AEAD
}

// ParseKey reads a key written as 64 hex digits or as base64 (standard or URL
// alphabet, padded or not) of 32 bytes: `openssl rand -hex 32`.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == KeySize {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("seal: a key is %d random bytes as hex or base64 (openssl rand -hex 32)", KeySize)
}

// New returns a Sealer for a 32-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext bound to context (authenticated, not encrypted: a job id,
// so that a sealed text cannot be moved to another job). It returns base64 text.
func (s *Sealer) Seal(plaintext []byte, context string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: nonce: %w", err)
	}
	out := s.aead.Seal(nonce, nonce, plaintext, []byte(context))
	return base64.RawStdEncoding.EncodeToString(out), nil
}

// Open decrypts what Seal returned for the same context.
func (s *Sealer) Open(sealed, context string) ([]byte, error) {
	data, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(data) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil, ErrOpen
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, data[:n], data[n:], []byte(context))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
