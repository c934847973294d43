package comfysim

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Version is the ComfyUI version a simulator with the default options
// reports; Server.Version gives the one a server speaks.
const Version = Version0364

func (s *Server) handleObjectInfo(w http.ResponseWriter, _ *http.Request, _ string) {
	out := newObject()
	for _, name := range s.order {
		out.Set(name, s.serveObjectInfo(name))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleObjectInfoClass(w http.ResponseWriter, _ *http.Request, class string) {
	out := newObject()
	if info := s.serveObjectInfo(class); info != nil {
		out.Set(class, info)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleSystemStats answers with the shape of a real 0.3.64 node with one
// CUDA device.
func (s *Server) handleSystemStats(w http.ResponseWriter, _ *http.Request, _ string) {
	if s.jobsAPI() {
		s.handleSystemStats038(w)
		return
	}
	const gib = 1 << 30
	writeJSON(w, http.StatusOK, obj(
		"system", obj(
			"os", "posix",
			"ram_total", int64(24*gib),
			"ram_free", int64(20*gib),
			"comfyui_version", Version,
			"required_frontend_version", "1.27.10",
			"installed_templates_version", "0.1.94",
			"required_templates_version", "0.1.94",
			"python_version", "3.12.3 (main, Aug 14 2025, 17:47:21) [GCC 13.3.0]",
			"pytorch_version", "2.8.0+cu128",
			"embedded_python", false,
			"argv", []any{"main.py", "--listen", "127.0.0.1", "--port", "8188"},
		),
		"devices", []any{obj(
			"name", "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync",
			"type", "cuda",
			"index", 0,
			"vram_total", int64(25386352640),
			"vram_free", int64(24961302528),
			"torch_vram_total", int64(0),
			"torch_vram_free", int64(0),
		)},
	))
}

func (s *Server) handleFeatures(w http.ResponseWriter, _ *http.Request, _ string) {
	writeJSON(w, http.StatusOK, s.serverFeatures())
}

func (s *Server) handleEmbeddings(w http.ResponseWriter, _ *http.Request, _ string) {
	writeJSON(w, http.StatusOK, []any{})
}

func (s *Server) handleExtensions(w http.ResponseWriter, _ *http.Request, _ string) {
	writeJSON(w, http.StatusOK, []any{})
}

// modelFolders are folder_paths.folder_names_and_paths keys of 0.3.64.
var modelFolders = []string{
	"checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
	"style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "gligen", "upscale_models",
	"custom_nodes", "hypernetworks", "photomaker", "classifiers", "model_patches", "audio_encoders",
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request, _ string) {
	l := make([]any, len(modelFolders))
	for i, f := range modelFolders {
		l[i] = f
	}
	writeJSON(w, http.StatusOK, l)
}

// handleModelFolder is GET /models/{folder}: the files of a model folder, 404
// for an unknown folder. Only checkpoints hold (simulated) files.
func (s *Server) handleModelFolder(w http.ResponseWriter, _ *http.Request, folder string) {
	if !contains(modelFolders, folder) {
		writeEmpty(w, http.StatusNotFound)
		return
	}
	l := []any{}
	if folder == "checkpoints" {
		for _, m := range sortedPy(s.opts.Models) {
			l = append(l, m)
		}
	}
	writeJSON(w, http.StatusOK, l)
}

// handleIndex stands in for the web frontend.
func (s *Server) handleIndex(w http.ResponseWriter, _ *http.Request, _ string) {
	page := "<!DOCTYPE html><html><head><title>ComfyUI</title></head><body>comfysim: a simulated ComfyUI " + s.Version() + " node</body></html>\n"
	w.Header().Set("Content-Type", "text/html")
	writeTextTyped(w, http.StatusOK, "text/html", page)
}

func writeTextTyped(w http.ResponseWriter, status int, ctype, text string) {
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", itoa(len(text)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text))
}

// inputImageFiles is LoadImage's combo: image files at the top of input/.
func (s *Server) inputImageFiles() []string {
	entries, err := os.ReadDir(s.inputDir)
	if err != nil {
		return nil
	}
	var files []string
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if strings.HasPrefix(contentTypeFor(e.Name()), "image/") {
			files = append(files, e.Name())
		}
	}
	return sortedPy(files)
}

// seedInput puts example.png in input/, as a ComfyUI checkout ships it.
func (s *Server) seedInput() error {
	p := filepath.Join(s.inputDir, "example.png")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return os.WriteFile(p, examplePNG(), 0o644)
}

// handleSystemStats038 is server.py@0.38's system_stats: os is sys.platform,
// comfy_package_versions and deploy_environment are new, devices lists every
// torch device with the primary one first.
func (s *Server) handleSystemStats038(w http.ResponseWriter) {
	const gib = 1 << 30
	// FrontendManager.get_comfy_package_versions: the comfy* pins of
	// requirements.txt, with what is installed.
	pkgs := []any{}
	for _, p := range [][2]string{
		{"comfyui-frontend-package", "1.53.6"}, {"comfyui-workflow-templates", "0.11.73"},
		{"comfyui-embedded-docs", "0.5.12"}, {"comfy-kitchen", "0.2.36"}, {"comfy-aimdo", "0.5.5"},
	} {
		pkgs = append(pkgs, obj("name", p[0], "installed", p[1], "required", p[1]))
	}
	writeJSON(w, http.StatusOK, obj(
		"system", obj(
			"os", "linux",
			"ram_total", int64(24*gib),
			"ram_free", int64(20*gib),
			"comfyui_version", s.Version(),
			"required_frontend_version", "1.53.6",
			"installed_templates_version", "0.11.73",
			"required_templates_version", "0.11.73",
			"comfy_package_versions", pkgs,
			"python_version", "3.12.3 (main, Aug 14 2025, 17:47:21) [GCC 13.3.0]",
			"pytorch_version", "2.8.0+cu128",
			"embedded_python", false,
			"deploy_environment", "local-git", // comfy/deploy_environment.py's default
			"argv", []any{"main.py", "--listen", "127.0.0.1", "--port", "8188"},
		),
		"devices", []any{obj(
			"name", "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync",
			"type", "cuda",
			"index", 0,
			"vram_total", int64(25386352640),
			"vram_free", int64(24961302528),
			"torch_vram_total", int64(0),
			"torch_vram_free", int64(0),
		)},
	))
}
