package job_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
)

// packageConstants reads the job package's source and returns the values of its
// exported string constants whose name starts with prefix and whose declared type
// is typ ("Status", "Code", or "" for untyped constants).
func packageConstants(t *testing.T, prefix, typ string) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				declared := ""
				if id, ok := vs.Type.(*ast.Ident); ok {
					declared = id.Name
				}
				for i, id := range vs.Names {
					if !id.IsExported() || !strings.HasPrefix(id.Name, prefix) || declared != typ || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					require.True(t, ok && lit.Kind == token.STRING, "%s is a string literal", id.Name)
					v, err := strconv.Unquote(lit.Value)
					require.NoError(t, err)
					out = append(out, v)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func strs[S ~string](in []S) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}

func sortedUnique(in []string) []string {
	out := slices.Clone(in)
	sort.Strings(out)
	return slices.Compact(out)
}

// TestListsHoldEveryConstant: the exported lists (the OpenAPI enums come from them)
// hold every constant the package declares, so a new state or code cannot be left
// out of the document.
func TestListsHoldEveryConstant(t *testing.T) {
	t.Parallel()
	require.Equal(t, packageConstants(t, "Status", "Status"), sortedUnique(strs(job.Statuses())), "Statuses()")
	for _, s := range job.Statuses() {
		require.True(t, s.Valid(), "%s is Valid", s)
	}
	require.Len(t, job.Statuses(), len(sortedUnique(strs(job.Statuses()))), "no state twice")

	all := append(strs(job.Codes()), strs(job.SpecCodes())...)
	require.Equal(t, packageConstants(t, "Code", "Code"), sortedUnique(all), "Codes() and SpecCodes()")
	require.Len(t, job.Codes(), len(sortedUnique(strs(job.Codes()))), "no code twice")
	require.Len(t, job.SpecCodes(), len(sortedUnique(strs(job.SpecCodes()))), "no code twice")

	require.Equal(t, packageConstants(t, "Kind", ""), sortedUnique(job.Kinds()), "Kinds()")
	require.Equal(t, packageConstants(t, "Webhook", ""), sortedUnique(job.WebhookEvents()), "WebhookEvents()")
	for _, e := range job.WebhookEvents() {
		require.True(t, job.ValidEvent(e), "%s is ValidEvent", e)
	}
}
