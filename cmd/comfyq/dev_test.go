package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
)

var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "comfyq-dev-test")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "comfyq")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", &buildErr{string(out), err}
	}
	return bin, nil
})

type buildErr struct {
	out string
	err error
}

func (e *buildErr) Error() string { return e.err.Error() + ": " + e.out }

// startDev runs `comfyq dev` as a subprocess and returns the API's base URL once it
// prints that it is ready.
func startDev(t *testing.T, env []string, args ...string) string {
	t.Helper()
	base, _ := startDevAt(t, freeAddr(t), env, args...)
	return base
}

// startDevAt starts `comfyq dev --listen addr` and returns the API's base URL and the
// banner it printed.
func startDevAt(t *testing.T, addr string, env []string, args ...string) (string, []string) {
	t.Helper()
	bin, err := buildOnce()
	require.NoError(t, err)
	cmd := exec.Command(bin, append([]string{"dev", "--listen", addr, "--log-level", "warn", "--sim-step-delay", "5ms"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	t.Cleanup(func() {
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("interrupt comfyq dev: %v", err)
		}
		select {
		case err := <-exited:
			require.NoError(t, err, "comfyq dev exits cleanly on Ctrl-C; stderr:\n%s", stderr.String())
		case <-time.After(20 * time.Second):
			if err := cmd.Process.Kill(); err != nil {
				t.Logf("kill comfyq dev: %v", err)
			}
			t.Error("comfyq dev did not stop within 20s of SIGINT")
		}
	})
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	base := ""
	var banner []string
	timeout := time.After(60 * time.Second)
	for done := false; !done; {
		select {
		case line, ok := <-lines:
			require.True(t, ok, "comfyq dev ended before it was ready; stderr:\n%s", stderr.String())
			banner = append(banner, line)
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "API" {
				base = f[1]
			}
			done = strings.HasPrefix(line, "Ctrl-C")
		case <-timeout:
			t.Fatalf("comfyq dev not ready within 60s; stderr:\n%s", stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	require.NotEmpty(t, base, "banner:\n%s", strings.Join(banner, "\n"))
	return base, banner
}

func postJSON(t *testing.T, url string, body any) (int, map[string]any) {
	t.Helper()
	data, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post(url, "application/json", bytes.NewReader(data))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func pollJob(t *testing.T, statusURL string) *job.Job {
	t.Helper()
	var j job.Job
	require.Eventually(t, func() bool {
		resp, err := http.Get(statusURL)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&j) == nil && j.Status.Terminal()
	}, 60*time.Second, 50*time.Millisecond)
	return &j
}

func fetch(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return data
}

// TestDevDrivenOverHTTP starts `comfyq dev` as a user would and drives every example
// template over HTTP.
func TestDevDrivenOverHTTP(t *testing.T) {
	t.Parallel()
	base := startDev(t, nil)

	code, acc := postJSON(t, base+"/v1/templates/txt2img/jobs", map[string]any{"params": map[string]any{"prompt": "a red fox", "seed": 7}})
	require.Equal(t, http.StatusAccepted, code, "%v", acc)
	j := pollJob(t, acc["status_url"].(string))
	require.Equal(t, job.StatusSucceeded, j.Status, "%+v", j.Error)
	require.Equal(t, "txt2img", j.Template)
	img, err := png.Decode(bytes.NewReader(fetch(t, j.Outputs[0].URL)))
	require.NoError(t, err)
	require.Equal(t, 512, img.Bounds().Dx())

	// img2img with the first output as its input image.
	code, acc = postJSON(t, base+"/v1/templates/img2img/jobs", map[string]any{
		"params": map[string]any{"width": 128, "height": 96},
		"images": map[string]any{"image": map[string]any{"base64": base64.StdEncoding.EncodeToString(fetch(t, j.Outputs[0].URL))}},
	})
	require.Equal(t, http.StatusAccepted, code, "%v", acc)
	j = pollJob(t, acc["status_url"].(string))
	require.Equal(t, job.StatusSucceeded, j.Status, "%+v", j.Error)
	img, err = png.Decode(bytes.NewReader(fetch(t, j.Outputs[0].URL)))
	require.NoError(t, err)
	require.Equal(t, 128, img.Bounds().Dx())

	code, acc = postJSON(t, base+"/v1/templates/video/jobs", map[string]any{"params": map[string]any{"frames": 12}})
	require.Equal(t, http.StatusAccepted, code, "%v", acc)
	j = pollJob(t, acc["status_url"].(string))
	require.Equal(t, job.StatusSucceeded, j.Status, "%+v", j.Error)
	require.Equal(t, job.KindVideo, j.Outputs[0].Kind)
	require.Equal(t, j.Outputs[0].Size, int64(len(fetch(t, j.Outputs[0].URL))))

	code, out := postJSON(t, base+"/v1/templates/txt2img/jobs", map[string]any{"params": map[string]any{"steps": "many", "nope": 1}})
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "invalid_params", out["error"].(map[string]any)["code"])
}

// TestDevWithoutRedisServer falls back to the embedded Redis when redis-server is not
// on PATH.
func TestDevWithoutRedisServer(t *testing.T) {
	t.Parallel()
	base := startDev(t, []string{"PATH=" + t.TempDir()}, "--sim-nodes", "1")
	code, acc := postJSON(t, base+"/v1/templates/txt2img/jobs", map[string]any{"params": map[string]any{"prompt": "a cat"}})
	require.Equal(t, http.StatusAccepted, code, "%v", acc)
	j := pollJob(t, acc["status_url"].(string))
	require.Equal(t, job.StatusSucceeded, j.Status, "%+v", j.Error)
}

// TestDevOnEveryInterface: `comfyq dev --listen 0.0.0.0:PORT` can be reached from
// other machines, so it says so, generates an API key and prints it, requires it, and
// refuses private URLs; on loopback it needs no key.
func TestDevOnEveryInterface(t *testing.T) {
	t.Parallel()
	base, banner := startDevAt(t, net.JoinHostPort("0.0.0.0", itoa(testenv.FreePort(t))), nil)
	text := strings.Join(banner, "\n")
	require.Contains(t, text, "listening on every network interface of this machine: other machines can connect")
	require.NotContains(t, text, "loopback only")
	require.Contains(t, text, "private addresses refused")
	m := regexp.MustCompile(`API key (cqdev_[0-9a-f]{48}) \(generated`).FindStringSubmatch(text)
	require.NotNil(t, m, "the generated key is printed:\n%s", text)
	key := m[1]
	require.Contains(t, text, "--api-key "+key, "the example commands carry the key")

	resp, err := http.Get(base + "/v1/templates")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a key is required")
	req, err := http.NewRequest("GET", base+"/v1/templates", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the printed key works")

	// On loopback: no key, and the banner says loopback.
	_, banner = startDevAt(t, freeAddr(t), nil)
	text = strings.Join(banner, "\n")
	require.Contains(t, text, "listening on loopback 127.0.0.1 only")
	require.Contains(t, text, "auth         none")
}
