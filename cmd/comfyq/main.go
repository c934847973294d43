// Command comfyq turns ComfyUI workflows into a durable job queue: it runs workers
// beside ComfyUI nodes, submits and follows jobs, serves the HTTP API and simulates
// ComfyUI for tests and demos. Run `comfyq help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand: its flags are parsed, then run is called.
type command struct {
	name    string
	summary string
	usage   string // the arguments after the command name
	help    string // longer description
	hidden  bool   // left out of the command list
	flags   func(fs *flag.FlagSet) func(ctx context.Context, args []string) error
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// exitError carries an exit code other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Main runs the command line and returns the exit code. Long-running commands stop
// when ctx ends (main cancels it on SIGINT or SIGTERM).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c := commands[args[1]]; c != nil {
				fs := newFlagSet(c, stderr)
				c.flags(fs)
				fs.SetOutput(stdout)
				fs.Usage()
				return 0
			}
		}
		usage(stdout)
		return 0
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "comfyq", version)
		return 0
	}
	c := commands[args[0]]
	if c == nil {
		fmt.Fprintf(stderr, "comfyq: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	fs := newFlagSet(c, stderr)
	run := c.flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx = withIO(ctx, stdout, stderr)
	if err := run(ctx, fs.Args()); err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "comfyq %s: %v\nRun 'comfyq %s --help' for usage.\n", c.name, ue.err, c.name)
			return 2
		}
		fmt.Fprintf(stderr, "comfyq %s: %v\n", c.name, err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

var version = "dev"

func usage(w io.Writer) {
	fmt.Fprint(w, `comfyq turns ComfyUI workflows into a durable, scalable job queue.

Usage: comfyq <command> [flags]

Commands:
`)
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, `
Every flag can also be set by an environment variable, named on the flag's help line
(for example --redis reads COMFYQ_REDIS_URL). Run 'comfyq <command> --help' for details.
`)
}

func newFlagSet(c *command, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("comfyq "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: comfyq %s %s\n\n%s\n", c.name, c.usage, strings.TrimSpace(c.help))
		fmt.Fprint(w, "\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

type ioKey struct{}

type stdio struct{ out, err io.Writer }

func withIO(ctx context.Context, out, err io.Writer) context.Context {
	return context.WithValue(ctx, ioKey{}, stdio{out, err})
}

func stdout(ctx context.Context) io.Writer {
	if s, ok := ctx.Value(ioKey{}).(stdio); ok {
		return s.out
	}
	return os.Stdout
}

func stderr(ctx context.Context) io.Writer {
	if s, ok := ctx.Value(ioKey{}).(stdio); ok {
		return s.err
	}
	return os.Stderr
}
