package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v3"
)

// TestCLIReferenceUpToDate keeps docs/cli.md in step with the commands and flags.
// Regenerate it with: go run ./cmd/comfyq docs > docs/cli.md
func TestCLIReferenceUpToDate(t *testing.T) {
	var buf bytes.Buffer
	writeReference(&buf)
	path := filepath.Join("..", "..", "docs", "cli.md")
	if os.Getenv("COMFYQ_UPDATE_DOCS") != "" {
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	}
	have, err := os.ReadFile(path)
	require.NoError(t, err)
	want, got := strings.Split(buf.String(), "\n"), strings.Split(string(have), "\n")
	for i := 0; i < len(want) || i < len(got); i++ {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Fatalf("docs/cli.md is stale at line %d:\n  file: %q\n  code: %q\nrun: go run ./cmd/comfyq docs > docs/cli.md", i+1, g, w)
		}
	}
}

// TestREADMECommandsParse checks that every comfyq command line shown in the README
// names a real command and only flags that exist.
func TestREADMECommandsParse(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	line := regexp.MustCompile(`(?m)^\s*(?:\./)?comfyq ([a-z]+)((?: .*)?)$`)
	flagRE := regexp.MustCompile(`(?:^|\s)--([a-z][a-z0-9-]*)`)
	n := 0
	inCode := false
	for _, l := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inCode = !inCode
			continue
		}
		if !inCode {
			continue
		}
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n++
		c := visibleCommand(m[1])
		require.NotNil(t, c, "README shows an unknown command: %s", l)
		for _, f := range flagRE.FindAllStringSubmatch(m[2], -1) {
			require.True(t, hasFlag(c, f[1]), "README shows an unknown flag --%s in: %s", f[1], l)
		}
	}
	require.Greater(t, n, 5, "the README shows comfyq commands")
}

// visibleCommand returns the command of the command list named name, or nil.
func visibleCommand(name string) *cli.Command {
	for _, c := range visibleCommands() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func visibleCommands() []*cli.Command {
	var out []*cli.Command
	for _, c := range newRoot(base{Out: io.Discard, Err: io.Discard}).Commands {
		if !c.Hidden && c.Name != "help" {
			out = append(out, c)
		}
	}
	return out
}

func hasFlag(c *cli.Command, name string) bool {
	for _, f := range c.Flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}
