package deploy_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The deployment files run comfyq commands with flags and COMFYQ_* variables. The
// tests check them against the command line as the code defines it: cmd/comfyq is
// read with go/parser (it is package main and cannot be imported), and for every
// registered command the flags and variables its flag function defines - directly or
// through the helpers it passes its FlagSet to - are collected.

// cliCommand is what one comfyq command accepts.
type cliCommand struct {
	name  string
	flags map[string]bool
	// env maps each COMFYQ_* variable the command reads to the source text of its
	// default ("" when there is none, e.g. a list).
	env map[string]string
}

// cli is the comfyq command line.
type cli struct {
	commands map[string]*cliCommand
	// allEnv is every COMFYQ_* variable some command reads.
	allEnv map[string]bool
}

var (
	cliOnce  sync.Once
	cliModel *cli
	cliErr   error
)

// loadCLI parses cmd/comfyq once.
func loadCLI(t *testing.T) *cli {
	t.Helper()
	cliOnce.Do(func() { cliModel, cliErr = parseCLI(filepath.Join(repoRoot(t), "cmd", "comfyq")) })
	require.NoError(t, cliErr, "reading the comfyq command line from cmd/comfyq")
	return cliModel
}

var envNameRE = regexp.MustCompile(`^COMFYQ_[A-Z0-9_]*[A-Z0-9]$`)

// funcFacts is what one function of cmd/comfyq contributes to a FlagSet.
type funcFacts struct {
	flags map[string]bool
	env   map[string]string
	calls map[string]bool // functions it passes its FlagSet to
}

func parseCLI(dir string) (*cli, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	sources := map[string][]byte{}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(fset, name, data, 0)
		if err != nil {
			return nil, err
		}
		sources[name] = data
		files = append(files, f)
	}
	src := func(e ast.Expr) string {
		p, q := fset.Position(e.Pos()), fset.Position(e.End())
		return string(sources[p.Filename][p.Offset:q.Offset])
	}
	// Parameter names of every function: a helper's "name", "env" and "def"
	// parameters say which arguments are a flag name, a variable and its default.
	params := map[string][]string{}
	for _, f := range files {
		for _, decl := range f.Decls {
			if fd, ok := decl.(*ast.FuncDecl); ok && fd.Recv == nil {
				for _, field := range fd.Type.Params.List {
					for _, n := range field.Names {
						params[fd.Name.Name] = append(params[fd.Name.Name], n.Name)
					}
				}
			}
		}
	}
	funcs := map[string]*funcFacts{}
	registered := map[string]ast.Expr{} // command name → its flags function
	for _, f := range files {
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			if fd.Recv == nil {
				funcs[fd.Name.Name] = collect(fd.Type, fd.Body, src, params)
			}
			// register(&command{name: "worker", flags: workerFlags, …})
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				cl, ok := n.(*ast.CompositeLit)
				if !ok {
					return true
				}
				if id, ok := cl.Type.(*ast.Ident); !ok || id.Name != "command" {
					return true
				}
				var name string
				var flags ast.Expr
				for _, el := range cl.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					switch key := kv.Key.(*ast.Ident); {
					case key == nil:
					case key.Name == "name":
						if lit, ok := kv.Value.(*ast.BasicLit); ok {
							name, _ = strconv.Unquote(lit.Value)
						}
					case key.Name == "flags":
						flags = kv.Value
					}
				}
				if name != "" && flags != nil {
					registered[name] = flags
				}
				return true
			})
		}
	}
	if len(registered) == 0 {
		return nil, fmt.Errorf("no register(&command{…}) found in %s", dir)
	}
	c := &cli{commands: map[string]*cliCommand{}, allEnv: map[string]bool{}}
	for name, flags := range registered {
		cmd := &cliCommand{name: name, flags: map[string]bool{"help": true, "h": true}, env: map[string]string{}}
		var start *funcFacts
		switch fn := flags.(type) {
		case *ast.Ident:
			start = funcs[fn.Name]
		case *ast.FuncLit:
			start = collect(fn.Type, fn.Body, src, params)
		}
		if start == nil {
			return nil, fmt.Errorf("command %s: flags function %s not found", name, src(flags))
		}
		seen := map[*funcFacts]bool{}
		var walk func(f *funcFacts)
		walk = func(f *funcFacts) {
			if f == nil || seen[f] {
				return
			}
			seen[f] = true
			for k := range f.flags {
				cmd.flags[k] = true
			}
			for k, v := range f.env {
				if _, ok := cmd.env[k]; !ok || v != "" {
					cmd.env[k] = v
				}
			}
			for callee := range f.calls {
				walk(funcs[callee])
			}
		}
		walk(start)
		c.commands[name] = cmd
		for k := range cmd.env {
			c.allEnv[k] = true
		}
	}
	// Handled by Main itself.
	c.commands["help"] = &cliCommand{name: "help", flags: map[string]bool{}, env: map[string]string{}}
	c.commands["version"] = &cliCommand{name: "version", flags: map[string]bool{}, env: map[string]string{}}
	return c, nil
}

// collect gathers what a function body does with the FlagSet it receives: flags
// defined on it (fs.String("name", …), or envString(fs, "name", "COMFYQ_X", def, …)
// where the helper's parameters are named name, env and def), helpers it hands it
// to, and the COMFYQ_* names it mentions.
func collect(typ *ast.FuncType, body *ast.BlockStmt, src func(ast.Expr) string, params map[string][]string) *funcFacts {
	f := &funcFacts{flags: map[string]bool{}, env: map[string]string{}, calls: map[string]bool{}}
	fsName := ""
	for _, p := range typ.Params.List {
		if star, ok := p.Type.(*ast.StarExpr); ok {
			if sel, ok := star.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "FlagSet" && len(p.Names) > 0 {
				fsName = p.Names[0].Name
			}
		}
	}
	str := func(e ast.Expr) (string, bool) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(lit.Value)
		return s, err == nil
	}
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if s, ok := str(n); ok && envNameRE.MatchString(s) {
				if _, seen := f.env[s]; !seen {
					f.env[s] = ""
				}
			}
		case *ast.CallExpr:
			if fsName == "" || len(n.Args) == 0 {
				return true
			}
			// fs.String("name", …), fs.Var(v, "name", …)
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == fsName {
					for _, a := range n.Args {
						if s, ok := str(a); ok {
							f.flags[s] = true
							break
						}
					}
				}
				return true
			}
			// helper(fs, "name", "COMFYQ_X", def, …)
			if id, ok := n.Args[0].(*ast.Ident); !ok || id.Name != fsName {
				return true
			}
			fn, ok := n.Fun.(*ast.Ident)
			if !ok {
				return true
			}
			f.calls[fn.Name] = true
			var env string
			for i, p := range params[fn.Name] {
				if i >= len(n.Args) {
					break
				}
				s, isStr := str(n.Args[i])
				switch {
				case p == "name" && isStr:
					f.flags[s] = true
				case p == "env" && isStr && envNameRE.MatchString(s):
					env = s
				}
			}
			for i, p := range params[fn.Name] {
				if p == "def" && env != "" && i < len(n.Args) {
					f.env[env] = src(n.Args[i])
				}
			}
		}
		return true
	})
	return f
}

// command returns the named command or fails the test.
func (c *cli) command(t *testing.T, name string) *cliCommand {
	t.Helper()
	cmd, ok := c.commands[name]
	require.True(t, ok, "comfyq has no command %q (it has: %s)", name, strings.Join(c.names(), ", "))
	return cmd
}

func (c *cli) names() []string {
	var out []string
	for n := range c.commands {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// checkArgs checks a comfyq command line (args without the binary): the command
// exists and every flag is one it defines. It returns the command.
func (c *cli) checkArgs(t *testing.T, where string, args []string) *cliCommand {
	t.Helper()
	require.NotEmpty(t, args, "%s: no comfyq command", where)
	cmd, ok := c.commands[args[0]]
	require.True(t, ok, "%s: comfyq has no command %q (it has: %s)", where, args[0], strings.Join(c.names(), ", "))
	for _, a := range args[1:] {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		require.True(t, cmd.flags[name], "%s: comfyq %s has no flag --%s", where, cmd.name, name)
	}
	return cmd
}

// checkEnv checks that every COMFYQ_* name in names is read by one of cmds.
func checkEnv(t *testing.T, where string, names []string, cmds ...*cliCommand) {
	t.Helper()
	for _, n := range names {
		if !strings.HasPrefix(n, "COMFYQ_") {
			continue
		}
		known := false
		var cmdNames []string
		for _, c := range cmds {
			_, ok := c.env[n]
			known = known || ok
			cmdNames = append(cmdNames, c.name)
		}
		require.True(t, known, "%s: %s is not read by comfyq %s", where, n, strings.Join(cmdNames, " or "))
	}
}

// durationDefault evaluates the default of a duration variable of cmd: its value in
// code, such as 10*time.Minute.
func (cmd *cliCommand) durationDefault(t *testing.T, env string) time.Duration {
	t.Helper()
	src, ok := cmd.env[env]
	require.True(t, ok, "comfyq %s does not read %s", cmd.name, env)
	d, err := evalDuration(src)
	require.NoError(t, err, "default of %s in comfyq %s", env, cmd.name)
	return d
}

// stringDefault returns the default of a string or int variable of cmd, unquoted.
func (cmd *cliCommand) stringDefault(t *testing.T, env string) string {
	t.Helper()
	src, ok := cmd.env[env]
	require.True(t, ok, "comfyq %s does not read %s", cmd.name, env)
	if s, err := strconv.Unquote(src); err == nil {
		return s
	}
	return src
}

// evalDuration evaluates "N*time.Unit" (or a quoted duration string).
func evalDuration(src string) (time.Duration, error) {
	units := map[string]time.Duration{"time.Nanosecond": time.Nanosecond, "time.Microsecond": time.Microsecond,
		"time.Millisecond": time.Millisecond, "time.Second": time.Second, "time.Minute": time.Minute, "time.Hour": time.Hour}
	s := strings.ReplaceAll(src, " ", "")
	if n, unit, ok := strings.Cut(s, "*"); ok {
		k, err := strconv.Atoi(n)
		if u, known := units[unit]; err == nil && known {
			return time.Duration(k) * u, nil
		}
	}
	if u, ok := units[s]; ok {
		return u, nil
	}
	return 0, fmt.Errorf("cannot evaluate %q as a duration", src)
}

func TestCLIModel(t *testing.T) {
	t.Parallel()
	c := loadCLI(t)
	// The model must see what the deployment files rely on; if the command line is
	// reorganised so that it does not, fix parseCLI rather than these expectations.
	w := c.command(t, "worker")
	for _, f := range []string{"redis", "storage", "comfy", "shutdown-grace", "depth", "queues"} {
		require.True(t, w.flags[f], "worker flag --%s", f)
	}
	for _, e := range []string{"COMFYQ_REDIS_URL", "COMFYQ_STORAGE_URL", "COMFYQ_COMFY_URLS", "COMFYQ_SHUTDOWN_GRACE", "COMFYQ_LOG_FORMAT"} {
		require.Contains(t, w.env, e)
	}
	require.Equal(t, 10*time.Minute, w.durationDefault(t, "COMFYQ_SHUTDOWN_GRACE"))
	require.Equal(t, "2", w.stringDefault(t, "COMFYQ_DEPTH"))
	a := c.command(t, "api")
	for _, e := range []string{"COMFYQ_LISTEN", "COMFYQ_API_KEYS", "COMFYQ_ADMIN_KEYS", "COMFYQ_REDIS_URL"} {
		require.Contains(t, a.env, e)
	}
	require.NotContains(t, a.env, "COMFYQ_SHUTDOWN_GRACE")
	c.command(t, "sim")
	c.command(t, "template")
}
