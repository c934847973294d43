package deploy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// There is no Docker engine or Compose here, so compose.yaml is checked by reading it:
// Compose's own YAML rules (anchors, merge keys), its variable interpolation, the keys
// the Compose specification defines, and what comfyq needs from it.

// composeServiceKeys are the service attributes of the Compose specification.
var composeServiceKeys = setOf("annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop",
	"cgroup", "cgroup_parent", "command", "configs", "container_name", "cpu_count", "cpu_percent",
	"cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset",
	"credential_spec", "depends_on", "deploy", "develop", "device_cgroup_rules", "devices", "dns",
	"dns_opt", "dns_search", "domainname", "entrypoint", "env_file", "environment", "expose", "extends",
	"external_links", "extra_hosts", "gpus", "group_add", "healthcheck", "hostname", "image", "init",
	"ipc", "isolation", "label_file", "labels", "links", "logging", "mac_address", "mem_limit",
	"mem_reservation", "mem_swappiness", "memswap_limit", "models", "network_mode", "networks",
	"oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform", "ports", "post_start",
	"pre_stop", "privileged", "profiles", "provider", "pull_policy", "read_only", "restart", "runtime",
	"scale", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period", "stop_signal",
	"storage_opt", "sysctls", "tmpfs", "tty", "ulimits", "use_api_socket", "user", "userns_mode", "uts",
	"volumes", "volumes_from", "working_dir")

var composeTopKeys = setOf("name", "services", "volumes", "networks", "configs", "secrets", "include", "models", "version")

func setOf(s ...string) map[string]bool {
	m := map[string]bool{}
	for _, k := range s {
		m[k] = true
	}
	return m
}

// composeFile is compose.yaml after interpolation.
type composeFile struct {
	Name     string                     `yaml:"name"`
	Services map[string]*composeService `yaml:"services"`
	Volumes  map[string]any             `yaml:"volumes"`
}

type composeService struct {
	Image           string            `yaml:"image"`
	Build           any               `yaml:"build"`
	Entrypoint      []string          `yaml:"entrypoint"`
	Command         []string          `yaml:"command"`
	Environment     map[string]string `yaml:"environment"`
	Volumes         []string          `yaml:"volumes"`
	Ports           []string          `yaml:"ports"`
	Restart         string            `yaml:"restart"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	ReadOnly        bool              `yaml:"read_only"`
	CapDrop         []string          `yaml:"cap_drop"`
	Healthcheck     *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
		Disable     bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Deploy struct {
		Resources struct {
			Reservations struct {
				Devices []struct {
					Driver       string   `yaml:"driver"`
					DeviceIDs    []string `yaml:"device_ids"`
					Capabilities []string `yaml:"capabilities"`
				} `yaml:"devices"`
			} `yaml:"reservations"`
		} `yaml:"resources"`
	} `yaml:"deploy"`
}

// isComfyq says whether the service runs the comfyq image (built from deploy/Dockerfile).
func (s *composeService) isComfyq() bool {
	return s.Build != nil && strings.HasPrefix(s.Image, "comfyq:")
}

// interpolate applies Compose's variable syntax: $$, $VAR, ${VAR}, ${VAR:-default},
// ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt}, ${VAR+alt}. It returns the
// names it met.
func interpolate(s string, env map[string]string) (string, []string, error) {
	var out strings.Builder
	var names []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			out.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			out.WriteByte('$')
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", nil, fmt.Errorf("unclosed ${ in %q", s)
			}
			expr := s[i+2 : i+end]
			i += end
			m := regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$`).FindStringSubmatch(expr)
			if m == nil {
				return "", nil, fmt.Errorf("bad variable ${%s} in %q", expr, s)
			}
			name, op, arg := m[1], m[2], m[3]
			names = append(names, name)
			v, set := env[name]
			empty := !set || (strings.HasPrefix(op, ":") && v == "")
			switch op {
			case "":
				out.WriteString(v)
			case ":-", "-":
				if empty {
					v = arg
				}
				out.WriteString(v)
			case ":?", "?":
				if empty {
					return "", nil, fmt.Errorf("required variable %s is not set: %s", name, arg)
				}
				out.WriteString(v)
			case ":+", "+":
				if !empty {
					out.WriteString(arg)
				}
			}
			continue
		}
		m := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`).FindString(s[i+1:])
		if m == "" {
			return "", nil, fmt.Errorf("lone $ in %q (write $$)", s)
		}
		names = append(names, m)
		out.WriteString(env[m])
		i += len(m)
	}
	return out.String(), names, nil
}

// interpolateNode interpolates every scalar of a YAML tree in place.
func interpolateNode(n *yaml.Node, env map[string]string, used map[string]bool) error {
	if n.Kind == yaml.ScalarNode {
		v, names, err := interpolate(n.Value, env)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		for _, name := range names {
			used[name] = true
		}
		n.Value = v
		return nil
	}
	for _, c := range n.Content {
		if err := interpolateNode(c, env, used); err != nil {
			return err
		}
	}
	return nil
}

// parseEnvFile reads KEY=VALUE lines (comments and blank lines skipped).
func parseEnvFile(t *testing.T, data []byte) (keys []string, env map[string]string) {
	t.Helper()
	env = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "line %d %q: want KEY=VALUE", n, line)
		require.Regexp(t, `^[A-Za-z_][A-Za-z0-9_]*$`, k, "line %d", n)
		_, dup := env[k]
		require.False(t, dup, "line %d: %s set twice", n, k)
		keys = append(keys, k)
		env[k] = v
	}
	return keys, env
}

// loadCompose reads compose.yaml with the variables of compose.env.example, the
// required ones the example leaves empty (secrets the user must choose) filled with
// test values.
func loadCompose(t *testing.T) (*composeFile, map[string]bool) {
	t.Helper()
	_, env := parseEnvFile(t, read(t, "deploy/compose.env.example"))
	data := read(t, "deploy/compose.yaml")
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*):?\?`).FindAllStringSubmatch(string(data), -1) {
		if env[m[1]] == "" {
			env[m[1]] = "0123456789abcdef" + strings.ToLower(m[1])
		}
	}
	env["COMFYUI_IMAGE"] = "example.com/comfyui:test"
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal(data, &root))
	used := map[string]bool{}
	require.NoError(t, interpolateNode(&root, env, used), "compose.yaml")

	var raw map[string]any
	require.NoError(t, root.Decode(&raw))
	for k := range raw {
		require.True(t, composeTopKeys[k] || strings.HasPrefix(k, "x-"), "compose.yaml: unknown top-level key %q", k)
	}
	services, ok := raw["services"].(map[string]any)
	require.True(t, ok, "compose.yaml: no services")
	for name, s := range services {
		svc, ok := s.(map[string]any)
		require.True(t, ok, "service %s", name)
		for k := range svc {
			require.True(t, composeServiceKeys[k] || strings.HasPrefix(k, "x-"), "service %s: unknown key %q", name, k)
		}
	}
	var cf composeFile
	require.NoError(t, root.Decode(&cf))
	return &cf, used
}

func TestComposeVariables(t *testing.T) {
	t.Parallel()
	keys, env := parseEnvFile(t, read(t, "deploy/compose.env.example"))
	_, used := loadCompose(t)
	// Every variable compose.yaml uses is in the example .env, so a user sees every
	// setting in one place; and the example sets nothing compose.yaml ignores.
	for name := range used {
		_, ok := env[name]
		require.True(t, ok, "compose.yaml uses ${%s}; add it to compose.env.example", name)
	}
	for _, k := range keys {
		require.True(t, used[k], "compose.env.example sets %s, which compose.yaml does not use", k)
		require.False(t, strings.HasPrefix(k, "COMFYQ_"),
			"compose.env.example: %s looks like a comfyq variable, but it only feeds compose.yaml; name it otherwise", k)
	}
	// COMFYUI_IMAGE must be given: Compose stops with this message otherwise.
	_, _, err := interpolate("${COMFYUI_IMAGE:?set COMFYUI_IMAGE to your ComfyUI image}", map[string]string{})
	require.ErrorContains(t, err, "set COMFYUI_IMAGE")
	require.Contains(t, string(read(t, "deploy/compose.yaml")), "${COMFYUI_IMAGE:?")
}

func TestCompose(t *testing.T) {
	t.Parallel()
	cf, _ := loadCompose(t)
	c := loadCLI(t)
	require.Equal(t, "comfyq", cf.Name)
	worker := c.command(t, "worker")

	var names []string
	for n := range cf.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	workers := 0
	for _, name := range names {
		s := cf.Services[name]
		t.Run(name, func(t *testing.T) {
			require.NotEmpty(t, s.Image, "image")
			require.NotContains(t, s.Image, ":latest", "pin image versions")
			require.Contains(t, s.Image, ":", "pin image versions")

			// Depends on services that exist, with conditions they can meet.
			for dep, d := range s.DependsOn {
				target, ok := cf.Services[dep]
				require.True(t, ok, "depends on unknown service %s", dep)
				switch d.Condition {
				case "service_healthy":
					require.True(t, target.Healthcheck != nil && !target.Healthcheck.Disable && len(target.Healthcheck.Test) > 0,
						"waits for %s to be healthy, which has no health check", dep)
				case "service_completed_successfully":
					require.Equal(t, "no", target.Restart, "waits for %s to complete, which is not a one-shot (restart: \"no\")", dep)
				case "service_started", "":
				default:
					t.Fatalf("depends on %s: unknown condition %q", dep, d.Condition)
				}
			}

			// A health check, unless it is a one-shot or a worker (no HTTP client in
			// the image; see compose.yaml).
			oneShot := s.Restart == "no"
			hc := s.Healthcheck
			switch {
			case oneShot:
				require.Nil(t, hc, "a one-shot needs no health check")
			case hc != nil && hc.Disable:
				require.True(t, s.isComfyq() && len(s.Command) > 0 && s.Command[0] == "worker",
					"only comfyq workers go without a health check")
			default:
				require.NotNil(t, hc, "a long-running service needs a health check")
				require.NotEmpty(t, hc.Test)
				require.Contains(t, []string{"CMD", "CMD-SHELL"}, hc.Test[0])
				for _, d := range []string{hc.Interval, hc.Timeout, hc.StartPeriod} {
					if d != "" {
						_, err := time.ParseDuration(d)
						require.NoError(t, err)
					}
				}
			}

			if !s.isComfyq() {
				return
			}
			// The comfyq image has no shell: exec-form commands only, of comfyq itself.
			require.Empty(t, s.Entrypoint, "the image's entrypoint is /comfyq")
			cmd := c.checkArgs(t, name, s.Command)
			cmds := []*cliCommand{cmd}
			if hc != nil && !hc.Disable {
				require.Equal(t, "CMD", hc.Test[0], "no shell in the comfyq image: use CMD")
				require.Equal(t, "/comfyq", hc.Test[1], "only /comfyq exists in the image")
				cmds = append(cmds, c.checkArgs(t, name+" health check", hc.Test[2:]))
			}
			var envNames []string
			for k := range s.Environment {
				envNames = append(envNames, k)
			}
			checkEnv(t, name, envNames, cmds...)
			require.True(t, s.ReadOnly, "read_only: the binary writes nowhere but volumes and /tmp")
			require.Contains(t, s.CapDrop, "ALL")
			checkURLs(t, name, s.Environment)

			if cmd.name == "api" {
				listen := s.Environment["COMFYQ_LISTEN"]
				require.True(t, strings.HasPrefix(listen, "0.0.0.0:") || strings.HasPrefix(listen, ":"),
					"the API must listen on the container's address, not %q", listen)
				_, port, _ := strings.Cut(listen, ":")
				require.True(t, slices.ContainsFunc(s.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) }),
					"the API's port %s is published", port)
				require.Contains(t, hc.Test, "http://127.0.0.1:"+port, "the health check calls this API")
				require.Equal(t, s.Environment["COMFYQ_API_KEYS"], s.Environment["COMFYQ_API_KEY"],
					"the health check's key is one the API accepts")
			}
			if cmd.name != "worker" {
				return
			}
			workers++
			// Stopping drains: Docker's SIGKILL must not come before the grace is over.
			grace := worker.durationDefault(t, "COMFYQ_SHUTDOWN_GRACE")
			if v, ok := s.Environment["COMFYQ_SHUTDOWN_GRACE"]; ok {
				var err error
				grace, err = time.ParseDuration(v)
				require.NoError(t, err)
			}
			stop, err := time.ParseDuration(s.StopGracePeriod)
			require.NoError(t, err, "stop_grace_period")
			require.GreaterOrEqual(t, stop, grace+30*time.Second,
				"stop_grace_period %s must exceed COMFYQ_SHUTDOWN_GRACE %s (plus time to hand jobs back)", stop, grace)
			// Each node is a ComfyUI service this worker depends on, so that Compose
			// stops the worker (and lets it drain) before the ComfyUI it uses.
			nodes := strings.Split(s.Environment["COMFYQ_COMFY_URLS"], ",")
			require.NotEmpty(t, nodes[0], "COMFYQ_COMFY_URLS")
			for _, n := range nodes {
				_, raw, _ := strings.Cut(n, "=")
				u, err := url.Parse(raw)
				require.NoError(t, err)
				node, ok := cf.Services[u.Hostname()]
				require.True(t, ok, "node %s is not a service of compose.yaml", raw)
				_, dep := s.DependsOn[u.Hostname()]
				require.True(t, dep, "the worker must depend on %s so that it stops first", u.Hostname())
				gpus := node.Deploy.Resources.Reservations.Devices
				require.Len(t, gpus, 1, "%s reserves a GPU", u.Hostname())
				require.Contains(t, gpus[0].Capabilities, "gpu")
				require.Len(t, gpus[0].DeviceIDs, 1, "%s: one GPU per ComfyUI", u.Hostname())
				require.Equal(t, "8188", u.Port())
			}
		})
	}
	require.GreaterOrEqual(t, workers, 2, "two example workers")

	// Redis keeps what it is told: append-only, fsync every second, and never evicts
	// (asynq's queues are keys like any other).
	redis := strings.Join(cf.Services["redis"].Command, " ")
	for _, opt := range []string{"--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"} {
		require.Contains(t, redis, opt)
	}
	require.True(t, slices.ContainsFunc(cf.Services["redis"].Volumes, func(v string) bool { return strings.HasSuffix(v, ":/data") }),
		"Redis's data is a volume")
	// Named volumes are declared.
	for name, s := range cf.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.ContainsAny(src, "./") {
				continue // a bind mount
			}
			_, ok := cf.Volumes[src]
			require.True(t, ok, "service %s uses volume %s, which is not declared", name, src)
		}
	}
	// GPU ids are distinct.
	seen := map[string]string{}
	for name, s := range cf.Services {
		for _, d := range s.Deploy.Resources.Reservations.Devices {
			for _, id := range d.DeviceIDs {
				require.Empty(t, seen[id], "GPU %s given to %s and %s", id, seen[id], name)
				seen[id] = name
			}
		}
	}
}
