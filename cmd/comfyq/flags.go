package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v3"
)

// The flag constructors below bind a flag to a field of a command's options. A
// non-empty env names the environment variable the flag falls back to (the command
// line wins; the variable wins over the default). A value that does not parse, from
// either, is an error naming the flag or the variable.

func sources(env string) cli.ValueSourceChain {
	if env == "" {
		return cli.ValueSourceChain{}
	}
	return cli.EnvVars(env)
}

func stringFlag(p *string, name, env, def, usage string) cli.Flag {
	return &cli.StringFlag{Name: name, Sources: sources(env), Value: def, Usage: usage, Destination: p}
}

func boolFlag(p *bool, name, env string, def bool, usage string) cli.Flag {
	return &cli.BoolFlag{Name: name, Sources: sources(env), Value: def, Usage: usage, Destination: p}
}

func intFlag(p *int, name, env string, def int, usage string) cli.Flag {
	return &cli.IntFlag{Name: name, Sources: sources(env), Value: def, Usage: usage, Destination: p,
		HideDefault: def == 0}
}

func int64Flag(p *int64, name, env string, def int64, usage string) cli.Flag {
	return &cli.Int64Flag{Name: name, Sources: sources(env), Value: def, Usage: usage, Destination: p}
}

func floatFlag(p *float64, name string, def float64, usage string) cli.Flag {
	return &cli.FloatFlag{Name: name, Value: def, Usage: usage, Destination: p}
}

func durationFlag(p *time.Duration, name, env string, def time.Duration, usage string) cli.Flag {
	return &cli.DurationFlag{Name: name, Sources: sources(env), Value: def, Usage: usage, Destination: p,
		HideDefault: def == 0}
}

// listFlag is a repeatable flag; a value on the command line is one item, commas
// and all. Its environment variable, if any, is a comma-separated list, replaced as
// a whole by the flag on the command line.
func listFlag(p *[]string, name, env, usage string) cli.Flag {
	f := &cli.StringSliceFlag{Name: name, Usage: usage + " (repeatable)", Destination: p,
		Config: cli.StringConfig{TrimSpace: true}}
	if env != "" {
		src := &listEnvSource{key: env}
		f.Usage = usage + " (repeatable; the variable is comma-separated)"
		f.Sources = cli.NewValueSourceChain(src)
		f.Action = func(context.Context, *cli.Command, []string) error {
			if src.used { // the library took the variable as one item: split it
				*p = splitList(*p)
			}
			return nil
		}
	}
	return f
}

// splitList splits each value at its commas, trims the items and drops the empty
// ones: "a, b" and "c" give a, b, c.
func splitList(values []string) []string {
	var items []string
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
	}
	return items
}

// listEnvSource is an environment variable as the source of a list flag; it
// remembers whether the flag's value came from it.
type listEnvSource struct {
	key  string
	used bool
}

func (s *listEnvSource) Lookup() (string, bool) {
	v, ok := os.LookupEnv(s.key)
	s.used = ok && v != ""
	return v, ok
}

func (s *listEnvSource) String() string   { return fmt.Sprintf("environment variable %q", s.key) }
func (s *listEnvSource) GoString() string { return fmt.Sprintf("&listEnvSource{key: %q}", s.key) }
func (s *listEnvSource) IsFromEnv() bool  { return true }
func (s *listEnvSource) Key() string      { return s.key }

// nonEmpty drops the empty items of a list ("a,,b" or a trailing comma).
func nonEmpty(l []string) []string {
	out := l[:0:0]
	for _, s := range l {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// logOptions are --log-level and --log-format.
type logOptions struct {
	Level, Format string
	level         slog.Level
}

func (o *logOptions) flags() []cli.Flag {
	return []cli.Flag{
		stringFlag(&o.Level, "log-level", "COMFYQ_LOG_LEVEL", "info", "log level: debug, info, warn, error"),
		stringFlag(&o.Format, "log-format", "COMFYQ_LOG_FORMAT", "text", "log format: text or json"),
	}
}

func (o *logOptions) Validate() error {
	if err := o.level.UnmarshalText([]byte(o.Level)); err != nil {
		return usagef("--log-level %q: want debug, info, warn or error", o.Level)
	}
	if o.Format != "text" && o.Format != "json" {
		return usagef("--log-format %q: want text or json", o.Format)
	}
	return nil
}

// logger builds the logger writing to w (the command's standard error); call it
// after Validate.
func (o *logOptions) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: o.level}
	if o.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// flagList joins flag groups.
func flagList(groups ...[]cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// parseValue reads a command-line value as JSON when it is valid JSON (numbers,
// booleans, quoted strings, objects), else as a plain string.
func parseValue(s string) any {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil && !dec.More() {
		return v
	}
	return s
}

// keyValues parses k=v pairs.
func keyValues(pairs []string, what string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usagef("%s %q: want NAME=VALUE", what, p)
		}
		out[k] = v
	}
	return out, nil
}

func printJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func required(name, env, value string) error {
	if value == "" {
		return usagef("--%s is required (or set %s)", name, env)
	}
	return nil
}
