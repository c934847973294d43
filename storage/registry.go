package storage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// OpenFunc opens a Store from a parsed storage URL. Backends register one per URL
// scheme with Register.
type OpenFunc func(ctx context.Context, u *url.URL) (Store, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]OpenFunc{}
)

// Register makes a backend available to Open under a URL scheme ("s3", "file").
// Backends call it from an init function. Like sql.Register, it panics if scheme
// is empty, open is nil or the scheme is already registered: those are
// programming errors, found the first time the program starts.
func Register(scheme string, open OpenFunc) {
	scheme = strings.ToLower(scheme)
	if scheme == "" || open == nil {
		panic("storage: Register with an empty scheme or a nil OpenFunc")
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[scheme]; dup {
		panic("storage: Register called twice for scheme " + scheme)
	}
	registry[scheme] = open
}

// Schemes returns the registered URL schemes, sorted.
func Schemes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	schemes := make([]string, 0, len(registry))
	for s := range registry {
		schemes = append(schemes, s)
	}
	slices.Sort(schemes)
	return schemes
}

// Open opens the Store that rawURL names, such as
// "s3://bucket/prefix?endpoint=http://127.0.0.1:9000&path_style=true" or
// "file:///var/lib/comfyq/outputs". The backend for the URL's scheme must have
// been registered, usually by importing its package. Errors never show a
// password the URL may hold.
func Open(ctx context.Context, rawURL string) (Store, error) {
	if strings.TrimSpace(rawURL) == "" {
		return nil, fmt.Errorf("storage: empty storage URL (want s3://bucket/prefix or file:///dir)")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error would repeat the whole URL, secrets and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("storage: parse storage URL: %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "" {
		return nil, fmt.Errorf("storage: storage URL %q has no scheme (want s3://bucket/prefix or file:///dir; supported schemes: %s)",
			u.Redacted(), strings.Join(Schemes(), ", "))
	}
	registryMu.RLock()
	open := registry[scheme]
	registryMu.RUnlock()
	if open == nil {
		supported := strings.Join(Schemes(), ", ")
		if supported == "" {
			supported = "none: import github.com/comfyq/comfyq/storage/s3 or storage/file"
		}
		return nil, fmt.Errorf("storage: unknown scheme %q in storage URL %q (supported: %s)", u.Scheme, u.Redacted(), supported)
	}
	return open(ctx, u)
}
