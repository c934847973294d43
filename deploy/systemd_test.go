package deploy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The systemd units are read for what comfyq needs (commands, environment files,
// drain timing, ordering against ComfyUI) and handed to systemd-analyze: verify (unit
// syntax, dependencies, executables) and security --offline (hardening score).

// unitFile is a parsed unit: section → key → values (a key may repeat).
type unitFile map[string]map[string][]string

func (u unitFile) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func parseUnit(t *testing.T, data []byte) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "line %d %q: want Key=Value", n, line)
			require.NotEmpty(t, section, "line %d: outside a section", n)
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// parseTimespan reads a systemd time span ("11min", "1min 30s", "30").
func parseTimespan(s string) (time.Duration, error) {
	units := map[string]time.Duration{"": time.Second, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
		"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
		"h": time.Hour, "hr": time.Hour, "hour": time.Hour, "hours": time.Hour}
	parts := regexp.MustCompile(`(\d+)\s*([a-z]*)`).FindAllStringSubmatch(s, -1)
	if len(parts) == 0 {
		return 0, fmt.Errorf("bad time span %q", s)
	}
	var d time.Duration
	for _, p := range parts {
		n, _ := strconv.Atoi(p[1])
		u, ok := units[p[2]]
		if !ok {
			return 0, fmt.Errorf("bad unit %q in %q", p[2], s)
		}
		d += time.Duration(n) * u
	}
	return d, nil
}

// systemdUnits are the comfyq units, their command and the example file behind each
// of their environment files (%i is instance 0).
var systemdUnits = []struct {
	file, instance, command string
	envFiles                map[string]string
}{
	{"comfyq-worker@.service", "0", "worker", map[string]string{
		"/etc/comfyq/comfyq.env":    "comfyq.env.example",
		"/etc/comfyq/worker-%i.env": "worker-0.env.example",
	}},
	{"comfyq-api.service", "", "api", map[string]string{
		"/etc/comfyq/comfyq.env": "comfyq.env.example",
		"/etc/comfyq/api.env":    "api.env.example",
	}},
}

func TestSystemdUnits(t *testing.T) {
	t.Parallel()
	c := loadCLI(t)
	sysusers := string(read(t, "deploy/systemd/comfyq.sysusers.conf"))
	for _, su := range systemdUnits {
		t.Run(su.file, func(t *testing.T) {
			t.Parallel()
			u := parseUnit(t, read(t, "deploy/systemd/"+su.file))
			svc := u["Service"]
			require.NotNil(t, svc)

			exec := strings.Fields(u.get("Service", "ExecStart"))
			require.Equal(t, "/usr/local/bin/comfyq", exec[0])
			cmd := c.checkArgs(t, su.file, exec[1:])
			require.Equal(t, su.command, cmd.name)

			// Environment files: each has its example, whose variables the command reads.
			env := map[string]string{}
			require.Len(t, svc["EnvironmentFile"], len(su.envFiles))
			for _, f := range svc["EnvironmentFile"] {
				example, ok := su.envFiles[f]
				require.True(t, ok, "EnvironmentFile %s has no example in deploy/systemd", f)
				keys, vals := parseEnvFile(t, read(t, "deploy/systemd/"+example))
				checkEnv(t, example, keys, cmd)
				for k, v := range vals {
					env[k] = v
				}
			}
			// The examples' commented-out alternatives are real settings too.
			for _, example := range su.envFiles {
				for _, m := range regexp.MustCompile(`(?m)^#\s*(COMFYQ_[A-Z0-9_]+)=(.*)$`).FindAllStringSubmatch(string(read(t, "deploy/systemd/"+example)), -1) {
					checkEnv(t, example+" (commented)", []string{m[1]}, cmd)
					checkURLs(t, example+" (commented)", map[string]string{m[1]: m[2]})
				}
			}
			checkURLs(t, su.file, env)

			require.Equal(t, "SIGTERM", u.get("Service", "KillSignal"))
			require.Equal(t, "on-failure", u.get("Service", "Restart"), "a drained worker exits 0 and stays stopped")
			user := u.get("Service", "User")
			require.NotEmpty(t, user)
			require.Regexp(t, `(?m)^u `+regexp.QuoteMeta(user)+` `, sysusers, "comfyq.sysusers.conf creates %s", user)
			require.Equal(t, "comfyq", u.get("Service", "StateDirectory"), "file storage under /var/lib/comfyq")
			stop, err := parseTimespan(u.get("Service", "TimeoutStopSec"))
			require.NoError(t, err)

			switch cmd.name {
			case "worker":
				grace := cmd.durationDefault(t, "COMFYQ_SHUTDOWN_GRACE")
				if v, ok := env["COMFYQ_SHUTDOWN_GRACE"]; ok {
					grace, err = time.ParseDuration(v)
					require.NoError(t, err)
				}
				require.GreaterOrEqual(t, stop, grace+30*time.Second,
					"TimeoutStopSec %s must exceed COMFYQ_SHUTDOWN_GRACE %s: systemd kills the worker when it runs out", stop, grace)
				// Ordered after its ComfyUI, so that it stops (and drains) first; the
				// example ComfyUI unit serves the port the worker's example points at.
				require.Contains(t, u["Unit"]["After"], "comfyui@%i.service")
				comfyui := parseUnit(t, read(t, "deploy/systemd/comfyui@.service"))
				port := regexp.MustCompile(`--port\s+(\S+)`).FindStringSubmatch(comfyui.get("Service", "ExecStart"))
				require.NotNil(t, port, "comfyui@.service sets --port")
				want := strings.ReplaceAll(port[1], "%i", su.instance)
				require.Contains(t, env["COMFYQ_COMFY_URLS"], "127.0.0.1:"+want, "worker-0 uses comfyui@0's port")
				require.Contains(t, comfyui.get("Service", "Environment"), "CUDA_VISIBLE_DEVICES=%i")
			case "api":
				host, _, err := splitListen(env["COMFYQ_LISTEN"])
				require.NoError(t, err)
				require.Equal(t, "127.0.0.1", host, "behind a local TLS proxy")
			}
		})
	}
}

// TestSystemdAnalyze runs systemd-analyze verify on every unit and a security review
// on comfyq's. verify needs the executables to exist: the units are copied with
// ExecStart pointing at a stub.
func TestSystemdAnalyze(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not on PATH, so deploy/systemd's units are not verified; it ships with systemd " +
			"(Debian: apt-get install systemd) and needs no running systemd")
	}
	dir := t.TempDir()
	stub := filepath.Join(dir, "stub")
	require.NoError(t, os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755))
	units, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "systemd", "*.service"))
	require.NoError(t, err)
	require.Len(t, units, 3)
	var names []string
	for _, src := range units {
		data, readErr := os.ReadFile(src)
		require.NoError(t, readErr)
		data = regexp.MustCompile(`(?m)^(ExecStart=)(\S+)`).ReplaceAll(data, []byte("${1}"+stub))
		name := strings.Replace(filepath.Base(src), "@.", "@0.", 1)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
		names = append(names, name)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(analyze, args...)
		cmd.Dir = dir
		out, runErr := cmd.CombinedOutput()
		return string(out), runErr
	}
	// verify prints a line for every problem (unknown keys, bad values) without always
	// failing: any output is a failure.
	out, err := run(append([]string{"verify", "--man=no"}, names...)...)
	require.NoError(t, err, out)
	require.Empty(t, strings.TrimSpace(out), "systemd-analyze verify")

	for _, name := range names {
		if !strings.HasPrefix(name, "comfyq") {
			continue // comfyui@ is an example to adapt
		}
		out, err := run("security", "--offline=true", "--threshold=20", "--no-pager", name)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.NoError(t, err, "%s: exposure above 2.0: %s", name, lines[len(lines)-1])
	}
}
