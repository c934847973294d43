package comfysim

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 32 << 10,
	// The origin check already ran (originAllowed), as in ComfyUI's middleware.
	CheckOrigin: func(*http.Request) bool { return true },
}

// wsFrame is one message to a client.
type wsFrame struct {
	binary bool
	data   []byte
}

// wsConn is one WebSocket client. Frames are queued without bound and
// written by a goroutine, in order, like aiohttp's transport buffers.
type wsConn struct {
	sid  string
	conn *websocket.Conn

	mu     sync.Mutex
	queue  []wsFrame
	closed bool
	signal chan struct{}
	flags  *object // client feature flags (sockets_metadata[sid]["feature_flags"])

	// dropped is set when the server removed the socket from the routing
	// table itself (Crash, DropWebSockets, SetDown).
	dropped atomic.Bool
}

func (c *wsConn) enqueue(f wsFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.queue = append(c.queue, f)
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

func (c *wsConn) supportsPreviewMetadata() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, _ := c.flags.Get("supports_preview_metadata")
	return v == true
}

// writer sends queued frames until the connection closes.
func (c *wsConn) writer(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-c.signal:
		}
		c.mu.Lock()
		frames := c.queue
		c.queue = nil
		c.mu.Unlock()
		for _, f := range frames {
			mt := websocket.TextMessage
			if f.binary {
				mt = websocket.BinaryMessage
			}
			if err := c.conn.WriteMessage(mt, f.data); err != nil {
				c.abort()
				return
			}
		}
	}
}

// abort closes the TCP connection without a close frame.
func (c *wsConn) abort() {
	c.mu.Lock()
	c.closed = true
	c.queue = nil
	c.mu.Unlock()
	_ = c.conn.NetConn().Close()
}

// handleWS is GET /ws?clientId= (server.py websocket_handler).
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	inst := s.current()
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	conn.SetReadLimit(maxUploadSize)
	sid := r.URL.Query().Get("clientId")
	c := &wsConn{conn: conn, signal: make(chan struct{}, 1), flags: newObject()}

	inst.mu.Lock()
	if inst.dead {
		inst.mu.Unlock()
		_ = conn.NetConn().Close()
		return
	}
	if sid != "" {
		// Reusing an existing session: the old socket leaves the routing table
		// (it stays open until its client closes it).
		delete(inst.sockets, sid)
	} else {
		sid = uuid.New().String()
		sid = sid[0:8] + sid[9:13] + sid[14:18] + sid[19:23] + sid[24:]
	}
	c.sid = sid
	inst.sockets[sid] = c
	status := obj("status", inst.queueInfoLocked(), "sid", sid)
	if !s.silenced() {
		c.enqueue(wsFrame{data: encodePy(obj("type", "status", "data", status))})
		// On reconnect of the client whose prompt is running, resend the node.
		if inst.hasClient && inst.clientID == any(sid) && inst.lastNodeID != nil {
			c.enqueue(wsFrame{data: encodePy(obj("type", "executing", "data", obj("node", *inst.lastNodeID)))})
		}
	}
	inst.mu.Unlock()

	s.wg.Add(1)
	done := make(chan struct{})
	go func() {
		defer s.wg.Done()
		c.writer(done)
	}()
	defer close(done)

	first := true
	for {
		mt, data, err := conn.ReadMessage()
		if err != nil {
			break
		}
		if mt != websocket.TextMessage {
			continue
		}
		v, err := decodeJSONBytes(data)
		if err != nil {
			continue // json.JSONDecodeError: negotiation stays open
		}
		msg, ok := v.(*object)
		if !ok {
			continue // data.get raised: first_message is not cleared
		}
		if first {
			if t, _ := msg.Get("type"); t == "feature_flags" {
				flags := newObject()
				if d, ok := msg.Get("data"); ok {
					if fo, ok := d.(*object); ok {
						flags = fo
					}
				}
				c.mu.Lock()
				c.flags = flags
				c.mu.Unlock()
				inst.emit("feature_flags", s.serverFeatures(), sid)
			}
		}
		first = false
	}

	// The handler removes the registration by key, even when a newer socket
	// registered under the same clientId (ComfyUI's reconnect gotcha).
	if !c.dropped.Load() {
		inst.mu.Lock()
		delete(inst.sockets, sid)
		inst.mu.Unlock()
	}
	c.abort()
}

// serverFeatures is comfy_api/feature_flags.get_server_features(). 0.38
// adds model type tags, the manager extension, node replacements and the
// assets switch (main.py sets it false without the database dependencies,
// which a simulator stands for).
func (s *Server) serverFeatures() *object {
	if s.jobsAPI() {
		return obj("supports_preview_metadata", true, "supports_model_type_tags", true,
			"max_upload_size", pyFloat(maxUploadSize),
			"extension", obj("manager", obj("supports_v4", true)),
			"node_replacements", true, "assets", false)
	}
	return obj("supports_preview_metadata", true, "max_upload_size", pyFloat(maxUploadSize))
}
