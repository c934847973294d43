package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/comfyq/comfyq/apikey"
	"github.com/comfyq/comfyq/keystore"
)

// role is what a key may do. Each role includes the ones below it.
type role int

const (
	rolePublic role = iota // no key needed
	roleUser               // jobs, reading templates, files
	roleAdmin              // template and key management, the dashboard, metrics, every tenant
)

func (r role) String() string {
	switch r {
	case roleUser:
		return "user"
	case roleAdmin:
		return "admin"
	}
	return "public"
}

func roleOf(k *apikey.Key) role {
	if k.Admin() {
		return roleAdmin
	}
	return roleUser
}

// authenticator checks API keys: the static ones of the configuration, kept as
// SHA-256 digests and compared with the presented key's digest in constant time (all of
// them, whatever the result), then the managed keys of the key store, looked up by the
// same digest.
type authenticator struct {
	noAuth bool
	static []staticKey
	store  *keystore.Store
}

type staticKey struct {
	sum [sha256.Size]byte
	key *apikey.Key
}

// openKey is the caller of a server without authentication: an admin of no tenant.
var openKey = &apikey.Key{ID: "none", Name: "no authentication", Role: apikey.RoleAdmin}

func newAuthenticator(userKeys, adminKeys []string, noAuth bool, store *keystore.Store) (*authenticator, error) {
	a := &authenticator{noAuth: noAuth, store: store}
	if noAuth {
		return a, nil
	}
	if len(userKeys) == 0 && len(adminKeys) == 0 {
		return nil, errors.New("api: no API keys: set COMFYQ_API_KEYS and COMFYQ_ADMIN_KEYS (comma-separated), " +
			"or run without authentication explicitly with --no-auth")
	}
	add := func(keys []string, r string) error {
		for i, raw := range keys {
			k, digest, err := apikey.ParseStatic(raw, r, i+1)
			if err != nil {
				return err
			}
			var sum [sha256.Size]byte
			_, _ = hex.Decode(sum[:], []byte(digest))
			a.static = append(a.static, staticKey{sum: sum, key: k})
		}
		return nil
	}
	if err := add(userKeys, apikey.RoleUser); err != nil {
		return nil, err
	}
	if err := add(adminKeys, apikey.RoleAdmin); err != nil {
		return nil, err
	}
	return a, nil
}

// errUnknownKey: no static or managed key has this secret.
var errUnknownKey = errors.New("api: unknown key")

// lookup returns the record of the key with this secret, or errUnknownKey. Static keys
// are compared first, every one of them; a key found twice (user and admin) is an
// admin key.
func (a *authenticator) lookup(ctx context.Context, secret string) (*apikey.Key, error) {
	sum := sha256.Sum256([]byte(secret))
	var found *apikey.Key
	for _, k := range a.static {
		if subtle.ConstantTimeCompare(sum[:], k.sum[:]) == 1 && (found == nil || k.key.Admin()) {
			found = k.key
		}
	}
	if found != nil {
		return found, nil
	}
	if a.store == nil {
		return nil, errUnknownKey
	}
	k, err := a.store.Lookup(ctx, hex.EncodeToString(sum[:]))
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, errUnknownKey
	}
	return k, err
}

// presentedKey reads the key of a request: "Authorization: Bearer KEY", or, where
// basic is allowed (the dashboard, which a browser opens), HTTP Basic with the key as
// the password.
func presentedKey(r *http.Request, basic bool) (string, bool) {
	h := r.Header.Get("Authorization")
	if scheme, rest, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		key := strings.TrimSpace(rest)
		return key, key != ""
	}
	if basic {
		if _, pw, ok := r.BasicAuth(); ok && pw != "" {
			return pw, true
		}
	}
	return "", false
}

// authorize checks that the request may use a route needing need. It returns the
// caller's key record (openKey without authentication, nil on a public route without
// a key), or the 401/403/503 error to answer.
func (a *authenticator) authorize(r *http.Request, need role, basic bool) (*apikey.Key, *httpError) {
	if a.noAuth {
		return openKey, nil
	}
	secret, ok := presentedKey(r, basic)
	if !ok {
		if need == rolePublic {
			return nil, nil
		}
		return nil, unauthorized(basic, "an API key is required: send \"Authorization: Bearer KEY\"")
	}
	if need == rolePublic {
		return nil, nil
	}
	k, err := a.lookup(r.Context(), secret)
	if errors.Is(err, errUnknownKey) {
		return nil, unauthorized(basic, "the API key is not valid")
	}
	if err != nil {
		return nil, errorf(http.StatusServiceUnavailable, CodeUnavailable, "cannot check the API key: the key store (Redis) is unreachable")
	}
	if roleOf(k) < need {
		return nil, errorf(http.StatusForbidden, CodeForbidden, "this route needs an admin key")
	}
	return k, nil
}

func unauthorized(basic bool, msg string) *httpError {
	e := errorf(http.StatusUnauthorized, CodeUnauthorized, "%s", msg)
	e.header = http.Header{"Www-Authenticate": {`Bearer realm="comfyq"`}}
	if basic {
		// Lets a browser ask for the key (any user name, the admin key as password).
		e.header.Add("Www-Authenticate", `Basic realm="comfyq dashboard", charset="UTF-8"`)
	}
	return e
}
