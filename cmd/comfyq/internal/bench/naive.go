package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/comfyq/comfyq/storage"
)

// NaiveClient is a Go port of the sequential client of the ComfyUI-as-API guides,
// ComfyUI's own script_examples/websockets_api_example.py and the tutorials built on
// it. For each prompt it
//
//  1. opens a new WebSocket, ws://server/ws?clientId=<uuid4>;
//  2. POSTs /prompt with that client_id and a prompt_id of its choosing;
//  3. reads messages until `executing` with node null for its prompt (binary
//     previews are skipped);
//  4. GETs /history/{prompt_id};
//  5. for each output node with "images", GETs /view for each file and reads the
//     whole body into memory;
//  6. saves each file (here: Put into a storage.Store, the "re-save");
//  7. closes the socket.
//
// Every HTTP request opens a new connection, as urllib.request.urlopen does. One
// deviation keeps the benchmark from hanging: the client reads the socket's first
// message (ComfyUI's status greeting, sent right after the handshake) before it
// submits, because ComfyUI drops messages for a client id it has not registered yet
// and a fast prompt could otherwise end unseen.
type NaiveClient struct {
	// BaseURL is the node, http://host:port (the script's server_address).
	BaseURL string
	// Store receives the downloaded outputs. Required.
	Store storage.Store
	// KeyPrefix is the first segment of the keys outputs are saved under (default
	// "naive"): <prefix>/<prompt id>/<node id>/<file name>.
	KeyPrefix string

	http *http.Client
}

// NaiveResult is one prompt run by a NaiveClient.
type NaiveResult struct {
	PromptID string
	// Started is when the client began (before opening the socket); Finished when
	// the last output was saved and the socket closed.
	Started, Finished time.Time
	// Succeeded reports whether the history says the prompt succeeded.
	Succeeded bool
	// Outputs are the saved files.
	Outputs []storage.Object
}

func (c *NaiveClient) client() *http.Client {
	if c.http == nil {
		c.http = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	return c.http
}

// Run runs one API-format prompt as the guides do and returns when its outputs are
// saved.
func (c *NaiveClient) Run(ctx context.Context, prompt map[string]any) (*NaiveResult, error) {
	if c.Store == nil {
		return nil, fmt.Errorf("bench: NaiveClient has no Store")
	}
	res := &NaiveResult{Started: time.Now()}
	base, err := url.Parse(c.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("bench: naive client: base URL: %w", err)
	}
	clientID := uuid.NewString()
	wsURL := url.URL{Scheme: "ws", Host: base.Host, Path: base.Path + "/ws", RawQuery: url.Values{"clientId": {clientID}}.Encode()}
	if base.Scheme == "https" {
		wsURL.Scheme = "wss"
	}
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, wsURL.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("bench: naive client: connect %s: %w", wsURL.Redacted(), err)
	}
	defer ws.Close()
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	if _, _, err = ws.ReadMessage(); err != nil { // the status greeting
		return nil, fmt.Errorf("bench: naive client: read the greeting: %w", err)
	}

	// queue_prompt
	res.PromptID = uuid.NewString()
	body, err := json.Marshal(map[string]any{"prompt": prompt, "client_id": clientID, "prompt_id": res.PromptID})
	if err != nil {
		return nil, fmt.Errorf("bench: naive client: %w", err)
	}
	if _, err = c.do(ctx, http.MethodPost, c.BaseURL+"/prompt", body); err != nil {
		return nil, err
	}

	// wait for executing null
	for {
		typ, data, readErr := ws.ReadMessage()
		if readErr != nil {
			return nil, fmt.Errorf("bench: naive client: read the socket: %w", readErr)
		}
		if typ != websocket.TextMessage {
			continue // previews are binary data
		}
		var msg struct {
			Type string `json:"type"`
			Data struct {
				Node     *string `json:"node"`
				PromptID string  `json:"prompt_id"`
			} `json:"data"`
		}
		if json.Unmarshal(data, &msg) != nil {
			continue
		}
		if msg.Type == "executing" && msg.Data.Node == nil && msg.Data.PromptID == res.PromptID {
			break // execution is done
		}
	}

	// get_history
	data, err := c.do(ctx, http.MethodGet, c.BaseURL+"/history/"+url.PathEscape(res.PromptID), nil)
	if err != nil {
		return nil, err
	}
	var history map[string]struct {
		Outputs map[string]struct {
			Images []struct {
				Filename  string `json:"filename"`
				Subfolder string `json:"subfolder"`
				Type      string `json:"type"`
			} `json:"images"`
		} `json:"outputs"`
		Status struct {
			StatusStr string `json:"status_str"`
		} `json:"status"`
	}
	if err := json.Unmarshal(data, &history); err != nil {
		return nil, fmt.Errorf("bench: naive client: history: %w", err)
	}
	entry, found := history[res.PromptID]
	if !found {
		return nil, fmt.Errorf("bench: naive client: no history for prompt %s", res.PromptID)
	}
	res.Succeeded = entry.Status.StatusStr == "success"
	prefix := c.KeyPrefix
	if prefix == "" {
		prefix = "naive"
	}
	for nodeID, out := range entry.Outputs {
		for _, img := range out.Images {
			// get_image: the whole file in memory
			q := url.Values{"filename": {img.Filename}, "subfolder": {img.Subfolder}, "type": {img.Type}}
			file, err := c.do(ctx, http.MethodGet, c.BaseURL+"/view?"+q.Encode(), nil)
			if err != nil {
				return nil, err
			}
			key, err := storage.JoinKey(prefix, res.PromptID, storage.SanitizeName(nodeID), storage.SanitizeName(img.Filename))
			if err != nil {
				return nil, fmt.Errorf("bench: naive client: %w", err)
			}
			obj, err := c.Store.Put(ctx, key, bytes.NewReader(file), storage.PutOptions{Size: int64(len(file))})
			if err != nil {
				return nil, fmt.Errorf("bench: naive client: save %s: %w", key, err)
			}
			res.Outputs = append(res.Outputs, obj)
		}
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	ws.Close()
	res.Finished = time.Now()
	return res, nil
}

// do sends one request on a new connection and reads the whole answer.
func (c *NaiveClient) do(ctx context.Context, method, u string, body []byte) ([]byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, fmt.Errorf("bench: naive client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: naive client: %s: %w", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("bench: naive client: %s %s: %w", method, req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: naive client: %s %s: %s: %.200s", method, req.URL.Path, resp.Status, data)
	}
	return data, nil
}
