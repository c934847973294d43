package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The Kubernetes manifests are rendered with `kubectl kustomize` (offline; kubectl's
// other offline modes, such as apply --dry-run=client, still need an API server) and
// every object is checked: names and namespaces, references between objects
// (selectors, Secrets, ConfigMaps, ports, the KEDA target), resources, probes and
// security contexts, the comfyq commands and variables, and the drain timing.

// k8sObject is a rendered object, decoded loosely (for references) and into the
// fields the checks read.
type k8sObject struct {
	raw      map[string]any
	APIVer   string `yaml:"apiVersion"`
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       k8sSpec           `yaml:"spec"`
}

func (o *k8sObject) id() string { return o.Kind + "/" + o.Metadata.Name }

type k8sSpec struct {
	// Deployment, StatefulSet
	Replicas *int `yaml:"replicas"`
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec k8sPodSpec `yaml:"spec"`
	} `yaml:"template"`
	// Service (selector is a plain map there: read from raw)
	Ports []k8sServicePort `yaml:"ports"`
	// PodDisruptionBudget
	MinAvailable   any `yaml:"minAvailable"`
	MaxUnavailable any `yaml:"maxUnavailable"`
	// NetworkPolicy
	PodSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"podSelector"`
	Ingress []struct {
		Ports []struct {
			Port any `yaml:"port"`
		} `yaml:"ports"`
	} `yaml:"ingress"`
	// ScaledObject
	ScaleTargetRef struct {
		Kind string `yaml:"kind"`
		Name string `yaml:"name"`
	} `yaml:"scaleTargetRef"`
	MinReplicaCount *int `yaml:"minReplicaCount"`
	MaxReplicaCount *int `yaml:"maxReplicaCount"`
	Triggers        []struct {
		Type              string            `yaml:"type"`
		Name              string            `yaml:"name"`
		Metadata          map[string]string `yaml:"metadata"`
		AuthenticationRef struct {
			Name string `yaml:"name"`
		} `yaml:"authenticationRef"`
	} `yaml:"triggers"`
	// TriggerAuthentication
	SecretTargetRef []struct {
		Parameter string `yaml:"parameter"`
		Name      string `yaml:"name"`
		Key       string `yaml:"key"`
	} `yaml:"secretTargetRef"`
	// Ingress
	Rules []struct {
		HTTP struct {
			Paths []struct {
				Backend struct {
					Service struct {
						Name string `yaml:"name"`
						Port struct {
							Name   string `yaml:"name"`
							Number int    `yaml:"number"`
						} `yaml:"port"`
					} `yaml:"service"`
				} `yaml:"backend"`
			} `yaml:"paths"`
		} `yaml:"http"`
	} `yaml:"rules"`
}

type k8sServicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort any    `yaml:"targetPort"`
}

type k8sPodSpec struct {
	TerminationGracePeriodSeconds *int  `yaml:"terminationGracePeriodSeconds"`
	AutomountServiceAccountToken  *bool `yaml:"automountServiceAccountToken"`
	SecurityContext               struct {
		RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
		RunAsUser      *int  `yaml:"runAsUser"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	InitContainers []k8sContainer `yaml:"initContainers"`
	Containers     []k8sContainer `yaml:"containers"`
	Volumes        []struct {
		Name string `yaml:"name"`
	} `yaml:"volumes"`
}

type k8sContainer struct {
	Name          string   `yaml:"name"`
	Image         string   `yaml:"image"`
	Command       []string `yaml:"command"`
	Args          []string `yaml:"args"`
	RestartPolicy string   `yaml:"restartPolicy"`
	Ports         []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef    *k8sKeyRef `yaml:"secretKeyRef"`
			ConfigMapKeyRef *k8sKeyRef `yaml:"configMapKeyRef"`
			FieldRef        *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		RunAsUser                *int  `yaml:"runAsUser"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sKeyRef struct {
	Name     string `yaml:"name"`
	Key      string `yaml:"key"`
	Optional bool   `yaml:"optional"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
	TCPSocket *struct {
		Port any `yaml:"port"`
	} `yaml:"tcpSocket"`
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

// containerKeys are the fields of a Kubernetes Container (core/v1), to catch a
// misspelt one that the API server would refuse.
var containerKeys = setOf("name", "image", "command", "args", "workingDir", "ports", "envFrom", "env",
	"resources", "resizePolicy", "restartPolicy", "restartPolicyRules", "volumeMounts", "volumeDevices",
	"livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "terminationMessagePath",
	"terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty")

// podSpecKeys are the fields of a PodSpec this repository may use.
var podSpecKeys = setOf("volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy",
	"terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "nodeSelector",
	"serviceAccountName", "automountServiceAccountToken", "nodeName", "hostNetwork", "hostPID", "hostIPC",
	"shareProcessNamespace", "securityContext", "imagePullSecrets", "hostname", "subdomain", "affinity",
	"schedulerName", "tolerations", "hostAliases", "priorityClassName", "priority", "dnsConfig",
	"readinessGates", "runtimeClassName", "enableServiceLinks", "preemptionPolicy", "overhead",
	"topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers", "schedulingGates",
	"resourceClaims", "resources")

// renderKustomize runs kubectl kustomize on a directory of deploy/k8s.
func renderKustomize(t *testing.T, dir string) []*k8sObject {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not on PATH, so the kustomize overlays of deploy/k8s are not rendered or checked; " +
			"install kubectl (the client alone; `kubectl kustomize` works offline) to run this test")
	}
	cmd := exec.Command(kubectl, "kustomize", filepath.Join(repoRoot(t), "deploy", "k8s", filepath.FromSlash(dir)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "kubectl kustomize %s: %s", dir, stderr.String())

	var objs []*k8sObject
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		o := &k8sObject{}
		require.NoError(t, n.Decode(&o.raw))
		require.NoError(t, n.Decode(o), "decoding %v", o.raw["kind"])
		objs = append(objs, o)
	}
	require.NotEmpty(t, objs, "%s renders nothing", dir)
	return objs
}

// overlayExpectations says what each overlay must look like.
type overlayExpectations struct {
	namespace string
	// externalSecrets are Secrets the overlay expects to exist in the cluster; their
	// keys are those of base/secret.example.yaml.
	externalSecrets []string
	keda            bool
	gpu             bool // real GPUs (else simulated nodes)
}

func TestKustomizeOverlays(t *testing.T) {
	t.Parallel()
	overlays := map[string]overlayExpectations{
		"overlays/dev":        {namespace: "comfyq-dev"},
		"overlays/production": {namespace: "comfyq", externalSecrets: []string{"comfyq"}, keda: true, gpu: true},
	}
	for dir, want := range overlays {
		t.Run(path.Base(dir), func(t *testing.T) {
			t.Parallel()
			checkOverlay(t, renderKustomize(t, dir), want)
		})
	}
	t.Run("base", func(t *testing.T) {
		t.Parallel()
		// The base renders alone too (it is what an overlay of your own starts from).
		objs := renderKustomize(t, "base")
		for _, o := range objs {
			require.NotEqual(t, "Secret", o.Kind, "the base carries no Secret: overlays or the cluster provide it")
		}
	})
}

func checkOverlay(t *testing.T, objs []*k8sObject, want overlayExpectations) {
	c := loadCLI(t)
	byID := map[string]*k8sObject{}
	for _, o := range objs {
		require.NotEmpty(t, o.APIVer, "an object without apiVersion: %v", o.raw)
		require.NotEmpty(t, o.Kind, "an object without kind: %v", o.raw)
		require.NotEmpty(t, o.Metadata.Name, "%s without a name", o.Kind)
		require.Regexp(t, `^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`, o.Metadata.Name)
		_, dup := byID[o.id()]
		require.False(t, dup, "%s twice", o.id())
		byID[o.id()] = o
		if o.Kind == "Namespace" {
			require.Equal(t, want.namespace, o.Metadata.Name)
		} else {
			require.Equal(t, want.namespace, o.Metadata.Namespace, "%s's namespace", o.id())
		}
	}
	require.Contains(t, byID, "Namespace/"+want.namespace)

	// Secrets and ConfigMaps by name → keys.
	secrets := map[string]map[string]bool{}
	configMaps := map[string]map[string]string{}
	for _, o := range objs {
		switch o.Kind {
		case "Secret":
			secrets[o.Metadata.Name] = map[string]bool{}
			for k := range o.raw["data"].(map[string]any) {
				secrets[o.Metadata.Name][k] = true
			}
			for k := range o.StringData {
				secrets[o.Metadata.Name][k] = true
			}
		case "ConfigMap":
			configMaps[o.Metadata.Name] = o.Data
		}
	}
	example := exampleSecretKeys(t)
	for _, name := range want.externalSecrets {
		require.NotContains(t, secrets, name, "Secret %s is expected to exist in the cluster, not in the overlay", name)
		secrets[name] = example
	}
	// A generated Secret has every key the example documents, so nothing optional
	// goes missing unnoticed.
	if s, ok := secrets["comfyq"]; ok {
		for k := range example {
			require.True(t, s[k], "Secret comfyq lacks %s (see base/secret.example.yaml)", k)
		}
	}

	workloads := map[string]*k8sObject{}
	for _, o := range objs {
		if o.Kind == "Deployment" || o.Kind == "StatefulSet" {
			workloads[o.Metadata.Name] = o
			checkWorkload(t, c, o, secrets, configMaps)
		}
	}
	require.Contains(t, workloads, "comfyq-api")
	require.Contains(t, workloads, "comfyq-gpu")
	gpuDeploy := workloads["comfyq-gpu"]
	gpuPod := gpuDeploy.Spec.Template.Spec
	comfyui := findContainer(gpuPod.InitContainers, "comfyui")
	require.NotNil(t, comfyui, "the GPU pod runs ComfyUI as a native sidecar (an init container)")
	if want.gpu {
		require.Equal(t, "1", comfyui.Resources.Limits["nvidia.com/gpu"], "one GPU per pod")
		require.NotEqual(t, "comfyui", comfyui.Image, "set the ComfyUI image in the overlay")
	} else {
		require.NotContains(t, comfyui.Resources.Limits, "nvidia.com/gpu")
		cmd := c.checkArgs(t, "comfyui sidecar", comfyui.Args)
		require.Equal(t, "sim", cmd.name)
		require.Contains(t, comfyui.Args, "0.0.0.0:8188", "the simulator listens where the probes reach it")
	}

	// Selectors and references between objects.
	matchesPods := func(sel map[string]string) []*k8sObject {
		var out []*k8sObject
		for _, w := range workloads {
			if len(sel) > 0 && labelsMatch(sel, w.Spec.Template.Metadata.Labels) {
				out = append(out, w)
			}
		}
		return out
	}
	for _, o := range objs {
		switch o.Kind {
		case "Service":
			sel, _ := o.raw["spec"].(map[string]any)["selector"].(map[string]any)
			selector := map[string]string{}
			for k, v := range sel {
				selector[k] = fmt.Sprint(v)
			}
			pods := matchesPods(selector)
			require.Len(t, pods, 1, "%s selects one workload's pods", o.id())
			for _, p := range o.Spec.Ports {
				require.True(t, podHasPort(pods[0].Spec.Template.Spec, p.TargetPort), "%s: no container port %v", o.id(), p.TargetPort)
			}
		case "PodDisruptionBudget":
			require.Len(t, matchesPods(o.Spec.Selector.MatchLabels), 1,
				"%s selects one workload's pods", o.id())
			require.True(t, (o.Spec.MinAvailable == nil) != (o.Spec.MaxUnavailable == nil), "%s: one of minAvailable or maxUnavailable", o.id())
		case "NetworkPolicy":
			pods := matchesPods(o.Spec.PodSelector.MatchLabels)
			require.Len(t, pods, 1, "%s selects one workload's pods", o.id())
			for _, in := range o.Spec.Ingress {
				for _, p := range in.Ports {
					require.True(t, podHasPort(pods[0].Spec.Template.Spec, p.Port), "%s opens port %v, which no container has", o.id(), p.Port)
				}
			}
		case "Ingress":
			for _, r := range o.Spec.Rules {
				for _, p := range r.HTTP.Paths {
					svc, ok := byID["Service/"+p.Backend.Service.Name]
					require.True(t, ok, "%s: no Service %s", o.id(), p.Backend.Service.Name)
					require.True(t, slices.ContainsFunc(svc.Spec.Ports, func(sp k8sServicePort) bool {
						return sp.Name == p.Backend.Service.Port.Name || sp.Port == p.Backend.Service.Port.Number
					}), "%s: Service %s has no such port", o.id(), svc.Metadata.Name)
				}
			}
		}
	}
	for _, name := range []string{"comfyq-api", "comfyq-gpu"} {
		require.Contains(t, byID, "PodDisruptionBudget/"+name)
		require.Contains(t, byID, "NetworkPolicy/"+name)
	}

	// Autoscaling.
	so, hasKEDA := byID["ScaledObject/comfyq-gpu"]
	require.Equal(t, want.keda, hasKEDA, "KEDA ScaledObject")
	if !hasKEDA {
		require.NotNil(t, gpuDeploy.Spec.Replicas, "without KEDA the overlay sets the GPU pods' replicas")
		return
	}
	require.Nil(t, gpuDeploy.Spec.Replicas, "KEDA owns the replicas: the Deployment must not set them (an apply would reset the scale)")
	require.Equal(t, "comfyq-gpu", so.Spec.ScaleTargetRef.Name)
	require.Contains(t, []string{"", "Deployment"}, so.Spec.ScaleTargetRef.Kind)
	require.NotNil(t, so.Spec.MinReplicaCount)
	require.NotNil(t, so.Spec.MaxReplicaCount)
	require.GreaterOrEqual(t, *so.Spec.MaxReplicaCount, *so.Spec.MinReplicaCount)
	// One pending and one active trigger per queue the workers take, the active one
	// aiming at the jobs one pod holds (--depth).
	wenv := effectiveEnv(findContainer(gpuPod.Containers, "worker"), configMaps)
	worker := c.command(t, "worker")
	queues := wenv["COMFYQ_QUEUES"]
	if queues == "" {
		queues = worker.stringDefault(t, "COMFYQ_QUEUES")
	}
	depth := wenv["COMFYQ_DEPTH"]
	if depth == "" {
		depth = worker.stringDefault(t, "COMFYQ_DEPTH")
	}
	lists := map[string]string{}
	listRE := regexp.MustCompile(`^asynq:\{([^}]+)\}:(pending|active)$`)
	for _, tr := range so.Spec.Triggers {
		require.Equal(t, "redis", tr.Type)
		m := listRE.FindStringSubmatch(tr.Metadata["listName"])
		require.NotNil(t, m, "trigger %s: listName %q is not an asynq pending or active list", tr.Name, tr.Metadata["listName"])
		n, err := strconv.Atoi(tr.Metadata["listLength"])
		require.NoError(t, err, "trigger %s: listLength", tr.Name)
		require.Positive(t, n)
		lists[m[1]+":"+m[2]] = tr.Metadata["listLength"]
		auth, ok := byID["TriggerAuthentication/"+tr.AuthenticationRef.Name]
		require.True(t, ok, "trigger %s: no TriggerAuthentication %s", tr.Name, tr.AuthenticationRef.Name)
		var params []string
		for _, ref := range auth.Spec.SecretTargetRef {
			require.True(t, secrets[ref.Name][ref.Key], "%s: Secret %s has no key %s", auth.id(), ref.Name, ref.Key)
			params = append(params, ref.Parameter)
		}
		require.Contains(t, params, "address")
	}
	for _, q := range strings.Split(queues, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(q), "=")
		require.Contains(t, lists, name+":pending", "no trigger on queue %s's pending list", name)
		require.Equal(t, depth, lists[name+":active"], "queue %s's active trigger aims at COMFYQ_DEPTH jobs per pod", name)
	}
	require.Len(t, lists, 2*len(strings.Split(queues, ",")), "triggers on queues the workers do not take")
}

// exampleSecretKeys returns the keys of base/secret.example.yaml.
func exampleSecretKeys(t *testing.T) map[string]bool {
	t.Helper()
	var s struct {
		Kind       string            `yaml:"kind"`
		StringData map[string]string `yaml:"stringData"`
	}
	require.NoError(t, yaml.Unmarshal(read(t, "deploy/k8s/base/secret.example.yaml"), &s))
	require.Equal(t, "Secret", s.Kind)
	keys := map[string]bool{}
	for k, v := range s.StringData {
		keys[k] = true
		require.True(t, placeholder(v) || strings.Contains(v, ".example."),
			"secret.example.yaml: %s must be a CHANGE-ME placeholder (or an example.* address), never a real secret", k)
	}
	return keys
}

func findContainer(cs []k8sContainer, name string) *k8sContainer {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

func labelsMatch(sel any, labels map[string]string) bool {
	m := map[string]string{}
	switch s := sel.(type) {
	case map[string]string:
		m = s
	case map[string]any:
		for k, v := range s {
			m[k] = fmt.Sprint(v)
		}
	}
	if len(m) == 0 {
		return false
	}
	for k, v := range m {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// podHasPort says whether a container of the pod has the port, by name or number.
func podHasPort(p k8sPodSpec, port any) bool {
	for _, c := range slices.Concat(p.InitContainers, p.Containers) {
		for _, cp := range c.Ports {
			if fmt.Sprint(port) == cp.Name || fmt.Sprint(port) == strconv.Itoa(cp.ContainerPort) {
				return true
			}
		}
	}
	return false
}

// effectiveEnv is a container's environment from its ConfigMaps and plain values
// (secrets and field references are left out).
func effectiveEnv(c *k8sContainer, configMaps map[string]map[string]string) map[string]string {
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			for k, v := range configMaps[ef.ConfigMapRef.Name] {
				env[k] = v
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	return env
}

func checkWorkload(t *testing.T, c *cli, w *k8sObject, secrets map[string]map[string]bool, configMaps map[string]map[string]string) {
	t.Run(w.id(), func(t *testing.T) {
		require.NotEmpty(t, w.Spec.Selector.MatchLabels)
		require.True(t, labelsMatch(w.Spec.Selector.MatchLabels, w.Spec.Template.Metadata.Labels), "selector matches the pod template")
		pod := w.Spec.Template.Spec
		rawPod := w.raw["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
		for k := range rawPod {
			require.True(t, podSpecKeys[k], "unknown pod spec field %q", k)
		}
		for _, list := range []string{"initContainers", "containers"} {
			cs, _ := rawPod[list].([]any)
			for _, rc := range cs {
				for k := range rc.(map[string]any) {
					require.True(t, containerKeys[k], "%s: unknown container field %q", list, k)
				}
			}
		}
		require.Equal(t, "RuntimeDefault", pod.SecurityContext.SeccompProfile.Type, "pod seccomp profile")
		require.NotNil(t, pod.AutomountServiceAccountToken)
		require.False(t, *pod.AutomountServiceAccountToken, "no pod here talks to the Kubernetes API")
		volumes := map[string]bool{}
		for _, v := range pod.Volumes {
			volumes[v.Name] = true
		}
		if vcts, ok := w.raw["spec"].(map[string]any)["volumeClaimTemplates"].([]any); ok {
			for _, v := range vcts {
				volumes[v.(map[string]any)["metadata"].(map[string]any)["name"].(string)] = true
			}
		}
		for _, ic := range pod.InitContainers {
			require.Equal(t, "Always", ic.RestartPolicy, "init container %s: only native sidecars here", ic.Name)
		}
		for _, ct := range slices.Concat(pod.InitContainers, pod.Containers) {
			checkContainer(t, c, pod, ct, volumes, secrets, configMaps)
		}
		if w.Metadata.Name == "comfyq-gpu" {
			checkGPUPod(t, c, pod, configMaps)
		}
	})
}

func checkContainer(t *testing.T, c *cli, pod k8sPodSpec, ct k8sContainer, volumes map[string]bool, secrets map[string]map[string]bool, configMaps map[string]map[string]string) {
	where := "container " + ct.Name
	require.Regexp(t, `^[^:@]+(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$`, ct.Image, where)
	require.True(t, strings.Contains(ct.Image, ":") && !strings.HasSuffix(ct.Image, ":latest"), "%s: pin the image tag, not %q", where, ct.Image)

	// Resources: requests for the scheduler, a memory limit against leaks.
	require.NotEmpty(t, ct.Resources.Requests["cpu"], "%s: cpu request", where)
	require.NotEmpty(t, ct.Resources.Requests["memory"], "%s: memory request", where)
	require.NotEmpty(t, ct.Resources.Limits["memory"], "%s: memory limit", where)
	for k, v := range ct.Resources.Limits {
		if strings.Contains(k, "/") { // extended resources (GPUs): requests equal limits
			require.Equal(t, v, ct.Resources.Requests[k], "%s: %s request equals its limit", where, k)
		}
	}

	// Security.
	sc := ct.SecurityContext
	require.NotNil(t, sc.AllowPrivilegeEscalation, where)
	require.False(t, *sc.AllowPrivilegeEscalation, "%s: allowPrivilegeEscalation", where)
	require.Contains(t, sc.Capabilities.Drop, "ALL", "%s: drop all capabilities", where)

	// Probes: whatever serves a port says when it is ready and alive.
	if len(ct.Ports) > 0 {
		require.NotNil(t, ct.ReadinessProbe, "%s: readinessProbe", where)
		require.NotNil(t, ct.LivenessProbe, "%s: livenessProbe", where)
	}
	for _, p := range []*k8sProbe{ct.ReadinessProbe, ct.LivenessProbe, ct.StartupProbe} {
		if p == nil {
			continue
		}
		switch {
		case p.HTTPGet != nil:
			require.True(t, podHasPort(k8sPodSpec{Containers: []k8sContainer{ct}}, p.HTTPGet.Port), "%s: probe port %v", where, p.HTTPGet.Port)
			require.True(t, strings.HasPrefix(p.HTTPGet.Path, "/"), where)
		case p.TCPSocket != nil:
			require.True(t, podHasPort(k8sPodSpec{Containers: []k8sContainer{ct}}, p.TCPSocket.Port), "%s: probe port %v", where, p.TCPSocket.Port)
		case p.Exec != nil:
			require.NotEmpty(t, p.Exec.Command)
		default:
			t.Fatalf("%s: a probe without a handler", where)
		}
	}
	for _, m := range ct.VolumeMounts {
		require.True(t, volumes[m.Name], "%s mounts unknown volume %s", where, m.Name)
	}

	// References to Secrets and ConfigMaps.
	defined := map[string]bool{}
	for _, ef := range ct.EnvFrom {
		require.Nil(t, ef.SecretRef, "%s: import secret keys one by one (env), not a whole Secret", where)
		require.NotNil(t, ef.ConfigMapRef)
		data, ok := configMaps[ef.ConfigMapRef.Name]
		require.True(t, ok, "%s: no ConfigMap %s", where, ef.ConfigMapRef.Name)
		for k := range data {
			defined[k] = true
		}
	}
	var envNames []string
	for _, e := range ct.Env {
		envNames = append(envNames, e.Name)
		if vf := e.ValueFrom; vf != nil {
			if r := vf.SecretKeyRef; r != nil {
				keys, ok := secrets[r.Name]
				require.True(t, ok || r.Optional, "%s: %s from unknown Secret %s", where, e.Name, r.Name)
				require.True(t, keys[r.Key] || r.Optional, "%s: %s: Secret %s has no key %s", where, e.Name, r.Name, r.Key)
			}
			if r := vf.ConfigMapKeyRef; r != nil {
				_, ok := configMaps[r.Name][r.Key]
				require.True(t, ok || r.Optional, "%s: %s: ConfigMap %s has no key %s", where, e.Name, r.Name, r.Key)
			}
		}
		// $(VAR) expands only variables defined before it.
		for _, m := range regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).FindAllStringSubmatch(e.Value, -1) {
			require.True(t, defined[m[1]], "%s: %s uses $(%s), which is not defined before it", where, e.Name, m[1])
		}
		defined[e.Name] = true
	}

	if !isComfyqImage(ct.Image) {
		return
	}
	// comfyq containers: the image's entrypoint is the binary; args are a command.
	require.Empty(t, ct.Command, "%s: keep the image's entrypoint (/comfyq)", where)
	cmd := c.checkArgs(t, where, ct.Args)
	for _, ef := range ct.EnvFrom {
		var keys []string
		for k := range configMaps[ef.ConfigMapRef.Name] {
			keys = append(keys, k)
		}
		checkEnv(t, where+" (ConfigMap "+ef.ConfigMapRef.Name+")", keys, cmd)
	}
	checkEnv(t, where, envNames, cmd)
	checkURLs(t, where, effectiveEnv(&ct, configMaps))
	nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot)
	require.True(t, nonRoot, "%s: runAsNonRoot", where)
	require.NotNil(t, sc.ReadOnlyRootFilesystem, where)
	require.True(t, *sc.ReadOnlyRootFilesystem, "%s: readOnlyRootFilesystem (the binary writes only to volumes)", where)

	env := effectiveEnv(&ct, configMaps)
	switch cmd.name {
	case "api":
		listen := env["COMFYQ_LISTEN"]
		host, port, err := splitListen(listen)
		require.NoError(t, err, "%s: COMFYQ_LISTEN %q", where, listen)
		require.Contains(t, []string{"", "0.0.0.0", "::"}, host, "%s: the API must listen on the pod's address for the Service and probes", where)
		require.True(t, podHasPort(k8sPodSpec{Containers: []k8sContainer{ct}}, port), "%s: port %s is declared", where, port)
		require.Equal(t, "/readyz", ct.ReadinessProbe.HTTPGet.Path)
		require.Equal(t, "/healthz", ct.LivenessProbe.HTTPGet.Path)
	case "worker":
		if listen, ok := env["COMFYQ_METRICS_LISTEN"]; ok {
			host, port, err := splitListen(listen)
			require.NoError(t, err, "%s: COMFYQ_METRICS_LISTEN %q", where, listen)
			require.Contains(t, []string{"", "0.0.0.0", "::"}, host, where)
			require.True(t, podHasPort(k8sPodSpec{Containers: []k8sContainer{ct}}, port), "%s: metrics port %s is declared", where, port)
			require.Equal(t, "/healthz", ct.LivenessProbe.HTTPGet.Path)
		}
	case "sim":
	}
}

func splitListen(s string) (host, port string, err error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", fmt.Errorf("no port in %q", s)
	}
	host, port = s[:i], s[i+1:]
	if _, err := strconv.Atoi(port); err != nil {
		return "", "", fmt.Errorf("port of %q: %w", s, err)
	}
	return host, port, nil
}

// isComfyqImage says whether an image reference is comfyq's (a repository named
// comfyq, wherever it is pushed).
func isComfyqImage(image string) bool {
	repo, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	return path.Base(repo) == "comfyq"
}

// checkGPUPod checks the pairing of a worker with its ComfyUI and the drain timing.
func checkGPUPod(t *testing.T, c *cli, pod k8sPodSpec, configMaps map[string]map[string]string) {
	worker := findContainer(pod.Containers, "worker")
	require.NotNil(t, worker, "the GPU pod's main container is the worker")
	require.Len(t, pod.Containers, 1, "the worker is the only main container: everything else must outlive it")
	env := effectiveEnv(worker, configMaps)
	// Its node is a sidecar of this pod, on loopback: the sidecar starts before the
	// worker and stops after it, so ComfyUI outlives the drain.
	nodes := strings.Split(env["COMFYQ_COMFY_URLS"], ",")
	require.Len(t, nodes, 1, "one pod is one ComfyUI node")
	_, raw, ok := strings.Cut(nodes[0], "=")
	require.True(t, ok, "COMFYQ_COMFY_URLS names the node: NAME=URL")
	u, err := url.Parse(raw)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", u.Hostname(), "the worker reaches its ComfyUI over the pod's loopback")
	var sidecar *k8sContainer
	for i, ic := range pod.InitContainers {
		for _, p := range ic.Ports {
			if strconv.Itoa(p.ContainerPort) == u.Port() {
				sidecar = &pod.InitContainers[i]
			}
		}
	}
	require.NotNil(t, sidecar, "port %s is a native sidecar's (an init container with restartPolicy: Always)", u.Port())
	require.Equal(t, "Always", sidecar.RestartPolicy)
	require.NotNil(t, sidecar.StartupProbe, "the worker starts once ComfyUI's startupProbe passes")

	grace := c.command(t, "worker").durationDefault(t, "COMFYQ_SHUTDOWN_GRACE")
	if v, ok := env["COMFYQ_SHUTDOWN_GRACE"]; ok {
		grace, err = time.ParseDuration(v)
		require.NoError(t, err, "COMFYQ_SHUTDOWN_GRACE")
	}
	require.NotNil(t, pod.TerminationGracePeriodSeconds)
	total := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	require.GreaterOrEqual(t, total, grace+30*time.Second,
		"terminationGracePeriodSeconds (%s) covers the worker's drain (COMFYQ_SHUTDOWN_GRACE %s) and ComfyUI's exit after it", total, grace)
}
