package deploy_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The operations documentation names files, variables, commands, URLs and sections;
// these tests keep it true to the repository.

var opsDocs = []string{"docs/deploy.md", "docs/operations.md"}

// deployFiles returns the files of deploy/ other than Go code, by path from the root.
func deployFiles(t *testing.T) []string {
	t.Helper()
	root := repoRoot(t)
	var out []string
	err := filepath.WalkDir(filepath.Join(root, "deploy"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".go") {
			return err
		}
		rel, err := filepath.Rel(root, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	require.NoError(t, err)
	require.Greater(t, len(out), 10)
	return out
}

// TestEnvNamesExist checks every COMFYQ_* name in the deployment files and the
// operations docs against the variables the command line reads (test and benchmark
// knobs, COMFYQ_TEST_* and COMFYQ_BENCH_*, aside).
func TestEnvNamesExist(t *testing.T) {
	t.Parallel()
	c := loadCLI(t)
	re := regexp.MustCompile(`COMFYQ_[A-Z0-9_]*[A-Z0-9]`)
	for _, f := range append(deployFiles(t), opsDocs...) {
		for _, name := range re.FindAllString(string(read(t, f)), -1) {
			if strings.HasPrefix(name, "COMFYQ_TEST_") || strings.HasPrefix(name, "COMFYQ_BENCH_") {
				continue // a knob of the project's own tests and benchmarks, not of a command
			}
			require.True(t, c.allEnv[name], "%s mentions %s, which no comfyq command reads", f, name)
		}
	}
}

func TestOpsDocs(t *testing.T) {
	t.Parallel()
	c := loadCLI(t)
	root := repoRoot(t)
	anchors := map[string]map[string]bool{}
	for _, doc := range opsDocs {
		anchors[filepath.Base(doc)] = headingAnchors(string(read(t, doc)))
	}
	for _, doc := range opsDocs {
		text := string(read(t, doc))
		t.Run(filepath.Base(doc), func(t *testing.T) {
			// Files of the repository it names exist.
			for _, m := range regexp.MustCompile("(?:^|[\\s`(])((?:deploy|docs|scripts|cmd)/[A-Za-z0-9_.@/*-]+)").FindAllStringSubmatch(text, -1) {
				p := strings.TrimRight(m[1], ".,:;")
				if p == "deploy/.env" { // created by the user from compose.env.example
					continue
				}
				matches, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(p)))
				require.NoError(t, err)
				require.NotEmpty(t, matches, "%s names %s, which does not exist", doc, p)
			}
			// Links to sections exist.
			for _, m := range regexp.MustCompile(`\]\(([a-z]+\.md)?#([a-z0-9-]+)\)`).FindAllStringSubmatch(text, -1) {
				file := m[1]
				if file == "" {
					file = filepath.Base(doc)
				}
				require.Contains(t, anchors, file, "%s links to %s", doc, file)
				require.True(t, anchors[file][m[2]], "%s links to %s#%s, which has no such heading", doc, file, m[2])
			}
			for _, m := range regexp.MustCompile(`\]\(([a-z]+\.md)\)`).FindAllStringSubmatch(text, -1) {
				_, err := os.Stat(filepath.Join(root, "docs", m[1]))
				require.NoError(t, err, "%s links to %s", doc, m[1])
			}
			// comfyq command lines in code blocks are valid.
			for _, line := range codeLines(text) {
				for _, args := range comfyqInvocations(line) {
					c.checkArgs(t, doc+": "+line, args)
				}
			}
			// Redis and storage URLs parse the way comfyq parses them.
			for _, u := range regexp.MustCompile("(?:redis|rediss|redis-sentinel)://[^\\s'\"`|)]+").FindAllString(text, -1) {
				if !strings.ContainsAny(u, "…<$") {
					checkRedisURL(t, doc, strings.TrimRight(u, ".,"))
				}
			}
			for _, m := range regexp.MustCompile("COMFYQ_REDIS_URL=([^\\s'\"`]+)").FindAllStringSubmatch(text, -1) {
				if !strings.ContainsAny(m[1], "…<$") {
					checkRedisURL(t, doc, m[1])
				}
			}
			for _, u := range regexp.MustCompile("(?:s3|file)://[^\\s'\"`|)]+").FindAllString(text, -1) {
				if !strings.ContainsAny(u, "…<$") {
					checkStorageURL(t, doc, strings.TrimRight(u, ".,"))
				}
			}
		})
	}
}

// headingAnchors returns the GitHub anchors of a Markdown document's headings.
func headingAnchors(text string) map[string]bool {
	out := map[string]bool{}
	inCode := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		h = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(h, "")
		out[strings.ReplaceAll(h, " ", "-")] = true
	}
	return out
}

// codeLines returns the lines of the fenced shell code blocks, continuations joined.
func codeLines(text string) []string {
	var out []string
	inCode, shell := false, false
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			lang := strings.TrimPrefix(line, "```")
			shell = inCode && (lang == "sh" || lang == "bash" || lang == "")
			continue
		}
		if !inCode || !shell {
			continue
		}
		if s, ok := strings.CutSuffix(strings.TrimSpace(line), "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(strings.TrimSpace(line))
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

// comfyqInvocations returns the arguments of each comfyq run in a shell line: a
// command that is comfyq (./comfyq, /usr/local/bin/comfyq), or `docker run … IMAGE`
// with a comfyq image.
func comfyqInvocations(line string) [][]string {
	var out [][]string
	for _, seg := range regexp.MustCompile(`&&|\|\||[;|]`).Split(line, -1) {
		f := strings.Fields(seg)
		if len(f) == 0 {
			continue
		}
		if filepath.Base(f[0]) == "comfyq" {
			if len(f) > 1 {
				out = append(out, f[1:])
			}
			continue
		}
		if len(f) > 2 && f[0] == "docker" && f[1] == "run" {
			for i, a := range f[2:] {
				if !strings.HasPrefix(a, "-") && isComfyqImage(a) {
					out = append(out, f[2+i+1:])
					break
				}
			}
		}
	}
	return out
}
