package apikey

import (
	"fmt"
	"strings"

	"github.com/comfyq/comfyq/job"
)

// MinStaticLen is the shortest key accepted by flag or environment.
const MinStaticLen = 16

// ParseStatic reads a key given by flag or environment (COMFYQ_API_KEYS,
// COMFYQ_ADMIN_KEYS): "SECRET" or "TENANT:SECRET". Without a tenant, the key is its own
// tenant, named "key-" and the first 8 hex digits of the secret's SHA-256 (stable across
// restarts, revealing nothing of the secret). A ':' in a key is read as a tenant only
// when what comes before is a valid tenant name and what follows is a valid key.
//
// It returns the record (Static, no quotas) and the secret's digest.
func ParseStatic(raw string, role string, n int) (*Key, string, error) {
	raw = strings.TrimSpace(raw)
	what := "API"
	if role == RoleAdmin {
		what = "admin"
	}
	secret, tenant := raw, ""
	if t, s, ok := strings.Cut(raw, ":"); ok && len(s) >= MinStaticLen && job.ValidTenant(t) {
		secret, tenant = s, t
	}
	if len(secret) < MinStaticLen {
		return nil, "", fmt.Errorf("api: %s key #%d is shorter than %d characters; use long random keys (openssl rand -hex 24)", what, n, MinStaticLen)
	}
	if strings.ContainsAny(secret, " \t\r\n,") {
		return nil, "", fmt.Errorf("api: %s key #%d contains a space or comma", what, n)
	}
	digest := Digest(secret)
	if tenant == "" {
		tenant = "key-" + digest[:8]
	}
	k := &Key{
		ID:     "static_" + digest[:8],
		Name:   fmt.Sprintf("%s key #%d (flag or environment)", what, n),
		Tenant: tenant,
		Role:   role,
		Static: true,
	}
	return k, digest, nil
}
