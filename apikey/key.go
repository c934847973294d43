// Package apikey holds the contract of comfyq's API keys: a key's record (its name,
// tenant, role, allowed queues and quotas, never its secret), the secrets' form and
// their digests, and the keys given on the command line. It links only the standard
// library and package job; the Redis store of managed keys is package keystore.
//
// A secret is "cq_" and 43 characters of URL-safe base64: 256 bits from crypto/rand.
// Only its SHA-256 digest is stored. A slow password hash (bcrypt, argon2) protects
// secrets people choose, which can be guessed from a dictionary; a 256-bit random
// secret cannot be guessed at all, so the digest of a leaked store reveals nothing, and
// a fast hash keeps the per-request lookup cheap.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/comfyq/comfyq/job"
)

// ErrInvalid is wrapped by the errors of Validate: a record that cannot be stored.
var ErrInvalid = errors.New("apikey: invalid key")

// Roles of a key.
const (
	RoleUser  = "user"  // jobs, templates (reading), files, metrics: its tenant's only
	RoleAdmin = "admin" // everything, every tenant's jobs, key and template management
)

// Key is the record of an API key. It never holds the secret.
type Key struct {
	// ID names the key in listings and revocation ("key_" and 16 hex digits).
	ID string `json:"id"`
	// Name is the operator's label ("checkout-service").
	Name string `json:"name"`
	// Tenant owns the jobs the key submits; a user key sees only its tenant's work.
	Tenant string `json:"tenant"`
	// Role is RoleUser or RoleAdmin.
	Role string `json:"role"`
	// Queues the key may submit to; empty: any queue (internal comfyq_* queues never).
	Queues []string `json:"queues,omitempty"`
	// Quota bounds the key's submissions.
	Quota Quota `json:"quota"`
	// Hint is the start of the secret ("cq_Ab3d"), enough to tell keys apart.
	Hint string `json:"hint,omitempty"`
	// Static is set for the keys given by flag or environment (they are not stored and
	// cannot be revoked through the API).
	Static    bool       `json:"static,omitempty"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
}

// Quota bounds what one key submits. A zero field means no limit.
type Quota struct {
	// MaxInFlight bounds the key's jobs that have not ended (queued or running).
	MaxInFlight int `json:"max_in_flight,omitempty"`
	// Rate is the sustained submissions per second (a token bucket refilled at Rate).
	Rate float64 `json:"rate,omitempty"`
	// Burst is the bucket's size: submissions allowed at once (default: Rate rounded
	// up, at least 1).
	Burst int `json:"burst,omitempty"`
}

// Validate checks a quota's fields.
func (q Quota) Validate() error {
	switch {
	case q.MaxInFlight < 0:
		return fmt.Errorf("%w: max_in_flight must not be negative", ErrInvalid)
	case q.Rate < 0 || q.Rate > 1e6:
		return fmt.Errorf("%w: rate must be between 0 (no limit) and 1000000 per second", ErrInvalid)
	case q.Burst < 0 || q.Burst > 1e6:
		return fmt.Errorf("%w: burst must be between 0 (default) and 1000000", ErrInvalid)
	case q.Burst > 0 && q.Rate == 0:
		return fmt.Errorf("%w: burst needs a rate", ErrInvalid)
	}
	return nil
}

// BucketSize is the token bucket's size: Burst, or Rate rounded up (at least 1).
func (q Quota) BucketSize() int {
	if q.Burst > 0 {
		return q.Burst
	}
	n := int(q.Rate)
	if float64(n) < q.Rate {
		n++
	}
	return max(n, 1)
}

// Admin reports whether the key has the admin role.
func (k *Key) Admin() bool { return k.Role == RoleAdmin }

// AllowsQueue reports whether the key may submit to queue q. Reserved queues are refused
// earlier, by job.Spec.Normalize, for every key.
func (k *Key) AllowsQueue(q string) bool {
	if len(k.Queues) == 0 {
		return true
	}
	for _, a := range k.Queues {
		if a == q {
			return true
		}
	}
	return false
}

// Validate checks a key's record as it is created.
func (k *Key) Validate() error {
	if strings.TrimSpace(k.Name) == "" || len(k.Name) > 128 {
		return fmt.Errorf("%w: a key needs a name of 1-128 characters", ErrInvalid)
	}
	if !job.ValidTenant(k.Tenant) {
		return fmt.Errorf("%w: tenant %q: tenant names are 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit", ErrInvalid, k.Tenant)
	}
	if k.Role != RoleUser && k.Role != RoleAdmin {
		return fmt.Errorf("%w: role %q: want %s or %s", ErrInvalid, k.Role, RoleUser, RoleAdmin)
	}
	for _, q := range k.Queues {
		probe := job.Spec{Workflow: []byte(`{}`), Queue: q}
		if err := probe.Normalize(); err != nil {
			return fmt.Errorf("%w: queue %q: %w", ErrInvalid, q, err)
		}
	}
	return k.Quota.Validate()
}

// SecretPrefix starts every secret this package makes.
const SecretPrefix = "cq_"

// NewSecret returns a new random secret: SecretPrefix and 256 bits of crypto/rand in
// URL-safe base64.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("apikey: random: %w", err)
	}
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// NewID returns a new key id: "key_" and 16 hex digits.
func NewID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("apikey: random: %w", err)
	}
	return "key_" + hex.EncodeToString(b), nil
}

// Digest is the SHA-256 of a secret in hex: the only form a store keeps.
func Digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Hint is the start of a secret, shown in listings.
func Hint(secret string) string {
	if len(secret) > 7 {
		return secret[:7]
	}
	return ""
}
