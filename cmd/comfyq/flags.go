package main

import (
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// Flags read their default from an environment variable, named in the help text.

func envString(fs *flag.FlagSet, name, env, def, usage string) *string {
	if v, ok := os.LookupEnv(env); ok {
		def = v
	}
	return fs.String(name, def, usage+" (env "+env+")")
}

func envBool(fs *flag.FlagSet, name, env string, def bool, usage string) *bool {
	if v, ok := os.LookupEnv(env); ok {
		if b, err := strconv.ParseBool(v); err == nil {
			def = b
		}
	}
	return fs.Bool(name, def, usage+" (env "+env+")")
}

func envInt(fs *flag.FlagSet, name, env string, def int, usage string) *int {
	if v, ok := os.LookupEnv(env); ok {
		if i, err := strconv.Atoi(v); err == nil {
			def = i
		}
	}
	return fs.Int(name, def, usage+" (env "+env+")")
}

func envDuration(fs *flag.FlagSet, name, env string, def time.Duration, usage string) *time.Duration {
	if v, ok := os.LookupEnv(env); ok {
		if d, err := time.ParseDuration(v); err == nil {
			def = d
		}
	}
	return fs.Duration(name, def, usage+" (env "+env+")")
}

// listFlag is a repeatable flag; its environment variable is comma-separated.
type listFlag struct {
	values  []string
	fromEnv bool
}

func (l *listFlag) String() string { return strings.Join(l.values, ",") }

func (l *listFlag) Set(v string) error {
	if l.fromEnv { // the command line replaces the environment's list
		l.values, l.fromEnv = nil, false
	}
	l.values = append(l.values, v)
	return nil
}

func envList(fs *flag.FlagSet, name, env, usage string) *listFlag {
	l := &listFlag{}
	if v := os.Getenv(env); v != "" {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				l.values = append(l.values, s)
			}
		}
		l.fromEnv = true
	}
	fs.Var(l, name, usage+" (repeatable; env "+env+", comma-separated)")
	return l
}

func repeated(fs *flag.FlagSet, name, usage string) *listFlag {
	l := &listFlag{}
	fs.Var(l, name, usage+" (repeatable)")
	return l
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

// logFlags adds --log-level and --log-format and returns a function building the logger.
func logFlags(fs *flag.FlagSet) func() *slog.Logger {
	level := envString(fs, "log-level", "COMFYQ_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	format := envString(fs, "log-format", "COMFYQ_LOG_FORMAT", "text", "log format: text or json")
	return func() *slog.Logger {
		var l slog.Level
		if err := l.UnmarshalText([]byte(*level)); err != nil {
			l = slog.LevelInfo
		}
		opts := &slog.HandlerOptions{Level: l}
		var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
		if *format == "json" {
			h = slog.NewJSONHandler(os.Stderr, opts)
		}
		return slog.New(h)
	}
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
