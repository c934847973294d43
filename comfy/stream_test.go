package comfy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// fakeWS is a purpose-built WebSocket server for conditions the simulator cannot
// produce: it counts concurrent connections per clientId, tears sockets down slowly
// (like ComfyUI's handler, which unregisters a socket only when its read loop ends),
// can withhold pongs, and lets a test script the frames.
type fakeWS struct {
	t        *testing.T
	srv      *httptest.Server
	conns    chan *fakeConn
	teardown time.Duration
	noPong   func(n int) bool // withhold pongs on the n-th connection (1-based)

	mu          sync.Mutex
	n           int
	active      map[string]int
	maxActive   int
	handshakes  []http.Header
	firstFrames []string
	closeCodes  []int
}

type fakeConn struct {
	ws       *websocket.Conn
	clientID string
	wmu      sync.Mutex
	done     chan struct{}
}

func (fc *fakeConn) send(typ string, data any) error {
	b, err := json.Marshal(map[string]any{"type": typ, "data": data})
	if err != nil {
		return err
	}
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	return fc.ws.WriteMessage(websocket.TextMessage, b)
}

func (fc *fakeConn) sendBinary(f *BinaryFrame) error {
	b, err := EncodeBinaryFrame(f)
	if err != nil {
		return err
	}
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	return fc.ws.WriteMessage(websocket.BinaryMessage, b)
}

func newFakeWS(t *testing.T) *fakeWS {
	t.Helper()
	f := &fakeWS{t: t, conns: make(chan *fakeConn, 16), active: map[string]int{}}
	up := websocket.Upgrader{} // default CheckOrigin: refuses a foreign Origin, as ComfyUI does
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/ws") {
			http.NotFound(w, r)
			return
		}
		id := r.URL.Query().Get("clientId")
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.n++
		n := f.n
		f.handshakes = append(f.handshakes, r.Header.Clone())
		f.active[id]++
		if f.active[id] > f.maxActive {
			f.maxActive = f.active[id]
		}
		f.mu.Unlock()
		fc := &fakeConn{ws: ws, clientID: id, done: make(chan struct{})}
		if f.noPong != nil && f.noPong(n) {
			ws.SetPingHandler(func(string) error { return nil })
		}
		_ = fc.send("status", map[string]any{"status": map[string]any{"exec_info": map[string]any{"queue_remaining": 0}}, "sid": id})
		f.conns <- fc
		first := true
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				f.mu.Lock()
				if errors.As(err, &ce) {
					f.closeCodes = append(f.closeCodes, ce.Code)
				}
				f.mu.Unlock()
				break
			}
			if first {
				f.mu.Lock()
				f.firstFrames = append(f.firstFrames, string(msg))
				f.mu.Unlock()
				first = false
			}
		}
		// Like ComfyUI: the socket is unregistered only after the handler's loop ends.
		time.Sleep(f.teardown)
		f.mu.Lock()
		f.active[id]--
		f.mu.Unlock()
		close(fc.done)
		ws.Close()
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWS) next(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case fc := <-f.conns:
		return fc
	case <-time.After(10 * time.Second):
		t.Fatal("no WebSocket connection")
		return nil
	}
}

// recv returns the next event of sub, failing after a generous deadline.
func recv(t *testing.T, sub *Subscription) Event {
	t.Helper()
	select {
	case ev, ok := <-sub.C:
		require.True(t, ok, "subscription closed")
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
		return Event{}
	}
}

// recvType skips events until one of type typ.
func recvType(t *testing.T, sub *Subscription, typ string) Event {
	t.Helper()
	for {
		if ev := recv(t, sub); ev.Type == typ {
			return ev
		}
	}
}

func TestStreamHandshake(t *testing.T) {
	t.Parallel()
	f := newFakeWS(t)
	c := newTestClient(t, f.srv.URL, func(cfg *Config) {
		cfg.ClientID = "cid"
		cfg.PreviewMetadata = true
		cfg.Header = http.Header{"X-Token": {"t1"}, "Origin": {"http://elsewhere"}}
	})
	all := c.SubscribeAll()
	require.NoError(t, c.Connect(context.Background()))
	require.True(t, c.Connected())
	fc := f.next(t)
	require.Equal(t, "cid", fc.clientID)
	ev := recvType(t, all, EventStatus)
	v, err := ev.Decode()
	require.NoError(t, err)
	require.Equal(t, &Status{QueueRemaining: 0, SID: "cid"}, v)

	f.mu.Lock()
	h := f.handshakes[0]
	f.mu.Unlock()
	require.Equal(t, "t1", h.Get("X-Token"))
	require.Empty(t, h.Get("Origin"))

	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.firstFrames) == 1
	}, 10*time.Second, time.Millisecond)
	f.mu.Lock()
	require.JSONEq(t, `{"type":"feature_flags","data":{"supports_preview_metadata":true}}`, f.firstFrames[0])
	f.mu.Unlock()

	require.NoError(t, fc.send("feature_flags", map[string]any{"supports_preview_metadata": true, "max_upload_size": 104857600.0}))
	ev = recvType(t, all, EventFeatureFlags)
	v, err = ev.Decode()
	require.NoError(t, err)
	ff := v.(*FeatureFlags)
	require.True(t, ff.SupportsPreviewMetadata)
	require.Equal(t, 104857600.0, ff.MaxUploadSize)

	// Close performs a close handshake and ends subscriptions.
	require.NoError(t, c.Close())
	_, ok := <-all.C
	require.False(t, ok)
	<-fc.done
	f.mu.Lock()
	require.Equal(t, []int{websocket.CloseNormalClosure}, f.closeCodes)
	f.mu.Unlock()
	require.ErrorIs(t, c.Connect(context.Background()), ErrClosed)
	sub := c.Subscribe("x")
	_, ok = <-sub.C
	require.False(t, ok, "subscribing after Close gives a closed subscription")
}

func TestStreamRoutingAndBinaryFrames(t *testing.T) {
	t.Parallel()
	f := newFakeWS(t)
	c := newTestClient(t, f.srv.URL)
	p := c.Subscribe("P")
	q := c.Subscribe("Q")
	all := c.SubscribeAll()
	require.NoError(t, c.Connect(context.Background()))
	fc := f.next(t)

	require.NoError(t, fc.send("execution_start", map[string]any{"prompt_id": "P", "timestamp": 1}))
	require.NoError(t, fc.send("executing", map[string]any{"node": "3", "display_node": "3", "prompt_id": "P"}))
	require.NoError(t, fc.sendBinary(&BinaryFrame{Type: BinaryPreviewImage, ImageFormat: ImageFormatJPEG, Image: []byte{0xff, 0xd8}}))
	require.NoError(t, fc.sendBinary(&BinaryFrame{Type: BinaryText, NodeID: "3", Text: "step 1/2"}))
	require.NoError(t, fc.sendBinary(&BinaryFrame{Type: BinaryPreviewImageWithMetadata,
		Metadata: &PreviewMetadata{NodeID: "7", PromptID: "Q", DisplayNodeID: "7", RealNodeID: "7", ImageType: "image/png"}, Image: []byte("png")}))
	require.NoError(t, fc.send("progress", map[string]any{"value": 1, "max": 2, "prompt_id": "P", "node": "3"}))
	require.NoError(t, fc.send("executing", map[string]any{"node": nil, "prompt_id": "P"}))
	require.NoError(t, fc.sendBinary(&BinaryFrame{Type: BinaryPreviewImage, ImageFormat: ImageFormatPNG, Image: []byte("late")}))
	require.NoError(t, fc.sendBinary(&BinaryFrame{Type: 99, Payload: []byte("x")}))
	require.NoError(t, fc.send("custom.event", map[string]any{"x": 1}))

	var types []string
	for range 6 {
		types = append(types, recv(t, p).Type)
	}
	require.Equal(t, []string{EventExecutionStart, EventExecuting, EventPreviewImage, EventProgressText, EventProgress, EventExecuting}, types)

	ev := recvType(t, q, EventPreviewImage)
	require.Equal(t, "Q", ev.PromptID)
	require.Equal(t, "image/png", ev.Binary.ContentType())
	require.Equal(t, "7", ev.Binary.Metadata.NodeID)

	// In SubscribeAll: prompt-less binary frames after the prompt ended, unknown events.
	var got []Event
	for len(got) < 11 {
		got = append(got, recv(t, all))
	}
	require.Equal(t, EventPreviewImage, got[3].Type)
	require.Equal(t, "P", got[3].PromptID, "type 1 frames are attributed to the running prompt")
	require.Equal(t, uint32(ImageFormatJPEG), got[3].Binary.ImageFormat)
	require.Equal(t, "image/jpeg", got[3].Binary.ContentType())
	require.Equal(t, "step 1/2", got[4].Binary.Text)
	require.Equal(t, "P", got[4].PromptID)
	require.Equal(t, EventPreviewImage, got[8].Type)
	require.Equal(t, "", got[8].PromptID, "no prompt running")
	require.Equal(t, EventBinary, got[9].Type)
	require.Equal(t, []byte("x"), got[9].Binary.Payload)
	require.Equal(t, "custom.event", got[10].Type)
	v, err := got[10].Decode()
	require.NoError(t, err)
	require.JSONEq(t, `{"x":1}`, string(v.(json.RawMessage)))
	v, err = got[7].Decode()
	require.NoError(t, err)
	require.True(t, v.(*Executing).Done())
}

func TestStreamEarlyBuffer(t *testing.T) {
	t.Parallel()
	f := newFakeWS(t)
	c := newTestClient(t, f.srv.URL)
	all := c.SubscribeAll()
	require.NoError(t, c.Connect(context.Background()))
	fc := f.next(t)
	// Messages for P arrive before anyone subscribed to P (the POST answer is late).
	require.NoError(t, fc.send("execution_start", map[string]any{"prompt_id": "P", "timestamp": 1}))
	require.NoError(t, fc.send("execution_success", map[string]any{"prompt_id": "P", "timestamp": 2}))
	require.NoError(t, fc.send("executing", map[string]any{"node": nil, "prompt_id": "P"}))
	for ev := recv(t, all); ev.Type != EventExecuting; ev = recv(t, all) {
	}
	p := c.Subscribe("P")
	require.Equal(t, EventExecutionStart, recv(t, p).Type)
	require.Equal(t, EventExecutionSuccess, recv(t, p).Type)
	require.Equal(t, EventExecuting, recv(t, p).Type)
	// Delivered once: a second subscriber does not get them again.
	p2 := c.Subscribe("P")
	require.NoError(t, fc.send("marker", map[string]any{"prompt_id": "P"}))
	require.Equal(t, "marker", recv(t, p2).Type)
}

func TestStreamSlowConsumerIsLossyNotBlocking(t *testing.T) {
	t.Parallel()
	f := newFakeWS(t)
	c := newTestClient(t, f.srv.URL)
	slow := c.Subscribe("P")
	all := c.SubscribeAll()
	require.NoError(t, c.Connect(context.Background()))
	fc := f.next(t)
	const n = subscriptionBuffer + 200
	go func() {
		for i := range n {
			_ = fc.send("progress", map[string]any{"value": i, "max": n, "prompt_id": "P", "node": "3"})
		}
		_ = fc.send("execution_success", map[string]any{"prompt_id": "P"})
		_ = fc.send("executing", map[string]any{"node": nil, "prompt_id": "P"})
	}()
	// The reader loop is not blocked by the slow subscription: "all" sees the end.
	for ev := recv(t, all); ev.Type != EventExecuting || !executingDone(ev); ev = recv(t, all) {
	}
	require.True(t, slow.Lossy())
	require.Positive(t, slow.Dropped())
	var last []string
	count := 0
	for {
		ev := recv(t, slow)
		count++
		last = append(last, ev.Type)
		if ev.Type == EventExecuting {
			break
		}
	}
	require.Less(t, count, n+2)
	require.Equal(t, []string{EventExecutionSuccess, EventExecuting}, last[len(last)-2:], "important events survive")
}

// The old socket must be fully closed before the client redials with the same
// clientId: ComfyUI unregisters a socket by key when its handler ends, so an old
// handler ending after the new socket registered would silence the new one (§6).
func TestStreamReconnectClosesOldSocketFirst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(f *fakeWS)
		cause func(t *testing.T, fc *fakeConn)
	}{
		{"server closes", nil, func(t *testing.T, fc *fakeConn) {
			fc.wmu.Lock()
			defer fc.wmu.Unlock()
			require.NoError(t, fc.ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseGoingAway, "restart"), time.Now().Add(time.Second)))
		}},
		{"missed pongs", func(f *fakeWS) { f.noPong = func(n int) bool { return n == 1 } }, func(*testing.T, *fakeConn) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWS(t)
			f.teardown = 300 * time.Millisecond
			if tc.setup != nil {
				tc.setup(f)
			}
			c := newTestClient(t, f.srv.URL, func(cfg *Config) {
				cfg.ReconnectMin = time.Millisecond
				cfg.ReconnectMax = 5 * time.Millisecond
				cfg.PingInterval = 50 * time.Millisecond
			})
			p := c.Subscribe("P")
			require.NoError(t, c.Connect(context.Background()))
			fc := f.next(t)
			tc.cause(t, fc)
			require.Equal(t, EventDisconnected, recv(t, p).Type)
			require.Equal(t, EventReconnected, recv(t, p).Type)
			fc2 := f.next(t)
			require.NoError(t, fc2.send("executing", map[string]any{"node": nil, "prompt_id": "P"}))
			require.Equal(t, EventExecuting, recv(t, p).Type, "the new socket delivers")
			f.mu.Lock()
			defer f.mu.Unlock()
			require.Equal(t, 1, f.maxActive, "never two sockets for one clientId")
		})
	}
}

func TestStreamReconnectAfterDrop(t *testing.T) {
	t.Parallel()
	f := newFakeWS(t)
	c := newTestClient(t, f.srv.URL, func(cfg *Config) {
		cfg.ReconnectMin = time.Millisecond
		cfg.ReconnectMax = 5 * time.Millisecond
	})
	p := c.Subscribe("P")
	require.NoError(t, c.Connect(context.Background()))
	fc := f.next(t)
	waitFirstFrames := func(n int) {
		require.Eventually(t, func() bool {
			f.mu.Lock()
			defer f.mu.Unlock()
			return len(f.firstFrames) == n
		}, 10*time.Second, time.Millisecond)
	}
	waitFirstFrames(1)
	require.NoError(t, fc.ws.NetConn().Close()) // abrupt: no close frame
	require.Equal(t, EventDisconnected, recv(t, p).Type)
	require.Equal(t, EventReconnected, recv(t, p).Type)
	f.next(t)
	waitFirstFrames(2) // feature flags renegotiated on reconnect
}

func TestStreamHandshakeFailureIsUnavailable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL)
	err := c.Connect(context.Background())
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorContains(t, err, "502")
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, "http://127.0.0.1:1", func(cfg *Config) {
		cfg.ReconnectMin = 100 * time.Millisecond
		cfg.ReconnectMax = time.Second
	})
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 60: time.Second} {
		for range 20 {
			d := c.stream.backoff(attempt)
			require.GreaterOrEqual(t, d, want/2, fmt.Sprint(attempt))
			require.LessOrEqual(t, d, want, fmt.Sprint(attempt))
		}
	}
}

func TestEventQueueBounds(t *testing.T) {
	t.Parallel()
	var q eventQueue
	preview := Event{Type: EventPreviewImage, Binary: &BinaryFrame{Image: make([]byte, 1000)}}
	done := Event{Type: EventExecuted, Data: json.RawMessage(`{}`)}
	types := func() []string {
		var out []string
		for _, e := range q.events {
			out = append(out, e.Type)
		}
		return out
	}
	require.Zero(t, q.add(done, 3, 1<<20))
	require.Zero(t, q.add(preview, 3, 1<<20))
	require.Zero(t, q.add(preview, 3, 1<<20))
	require.Equal(t, 1, q.add(preview, 3, 1<<20), "full: an incoming preview is dropped")
	require.Equal(t, 1, q.add(done, 3, 1<<20), "full: an important event evicts the oldest preview")
	require.Equal(t, []string{EventExecuted, EventPreviewImage, EventExecuted}, types())
	require.Equal(t, 1, q.add(done, 3, 1<<20))
	require.Equal(t, 1, q.add(done, 3, 1<<20), "nothing droppable left: the oldest goes")
	require.Equal(t, []string{EventExecuted, EventExecuted, EventExecuted}, types())

	// The byte bound: two previews do not fit in 2000 bytes with an event already queued.
	q = eventQueue{}
	require.Zero(t, q.add(done, 100, 2000))
	require.Zero(t, q.add(preview, 100, 2000))
	require.Equal(t, 1, q.add(preview, 100, 2000))
	ev, ok := q.pop()
	require.True(t, ok)
	require.Equal(t, EventExecuted, ev.Type)
	ev, _ = q.pop()
	require.Equal(t, EventPreviewImage, ev.Type)
	_, ok = q.pop()
	require.False(t, ok)
	require.Zero(t, q.bytes)
}
