package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
	bin, err := buildOnce()
	require.NoError(t, err)
	cmd := exec.Command(bin, append([]string{"dev", "--listen", freeAddr(t), "--log-level", "warn", "--sim-step-delay", "5ms"}, args...)...)
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
	timeout := time.After(60 * time.Second)
	for base == "" {
		select {
		case line, ok := <-lines:
			require.True(t, ok, "comfyq dev ended before it was ready; stderr:\n%s", stderr.String())
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "API" {
				base = f[1]
			}
		case <-timeout:
			t.Fatalf("comfyq dev not ready within 60s; stderr:\n%s", stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	return base
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
