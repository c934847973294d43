package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// role is what a key may do. Each role includes the ones below it.
type role int

const (
	rolePublic role = iota // no key needed
	roleUser               // jobs, reading templates, files, metrics
	roleAdmin              // template management, the dashboard
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

// authenticator checks API keys. Keys are kept as SHA-256 digests and every presented
// key is compared with all of them in constant time, so neither the comparison nor the
// keys' lengths leak through timing.
type authenticator struct {
	noAuth bool
	keys   []keyDigest
}

type keyDigest struct {
	sum  [sha256.Size]byte
	role role
}

func newAuthenticator(userKeys, adminKeys []string, noAuth bool) (*authenticator, error) {
	a := &authenticator{noAuth: noAuth}
	if noAuth {
		return a, nil
	}
	if len(userKeys) == 0 && len(adminKeys) == 0 {
		return nil, errors.New("api: no API keys: set COMFYQ_API_KEYS and COMFYQ_ADMIN_KEYS (comma-separated), " +
			"or run without authentication explicitly with --no-auth")
	}
	add := func(keys []string, r role, what string) error {
		for i, k := range keys {
			k = strings.TrimSpace(k)
			if len(k) < minKeyLen {
				return fmt.Errorf("api: %s key #%d is shorter than %d characters; use long random keys (openssl rand -hex 24)", what, i+1, minKeyLen)
			}
			if strings.ContainsAny(k, " \t\r\n,") {
				return fmt.Errorf("api: %s key #%d contains a space or comma", what, i+1)
			}
			a.keys = append(a.keys, keyDigest{sum: sha256.Sum256([]byte(k)), role: r})
		}
		return nil
	}
	if err := add(userKeys, roleUser, "API"); err != nil {
		return nil, err
	}
	if err := add(adminKeys, roleAdmin, "admin"); err != nil {
		return nil, err
	}
	return a, nil
}

// lookup returns the role of key, or rolePublic for an unknown key. It looks at every
// key whatever the result.
func (a *authenticator) lookup(key string) role {
	sum := sha256.Sum256([]byte(key))
	found := rolePublic
	for _, k := range a.keys {
		if subtle.ConstantTimeCompare(sum[:], k.sum[:]) == 1 && k.role > found {
			found = k.role
		}
	}
	return found
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

// authorize checks that the request may use a route needing need. It returns nil, or
// the 401/403 error to answer.
func (a *authenticator) authorize(r *http.Request, need role, basic bool) *httpError {
	if need == rolePublic || a.noAuth {
		return nil
	}
	key, ok := presentedKey(r, basic)
	if !ok {
		return unauthorized(basic, "an API key is required: send \"Authorization: Bearer KEY\"")
	}
	got := a.lookup(key)
	if got == rolePublic {
		return unauthorized(basic, "the API key is not valid")
	}
	if got < need {
		return errorf(http.StatusForbidden, CodeForbidden, "this route needs an admin key")
	}
	return nil
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
