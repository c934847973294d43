package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The deployment files run comfyq commands with flags and COMFYQ_* variables. The
// tests check them against the command line as the code defines it. cmd/comfyq is
// package main and cannot be imported; its generated reference, docs/cli.md, lists
// every command with each flag, its variable and its default, and a test in
// cmd/comfyq (TestCLIReferenceUpToDate) keeps that file in step with the command
// tree. So the model is read from there.

// cliCommand is what one comfyq command accepts.
type cliCommand struct {
	name  string
	flags map[string]bool
	// env maps each COMFYQ_* variable the command reads to its default as the
	// reference shows it ("" when there is none, e.g. a list).
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

// loadCLI reads the command-line reference once.
func loadCLI(t *testing.T) *cli {
	t.Helper()
	cliOnce.Do(func() { cliModel, cliErr = parseCLI(filepath.Join(repoRoot(t), "docs", "cli.md")) })
	require.NoError(t, cliErr, "reading the comfyq command line from docs/cli.md")
	return cliModel
}

var envNameRE = regexp.MustCompile(`^COMFYQ_[A-Z0-9_]*[A-Z0-9]$`)

var (
	commandHeadingRE = regexp.MustCompile("^## comfyq ([a-z]+)$")
	// | `--depth` | `COMFYQ_DEPTH` | `2` | meaning |
	flagRowRE = regexp.MustCompile("^\\| `--([a-z0-9-]+)` \\| (?:`([A-Z0-9_]+)`)? *\\| (?:`([^`]*)`)? *\\|")
)

// parseCLI reads the commands, flags, variables and defaults of docs/cli.md.
func parseCLI(path string) (*cli, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &cli{commands: map[string]*cliCommand{}, allEnv: map[string]bool{}}
	var cmd *cliCommand
	for _, line := range strings.Split(string(data), "\n") {
		if m := commandHeadingRE.FindStringSubmatch(line); m != nil {
			cmd = &cliCommand{name: m[1], flags: map[string]bool{"help": true, "h": true}, env: map[string]string{}}
			c.commands[cmd.name] = cmd
			continue
		}
		m := flagRowRE.FindStringSubmatch(line)
		if m == nil || cmd == nil {
			continue
		}
		cmd.flags[m[1]] = true
		if m[2] != "" {
			if !envNameRE.MatchString(m[2]) {
				return nil, fmt.Errorf("%s: comfyq %s --%s: %q is not a COMFYQ_ variable", path, cmd.name, m[1], m[2])
			}
			cmd.env[m[2]] = m[3]
			c.allEnv[m[2]] = true
		}
	}
	if len(c.commands) < 5 {
		return nil, fmt.Errorf("%s: found %d commands, want the comfyq command line", path, len(c.commands))
	}
	// Commands without flags of their own.
	c.commands["help"] = &cliCommand{name: "help", flags: map[string]bool{}, env: map[string]string{}}
	c.commands["version"] = &cliCommand{name: "version", flags: map[string]bool{}, env: map[string]string{}}
	return c, nil
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

// durationDefault returns the default of a duration variable of cmd.
func (cmd *cliCommand) durationDefault(t *testing.T, env string) time.Duration {
	t.Helper()
	def, ok := cmd.env[env]
	require.True(t, ok, "comfyq %s does not read %s", cmd.name, env)
	d, err := time.ParseDuration(def)
	require.NoError(t, err, "default of %s in comfyq %s", env, cmd.name)
	return d
}

// stringDefault returns the default of a string or int variable of cmd.
func (cmd *cliCommand) stringDefault(t *testing.T, env string) string {
	t.Helper()
	def, ok := cmd.env[env]
	require.True(t, ok, "comfyq %s does not read %s", cmd.name, env)
	return def
}
