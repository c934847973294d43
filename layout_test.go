// Package comfyq_test keeps the module's layout honest: contracts are leaves, and
// machinery (Redis, asynq, Prometheus, HTTP servers) stays out of the packages that
// small users import. Each rule is the reason the packages are split the way they
// are; README.md's "Layout" section says the same in prose.
package comfyq_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/comfyq/comfyq/"

// heavy are the dependencies a contract package must not link.
var heavy = []string{
	"github.com/redis/go-redis",
	"github.com/hibiken/asynq",
	"github.com/hibiken/asynqmon",
	"github.com/prometheus/",
	"github.com/aws/",
}

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "./"+pkg).Output()
	require.NoError(t, err, "go list -deps ./%s", pkg)
	return strings.Fields(string(out))
}

func TestLayout(t *testing.T) {
	t.Parallel()
	rules := []struct {
		pkg string
		// ours are the only packages of this module it may link (besides itself).
		ours []string
		// stdOnly: nothing outside the standard library at all.
		stdOnly bool
	}{
		// The shared types: a leaf, like river's rivertype.
		{pkg: "job", ours: []string{}},
		// Signing and verifying: a webhook receiver links nothing of the queue.
		{pkg: "webhook", stdOnly: true},
		// The ComfyUI client and the storage contract know nothing of jobs or Redis.
		{pkg: "comfy", ours: []string{"internal/retry"}},
		// The prompt validator is shared by the producer, the API and a receiver of
		// workflows alike: ComfyUI's types only.
		{pkg: "comfy/validate", ours: []string{"comfy", "internal/retry"}},
		{pkg: "storage", stdOnly: true},
		// Templates: types, discovery and compilation; their Redis store is
		// templatestore. Never the producer.
		{pkg: "template", ours: []string{"comfy", "job", "internal/retry"}},
		// The HTTP API's Go client links neither the server nor Redis.
		{pkg: "api/apiclient", ours: []string{"comfy", "job", "template", "internal/retry", "apikey"}},
		// The API key contract: the key store (Redis) is keystore.
		{pkg: "apikey", ours: []string{"job"}},
	}
	for _, rule := range rules {
		t.Run(rule.pkg, func(t *testing.T) {
			t.Parallel()
			allowed := map[string]bool{module + rule.pkg: true}
			for _, p := range rule.ours {
				allowed[module+p] = true
			}
			for _, dep := range deps(t, rule.pkg) {
				if rule.stdOnly {
					// Standard library import paths have no dot in their first element.
					first, _, _ := strings.Cut(dep, "/")
					require.True(t, !strings.Contains(first, ".") || allowed[dep],
						"%s must depend on the standard library only, but links %s", rule.pkg, dep)
					continue
				}
				if strings.HasPrefix(dep, module) {
					require.True(t, allowed[dep], "%s must not link %s (allowed: %v)", rule.pkg, dep, rule.ours)
				}
				for _, h := range heavy {
					require.False(t, strings.HasPrefix(dep, h), "%s must not link %s", rule.pkg, dep)
				}
			}
		})
	}
}
