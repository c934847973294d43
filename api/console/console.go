// Package console is comfyq's web console: a few static pages, embedded in the binary,
// that use the HTTP API from the browser to show jobs and their outputs, submit
// templates through forms generated from their parameter schemas, and show the ComfyUI
// nodes. The API server mounts Handler at /console/.
//
// The pages are plain ES modules and CSS written by hand: nothing is built, nothing is
// fetched from elsewhere, and the console works offline. The browser keeps the API key
// the user types in sessionStorage (the tab's session only) and sends it as
// "Authorization: Bearer KEY" on every call; it never appears in a URL. Output media
// are fetched from the API with that header and shown through blob: URLs; the event
// streams are read with fetch for the same reason (EventSource cannot send headers).
//
// Every response carries a strict Content-Security-Policy (CSP): scripts, styles and
// connections from the console's own origin only, images and media also from blob: and
// data:, no frames, no plugins, no inline script.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// CSP is the Content-Security-Policy of every console response.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' blob: data:; media-src 'self' blob:; font-src 'self'; object-src 'none'; " +
	"frame-src 'none'; worker-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Handler serves the console's files under prefix ("/console/"). Any path that names no
// file serves the page itself, so that a reloaded deep link still opens the console.
func Handler(prefix string) http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // embedded at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		name := strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(r.URL.Path, prefix)), "/")
		if name == "" || name == "." {
			name = "index.html"
		}
		if st, err := fs.Stat(sub, name); err != nil || st.IsDir() {
			name = "index.html"
		}
		// The files change with the binary only; revalidating is cheap (no ETag
		// mismatch means 304) and a new version is seen at once.
		h.Set("Cache-Control", "no-cache")
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		if name == "index.html" {
			// FileServer redirects /index.html to ./; serve the page directly instead.
			data, _ := fs.ReadFile(sub, name)
			h.Set("Content-Type", "text/html; charset=utf-8")
			if r.Method != http.MethodHead {
				_, _ = w.Write(data)
			}
			return
		}
		files.ServeHTTP(w, r2)
	})
}
