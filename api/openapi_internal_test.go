package api

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/comfyq/comfyq/storage/file"
)

// Every route of the router is in the OpenAPI document, with its method.
func TestEveryRouteIsDocumented(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)

	doc := s.openAPI(httptest.NewRequest("GET", "/openapi.json", nil), nil)
	paths := doc["paths"].(obj)
	for _, rt := range s.routes {
		p := rt.pattern
		if rt.docPath != "" {
			p = rt.docPath
		}
		p = strings.ReplaceAll(p, "...}", "}")
		p = strings.TrimSuffix(p, "{$}")
		if p == "" {
			p = "/"
		}
		item, ok := paths[p].(obj)
		require.True(t, ok, "route %s %s is not in the OpenAPI document", rt.method, rt.pattern)
		method := strings.ToLower(rt.method)
		if method == "" {
			method = "get"
		}
		require.Contains(t, item, method, "route %s %s", rt.method, rt.pattern)
	}
}
