package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// SecretPrefix marks a serialized symmetric signing secret, as the
// Standard Webhooks specification asks.
const SecretPrefix = "whsec_"

// Key sizes allowed by the Standard Webhooks specification for HMAC-SHA256
// secrets: at least 192 bits, at most 512 bits.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// newSecretBytes is the size of a key made by NewSecret.
const newSecretBytes = 32

// ErrInvalidSecret is returned (wrapped, with the reason) by ParseSecret.
var ErrInvalidSecret = errors.New("webhook: invalid secret")

// Secret is a parsed HMAC-SHA256 signing key. The zero Secret holds no key:
// it signs nothing and verifies nothing.
//
// A Secret's String method returns the key in its whsec_ form, so do not
// print it; slog logs it as "whsec_REDACTED".
type Secret struct {
	key string // raw key bytes; a string so that a Secret is immutable and comparable
}

// ParseSecret parses a signing secret in the form "whsec_<base64 key>", or a
// bare base64 key as the Standard Webhooks reference libraries accept.
// Surrounding white space (a trailing newline from a file) is ignored. The
// key must decode to 24 to 64 bytes.
//
// Errors wrap ErrInvalidSecret and never contain the secret itself.
func ParseSecret(s string) (Secret, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Secret{}, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	for _, p := range []string{"whsk_", "whpk_"} {
		if strings.HasPrefix(s, p) {
			return Secret{}, fmt.Errorf("%w: %s… is an asymmetric (ed25519) key; only symmetric %s secrets are supported",
				ErrInvalidSecret, p, SecretPrefix)
		}
	}
	encoded := strings.TrimPrefix(s, SecretPrefix)
	if encoded == "" {
		return Secret{}, fmt.Errorf("%w: no key after %q", ErrInvalidSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		// Accept unpadded base64 too; some tools strip the '='.
		var rawErr error
		key, rawErr = base64.RawStdEncoding.DecodeString(encoded)
		if rawErr != nil {
			return Secret{}, fmt.Errorf("%w: key is not standard base64 (expected %s<base64>)", ErrInvalidSecret, SecretPrefix)
		}
	}
	return secretFromKey(key)
}

func secretFromKey(key []byte) (Secret, error) {
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return Secret{}, fmt.Errorf("%w: key is %d bytes; Standard Webhooks requires %d to %d",
			ErrInvalidSecret, len(key), MinSecretBytes, MaxSecretBytes)
	}
	return Secret{key: string(key)}, nil
}

// NewSecret makes a random 32-byte signing secret and returns it parsed and
// in its whsec_ form (what to put in COMFYQ_WEBHOOK_SECRET and give to
// receivers).
func NewSecret() (Secret, string, error) {
	key := make([]byte, newSecretBytes)
	if _, err := rand.Read(key); err != nil {
		return Secret{}, "", fmt.Errorf("webhook: generate secret: %w", err)
	}
	s, err := secretFromKey(key)
	if err != nil {
		return Secret{}, "", err
	}
	return s, s.String(), nil
}

// IsZero reports whether s holds no key.
func (s Secret) IsZero() bool { return s.key == "" }

// String returns the secret in its "whsec_<base64 key>" form, or "" for the
// zero Secret. ParseSecret(s.String()) returns s.
func (s Secret) String() string {
	if s.IsZero() {
		return ""
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString([]byte(s.key))
}

// LogValue keeps the key out of structured logs.
func (s Secret) LogValue() slog.Value {
	if s.IsZero() {
		return slog.StringValue("")
	}
	return slog.StringValue(SecretPrefix + "REDACTED")
}
