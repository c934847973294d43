package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Without a Docker engine the image cannot be built here, so the Dockerfile is parsed
// and checked against the repository: the Go version, the build command (static,
// trimmed, version stamped), the final stage (distroless or scratch, non-root, the
// binary as entrypoint, no shell-dependent instruction), and .dockerignore against
// the files the build needs (go list's view of cmd/comfyq's packages, for every
// platform the image is built for).

type dockerInstr struct {
	line int
	cmd  string // upper case
	args string
}

type dockerStage struct {
	name, base string
	instrs     []dockerInstr
}

func parseDockerfile(t *testing.T, data []byte) (args map[string]string, stages []*dockerStage) {
	t.Helper()
	args = map[string]string{}
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	var instrs []dockerInstr
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = n
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, rest, _ := strings.Cut(cur.String(), " ")
		instrs = append(instrs, dockerInstr{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(rest)})
		cur.Reset()
	}
	require.Zero(t, cur.Len(), "Dockerfile ends inside a continued line")
	for _, in := range instrs {
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			var base, name string
			for i := 0; i < len(f); i++ {
				switch {
				case strings.HasPrefix(f[i], "--"):
				case strings.EqualFold(f[i], "AS") && i+1 < len(f):
					name = f[i+1]
					i++
				default:
					base = f[i]
				}
			}
			stages = append(stages, &dockerStage{name: name, base: base})
		case len(stages) == 0:
			require.Equal(t, "ARG", in.cmd, "line %d: only ARG may come before the first FROM", in.line)
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		default:
			s := stages[len(stages)-1]
			s.instrs = append(s.instrs, in)
		}
	}
	return args, stages
}

func (s *dockerStage) find(cmd string) []dockerInstr {
	var out []dockerInstr
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	c := loadCLI(t)
	args, stages := parseDockerfile(t, read(t, "deploy/Dockerfile"))
	require.GreaterOrEqual(t, len(stages), 2, "a build stage and a runtime stage")

	// The builder's Go is the one go.mod asks for.
	build := stages[0]
	goMod := string(read(t, "go.mod"))
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(goMod)
	require.NotNil(t, goVersion)
	require.Equal(t, "golang:${GO_VERSION}", build.base)
	require.Equal(t, goVersion[1], args["GO_VERSION"], "GO_VERSION follows go.mod")

	// The build: static (no cgo), reproducible paths, stripped, version stamped.
	var buildCmd string
	for _, in := range build.find("RUN") {
		if strings.Contains(in.args, "go build") {
			buildCmd = in.args
		}
	}
	require.NotEmpty(t, buildCmd, "a RUN with go build")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "-X main.version=", "./cmd/comfyq"} {
		require.Contains(t, buildCmd, want)
	}
	out := regexp.MustCompile(`-o (\S+)`).FindStringSubmatch(buildCmd)
	require.NotNil(t, out, "go build -o")
	requireVersionVar(t)

	// The runtime stage.
	final := stages[len(stages)-1]
	require.Regexp(t, `^(gcr\.io/distroless/static[-a-z0-9]*:[a-z0-9-]+|scratch)$`, final.base, "a static base without a shell")
	require.Empty(t, final.find("RUN"), "the final image has no shell to RUN with")
	for _, in := range final.find("HEALTHCHECK") {
		require.Equal(t, "NONE", strings.TrimSpace(in.args), "line %d: no shell, curl or wget for a HEALTHCHECK", in.line)
	}
	users := final.find("USER")
	require.NotEmpty(t, users)
	uid, _, _ := strings.Cut(users[len(users)-1].args, ":")
	require.Regexp(t, `^[1-9][0-9]*$`, uid, "a numeric non-root user (Kubernetes runAsNonRoot can check it)")
	require.Equal(t, "65532", uid, "the user the manifests run as")

	var entry []string
	ep := final.find("ENTRYPOINT")
	require.Len(t, ep, 1)
	require.NoError(t, json.Unmarshal([]byte(ep[0].args), &entry), "ENTRYPOINT in exec form")
	require.Equal(t, []string{"/comfyq"}, entry)
	copied := false
	stageNames := map[string]bool{}
	for _, s := range stages[:len(stages)-1] {
		stageNames[s.name] = true
	}
	for _, in := range final.find("COPY") {
		from := regexp.MustCompile(`--from=(\S+)`).FindStringSubmatch(in.args)
		require.NotNil(t, from, "line %d: the final stage copies from the build stage only", in.line)
		require.True(t, stageNames[from[1]], "line %d: no stage %s", in.line, from[1])
		f := strings.Fields(in.args)
		if f[len(f)-2] == out[1] && f[len(f)-1] == "/comfyq" {
			copied = true
		}
	}
	require.True(t, copied, "COPY --from=build %s /comfyq", out[1])
	for _, in := range final.find("CMD") {
		var cmd []string
		require.NoError(t, json.Unmarshal([]byte(in.args), &cmd), "CMD in exec form")
		c.checkArgs(t, "CMD", cmd)
	}
}

// requireVersionVar checks that cmd/comfyq has the package-level string variable
// main.version that -X sets (-X on a missing variable is silently ignored).
func requireVersionVar(t *testing.T) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "cmd", "comfyq", "*.go"))
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name != "version" {
						continue
					}
					var lit *ast.BasicLit
					if i < len(vs.Values) {
						lit, _ = vs.Values[i].(*ast.BasicLit)
					}
					require.True(t, lit != nil && lit.Kind == token.STRING, "main.version must be a string variable with a literal value for -X")
					return
				}
			}
		}
	}
	t.Fatal("cmd/comfyq has no package-level variable version for -X main.version")
}

// TestDockerBuildContext checks that .dockerignore keeps every file the build needs:
// go.mod, go.sum and the Go and embedded files of every package of this module that
// cmd/comfyq imports, on the platforms the image is built for, with cgo off.
func TestDockerBuildContext(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	ignore := parseDockerignore(t, read(t, ".dockerignore"))
	needed := []string{"go.mod", "go.sum", "deploy/Dockerfile"}
	for _, arch := range []string{"amd64", "arm64"} {
		cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Dir,Module,GoFiles,EmbedFiles,CgoFiles,Error,DepsErrors", "./cmd/comfyq")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "go list: %s", stderr.String())
		dec := json.NewDecoder(bytes.NewReader(out))
		for dec.More() {
			var p struct {
				ImportPath string
				Dir        string
				Module     *struct{ Path string }
				GoFiles    []string
				EmbedFiles []string
				CgoFiles   []string
				Error      *struct{ Err string }
				DepsErrors []struct{ Err string }
			}
			require.NoError(t, dec.Decode(&p))
			require.Nil(t, p.Error, "linux/%s without cgo: %s: %+v", arch, p.ImportPath, p.Error)
			require.Empty(t, p.DepsErrors, "linux/%s without cgo: %s", arch, p.ImportPath)
			require.Empty(t, p.CgoFiles, "%s needs cgo; the image's binary is static", p.ImportPath)
			if p.Module == nil || p.Module.Path != "github.com/comfyq/comfyq" {
				continue
			}
			rel, err := filepath.Rel(root, p.Dir)
			require.NoError(t, err)
			for _, f := range append(p.GoFiles, p.EmbedFiles...) {
				needed = append(needed, filepath.ToSlash(filepath.Join(rel, f)))
			}
		}
	}
	require.Greater(t, len(needed), 20)
	for _, f := range needed {
		require.False(t, ignore.excludes(f), ".dockerignore leaves %s out of the build context, but the build needs it", f)
	}
	// And it keeps out what must not be sent (local data, secrets, the git history).
	for _, f := range []string{".git/config", "outputs/jobs/x.png", "deploy/.env", ".env", "comfyq"} {
		require.True(t, ignore.excludes(f), ".dockerignore should leave out %s", f)
	}
}

type dockerignore []struct {
	re     *regexp.Regexp
	negate bool
}

// parseDockerignore reads .dockerignore patterns (Go filepath.Match syntax plus **,
// ! for exceptions; a pattern matching a directory excludes what is under it).
func parseDockerignore(t *testing.T, data []byte) dockerignore {
	t.Helper()
	var out dockerignore
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		neg := strings.HasPrefix(line, "!")
		line = strings.TrimPrefix(strings.TrimPrefix(line, "!"), "/")
		line = filepath.ToSlash(filepath.Clean(line))
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch ch := line[i]; {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case ch == '*':
				re.WriteString("[^/]*")
			case ch == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(ch)))
			}
		}
		re.WriteString("(/.*)?$")
		out = append(out, struct {
			re     *regexp.Regexp
			negate bool
		}{regexp.MustCompile(re.String()), neg})
	}
	return out
}

func (d dockerignore) excludes(path string) bool {
	excluded := false
	for _, p := range d {
		if p.re.MatchString(path) {
			excluded = !p.negate
		}
	}
	return excluded
}
