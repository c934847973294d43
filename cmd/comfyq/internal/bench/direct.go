package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
)

// runDirect measures a node's own ceiling: one client with one shared WebSocket
// submits every prompt at once, so the node's queue is never empty, and counts a
// prompt done when `executing` null arrives. It downloads nothing. Sample i's node
// is set; created is when its POST /prompt was sent, finished when its completion
// message arrived.
func runDirect(ctx context.Context, n *simNode, node int, w Workload, first, count int) ([]sample, error) {
	clientID := uuid.NewString()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(n.url, "http")+"/ws?clientId="+clientID, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: direct client: %w", err)
	}
	defer ws.Close()
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	if _, _, err := ws.ReadMessage(); err != nil { // registered once the greeting arrives
		return nil, fmt.Errorf("bench: direct client: %w", err)
	}

	samples := make([]sample, count)
	index := map[string]int{}
	var mu sync.Mutex
	for i := range samples {
		samples[i] = sample{node: node, id: uuid.NewString()}
		index[samples[i].id] = i
	}
	readErr := make(chan error, 1)
	go func() {
		left := count
		for left > 0 {
			_, data, err := ws.ReadMessage()
			if err != nil {
				readErr <- fmt.Errorf("bench: direct client: read the socket: %w", err)
				return
			}
			var msg struct {
				Type string `json:"type"`
				Data struct {
					Node     *string `json:"node"`
					PromptID string  `json:"prompt_id"`
				} `json:"data"`
			}
			if json.Unmarshal(data, &msg) != nil || msg.Type != "executing" || msg.Data.Node != nil {
				continue
			}
			mu.Lock()
			if i, ok := index[msg.Data.PromptID]; ok && samples[i].finished.IsZero() {
				samples[i].finished = time.Now()
				samples[i].ok = true
				left--
			}
			mu.Unlock()
		}
		readErr <- nil
	}()

	hc := &http.Client{}
	for i := range samples {
		body, _ := json.Marshal(map[string]any{"prompt": w.prompt(first + i), "client_id": clientID, "prompt_id": samples[i].id})
		mu.Lock()
		samples[i].created = time.Now()
		mu.Unlock()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url+"/prompt", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("bench: direct client: POST /prompt: %w", err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("bench: direct client: POST /prompt: %s: %.200s", resp.Status, data)
		}
	}
	select {
	case err := <-readErr:
		if err != nil {
			return nil, err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	return samples, nil
}
