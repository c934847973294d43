// Package docs holds the project's documentation; its test keeps
// contracts.md true to the code.
package docs_test

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/templatestore"
)

// section returns the text under a "## title" heading, up to the next one.
func section(t *testing.T, doc, title string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n## "+title+"\n")
	require.True(t, ok, "contracts.md has a section %q", title)
	body, _, _ := strings.Cut(rest, "\n## ")
	return body
}

var firstCell = regexp.MustCompile("(?m)^\\| `([^`]+)`")

// tables returns the backticked first cells of each table in text, table by table.
func tables(text string) [][]string {
	var out [][]string
	for _, block := range strings.Split(text, "\n\n") {
		var names []string
		for _, m := range firstCell.FindAllStringSubmatch(block, -1) {
			names = append(names, m[1])
		}
		if names != nil {
			out = append(out, names)
		}
	}
	return out
}

func jsonNames(v any) []string {
	var names []string
	rt := reflect.TypeOf(v)
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func TestContractsMatchTheCode(t *testing.T) {
	data, err := os.ReadFile("contracts.md")
	require.NoError(t, err)
	doc := string(data)

	var states []string
	for _, s := range tables(section(t, doc, "States"))[0] {
		require.True(t, job.Status(s).Valid(), "state %q", s)
		states = append(states, s)
	}
	var want []string
	for _, s := range job.Statuses() {
		want = append(want, string(s))
	}
	require.Equal(t, want, states, "every state, in lifecycle order")

	var codes []string
	for _, c := range job.Codes() {
		codes = append(codes, string(c))
	}
	require.Equal(t, sorted(codes), sorted(tables(section(t, doc, "Error codes"))[0]), "job error codes")

	jobTables := tables(section(t, doc, "Job JSON"))
	require.Len(t, jobTables, 2, "a table of Job fields and one of Output fields")
	require.Equal(t, sorted(jsonNames(job.Job{})), sorted(jobTables[0]), "Job JSON fields")
	// One row lists "size", "sha256" and "content_type" together: only its first
	// cell is a table name, the others are found in the section's text.
	outputs := jobTables[1]
	for _, name := range jsonNames(job.Output{}) {
		require.True(t, slices.Contains(outputs, name) || strings.Contains(section(t, doc, "Job JSON"), "`"+name+"`"),
			"output field %q", name)
	}
	for _, name := range outputs {
		require.Contains(t, jsonNames(job.Output{}), name, "output field %q in contracts.md", name)
	}

	redis := section(t, doc, "Redis")
	for _, key := range tables(redis)[0] {
		require.True(t, strings.HasPrefix(key, jobstore.KeyPrefix), "Redis key %q is under %q", key, jobstore.KeyPrefix)
	}
	for _, key := range []string{templatestore.KeyPrefix + "{name}", templatestore.IndexKey, job.TypeJob, job.TypeWebhook} {
		require.Contains(t, redis, "`"+key+"`")
	}
}
