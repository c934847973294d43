package comfysim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

// BenchmarkEmptyImageSaveRoundTrip measures POST /prompt to `executing
// null` for §10's EmptyImage→SaveImage (a new colour each time, so every
// iteration executes both nodes and writes a PNG).
func BenchmarkEmptyImageSaveRoundTrip(b *testing.B) {
	s, err := comfysim.New(comfysim.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Close()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/ws?clientId=bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("bench-%d", i)
		prompt := emptyImageSave("bench")
		prompt["1"].(map[string]any)["inputs"].(map[string]any)["color"] = i % 16777216
		body, _ := json.Marshal(map[string]any{"prompt": prompt, "client_id": "bench", "prompt_id": id})
		resp, err := http.Post(ts.URL+"/prompt", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done := []byte(`{"type": "executing", "data": {"node": null, "prompt_id": "` + id + `"}}`)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				b.Fatal(err)
			}
			if bytes.Equal(data, done) {
				break
			}
		}
	}
}

// BenchmarkViewVirtualVideo1GiB streams a 1 GiB virtual video through
// /view: memory stays constant, only the generator's speed matters.
func BenchmarkViewVirtualVideo1GiB(b *testing.B) {
	const size = 1 << 30
	s, err := comfysim.New(comfysim.Options{VideoSize: size})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Close()
	body, _ := json.Marshal(map[string]any{"prompt": videoPrompt(), "prompt_id": "v"})
	resp, err := http.Post(ts.URL+"/prompt", "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	for deadline := time.Now().Add(waitTimeout); ; {
		r, err := http.Get(ts.URL + "/history/v")
		if err != nil {
			b.Fatal(err)
		}
		h, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if len(h) > 2 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("video not produced")
		}
		time.Sleep(pollInterval)
	}
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		r, err := http.Get(ts.URL + "/view?filename=ComfyUI_00001_.mp4&subfolder=video")
		if err != nil {
			b.Fatal(err)
		}
		if r.ContentLength != size {
			b.Fatalf("Content-Length %d", r.ContentLength)
		}
		n, err := io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if err != nil || n != size {
			b.Fatalf("read %d bytes: %v", n, err)
		}
	}
}
