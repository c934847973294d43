// Command comfyq turns ComfyUI workflows into a durable job queue: it runs workers
// beside ComfyUI nodes, submits and follows jobs, serves the HTTP API and simulates
// ComfyUI for tests and demos. Run `comfyq help` for the commands.
//
// This package only wires: each command's flags and environment variables fill an
// options struct, Validate refuses what makes no sense, Run does the work, and Main
// turns the error into the exit code.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v3"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

var version = "dev"

func init() {
	// comfyq --version prints what comfyq version prints.
	cli.VersionPrinter = func(cmd *cli.Command) { fmt.Fprintln(cmd.Root().Writer, "comfyq", cmd.Root().Version) }
}

// base is what every command has besides its flags: where it writes.
type base struct {
	Out, Err io.Writer
}

// runner is a command's options: filled from flags and environment, checked by
// Validate, carried out by Run.
type runner interface {
	Validate() error
	Run(ctx context.Context) error
}

// commandList builds the command tree, with fresh options structs writing to b.
// Hidden commands (docs, version) are left out of the command list.
func commandList(b base) []*cli.Command {
	return []*cli.Command{
		apiCommand(b),
		benchCommand(b),
		cancelCommand(b),
		devCommand(b),
		keysCommand(b),
		simCommand(b),
		statusCommand(b),
		submitCommand(b),
		templateCommand(b),
		workerCommand(b),
		workflowCommand(b),
		docsCommand(b),
		{Name: "version", Usage: "print the version", Hidden: true, Action: func(context.Context, *cli.Command) error {
			fmt.Fprintln(b.Out, "comfyq", version)
			return nil
		}},
	}
}

// newRoot builds the comfyq command.
func newRoot(b base) *cli.Command {
	root := &cli.Command{
		Name:                          "comfyq",
		Usage:                         "turns ComfyUI workflows into a durable, scalable job queue",
		Version:                       version,
		Writer:                        b.Out,
		ErrWriter:                     b.Err,
		Commands:                      commandList(b),
		CustomRootCommandHelpTemplate: rootHelp,
		ExitErrHandler:                func(context.Context, *cli.Command, error) {}, // Main chooses the exit code
		OnUsageError:                  onUsageError,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() > 0 {
				return &usageError{fmt.Errorf("unknown command %q; run 'comfyq help' for the commands", cmd.Args().First())}
			}
			return cli.ShowRootCommandHelp(cmd)
		},
	}
	for _, c := range root.Commands {
		if c.CustomHelpTemplate == "" {
			c.CustomHelpTemplate = commandHelp
		}
		if c.OnUsageError == nil {
			c.OnUsageError = onUsageError
		}
		// A list flag's value on the command line is one item: --param prompt="a, b".
		c.DisableSliceFlagSeparator = true
	}
	return root
}

// Main runs the command line and returns the exit code: 0, 1 for a failure, 2 for a
// command line that makes no sense (an unknown flag, a value that does not parse, a
// missing argument), other codes as a command documents them. Long-running commands
// stop when ctx ends (main cancels it on SIGINT or SIGTERM).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(base{Out: stdout, Err: stderr})
	err := root.Run(ctx, append([]string{"comfyq"}, args...))
	if err == nil {
		return 0
	}
	var ce *commandError
	errors.As(err, &ce)
	// Errors of the library (a flag or variable that does not parse) may come
	// without the command: name it after the first argument.
	cmdName := ""
	if ce != nil && ce.name != root.Name {
		cmdName = ce.name
	} else if ce == nil && len(args) > 0 && root.Command(args[0]) != nil {
		cmdName = args[0]
	}
	name := "comfyq"
	if cmdName != "" {
		name += " " + cmdName
	}
	var ue *usageError
	if errors.As(err, &ue) || ce == nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		switch cmdName {
		case "":
		case "help":
			fmt.Fprintln(stderr, "Run 'comfyq help' for the commands.")
		default:
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", name)
		}
		return 2
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// action runs o: it hands the positional arguments to args (a command that takes
// none refuses them when args is nil), validates and runs.
func action(o runner, args *[]string) cli.ActionFunc {
	return func(ctx context.Context, cmd *cli.Command) error {
		err := func() error {
			if args != nil {
				*args = cmd.Args().Slice()
			} else if cmd.NArg() > 0 {
				return usagef("unexpected arguments %q", cmd.Args().Slice())
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(ctx)
		}()
		if err != nil {
			return &commandError{name: cmd.Name, err: err}
		}
		return nil
	}
}

// onUsageError marks the library's parse errors (unknown flags, values that do not
// parse, from the command line or the environment) as usage errors of the command.
func onUsageError(_ context.Context, cmd *cli.Command, err error, _ bool) error {
	return &commandError{name: cmd.Name, err: &usageError{err}}
}

// commandError is an error of a named command.
type commandError struct {
	name string
	err  error
}

func (e *commandError) Error() string { return e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

// exitError carries an exit code other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

const rootHelp = `comfyq turns ComfyUI workflows into a durable, scalable job queue.

Usage: comfyq <command> [flags]

Commands:
{{range .VisibleCommands}}{{if ne .Name "help"}}  {{printf "%-10s" .Name}} {{.Usage}}
{{end}}{{end}}
Every flag can also be set by an environment variable, named on the flag's help line
(for example --redis reads COMFYQ_REDIS_URL); a flag on the command line wins over the
variable. A value that does not parse stops the command. Run 'comfyq <command> --help'
(or 'comfyq help <command>') for details.
`

const commandHelp = `Usage: comfyq {{.Name}}{{if .ArgsUsage}} {{.ArgsUsage}}{{end}}

{{.Description}}
{{if .VisibleFlags}}
Flags:
{{range .VisibleFlags}}  {{.}}
{{end}}{{end}}`
