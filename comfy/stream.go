package comfy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/comfyq/comfyq/internal/retry"
	"github.com/gorilla/websocket"
)

// Limits of the event stream.
const (
	// subscriptionBuffer and subscriptionBytes bound what a Subscription holds for a
	// slow reader before it starts dropping (progress and previews first) and becomes
	// lossy.
	subscriptionBuffer = 1024
	subscriptionBytes  = 64 << 20
	// earlyMaxEvents, earlyMaxBytes, earlyMaxAge and earlyMaxPrompts bound the early
	// buffer: events of prompts nobody has subscribed to yet.
	earlyMaxEvents  = 256
	earlyMaxBytes   = 4 << 20
	earlyMaxAge     = 30 * time.Second
	earlyMaxPrompts = 64
	// maxWSMessage bounds one WebSocket message (SaveImageWebsocket sends full PNGs).
	maxWSMessage = 256 << 20
	// closeWait bounds the close handshake and the wait for the server to close TCP.
	closeWait = time.Second
	writeWait = 5 * time.Second
)

// stream is the Client's single WebSocket connection: it dials lazily, reads frames,
// routes events to subscriptions by prompt id, and reconnects.
type stream struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	kick   chan struct{} // cuts a reconnect backoff short

	mu            sync.Mutex
	started       bool
	closed        bool
	connected     bool // registered: the first frame arrived
	everConnected bool
	stateCh       chan struct{} // closed and replaced on every state change
	dialErr       error
	dialErrSeq    uint64
	byPrompt      map[string]map[*Subscription]struct{}
	all           map[*Subscription]struct{}
	early         map[string]*earlyBuffer
	current       string // the prompt this client is running, for binary frames
}

type earlyBuffer struct {
	first time.Time
	q     eventQueue
}

// eventQueue is a FIFO of events bounded by count and bytes. When full, progress and
// preview events go first: an incoming one is dropped, else the oldest droppable
// queued one, else the oldest.
type eventQueue struct {
	events []Event
	bytes  int
}

func eventSize(ev Event) int {
	n := len(ev.Data) + 64
	if b := ev.Binary; b != nil {
		n += len(b.Image) + len(b.Payload) + len(b.Text)
	}
	return n
}

// add appends ev within the bounds and returns how many events were dropped.
func (q *eventQueue) add(ev Event, maxEvents, maxBytes int) (dropped int) {
	size := eventSize(ev)
	for len(q.events) > 0 && (len(q.events) >= maxEvents || q.bytes+size > maxBytes) {
		dropped++
		if droppable(ev.Type) {
			return dropped
		}
		victim := 0
		for i, e := range q.events {
			if droppable(e.Type) {
				victim = i
				break
			}
		}
		q.bytes -= eventSize(q.events[victim])
		q.events = append(q.events[:victim], q.events[victim+1:]...)
	}
	q.events = append(q.events, ev)
	q.bytes += size
	return dropped
}

func (q *eventQueue) pop() (Event, bool) {
	if len(q.events) == 0 {
		return Event{}, false
	}
	ev := q.events[0]
	q.events[0] = Event{}
	q.events = q.events[1:]
	q.bytes -= eventSize(ev)
	return ev, true
}

func newStream(c *Client) *stream {
	ctx, cancel := context.WithCancel(context.Background())
	return &stream{
		c:        c,
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		kick:     make(chan struct{}, 1),
		stateCh:  make(chan struct{}),
		byPrompt: map[string]map[*Subscription]struct{}{},
		all:      map[*Subscription]struct{}{},
		early:    map[string]*earlyBuffer{},
	}
}

// Subscription receives the events of one prompt (Subscribe) or of all (SubscribeAll)
// on C, plus EventReconnected and EventDisconnected. C is closed by Close and by
// Client.Close.
//
// A slow reader never blocks the socket: events wait in a bounded buffer, and when it
// is full progress and preview events are dropped first and the subscription is marked
// lossy (see Lossy); /history remains the truth.
type Subscription struct {
	C <-chan Event

	ch       chan Event
	s        *stream
	promptID string

	mu      sync.Mutex
	queue   eventQueue
	lossy   bool
	dropped int

	wake      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newSubscription(s *stream, promptID string) *Subscription {
	ch := make(chan Event)
	sub := &Subscription{C: ch, ch: ch, s: s, promptID: promptID,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go sub.pump()
	return sub
}

// PromptID returns the prompt id subscribed to ("" for SubscribeAll).
func (sub *Subscription) PromptID() string { return sub.promptID }

// Lossy reports whether events were dropped because the reader was too slow.
func (sub *Subscription) Lossy() bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.lossy
}

// Dropped returns how many events were dropped.
func (sub *Subscription) Dropped() int {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.dropped
}

// Close ends the subscription and closes C. Safe to call more than once.
func (sub *Subscription) Close() {
	sub.closeOnce.Do(func() {
		close(sub.done)
		sub.s.remove(sub)
	})
}

// droppable reports whether an event may be dropped for a slow reader: the state it
// carries is repeated by later events or recoverable from /history.
func droppable(typ string) bool {
	switch typ {
	case EventProgress, EventProgressState, EventStatus, EventPreviewImage, EventProgressText, EventBinary:
		return true
	}
	return false
}

// push queues ev without blocking.
func (sub *Subscription) push(ev Event) {
	sub.mu.Lock()
	if n := sub.queue.add(ev, subscriptionBuffer, subscriptionBytes); n > 0 {
		sub.lossy = true
		sub.dropped += n
	}
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

func (sub *Subscription) pump() {
	defer close(sub.ch)
	for {
		sub.mu.Lock()
		ev, ok := sub.queue.pop()
		sub.mu.Unlock()
		if !ok {
			select {
			case <-sub.wake:
				continue
			case <-sub.done:
				return
			}
		}
		select {
		case sub.ch <- ev:
		case <-sub.done:
			return
		}
	}
}

// Subscribe returns a subscription to the events of one prompt. Call it before
// QueuePrompt: messages can arrive before the POST answer. Events that arrived for the
// prompt before anyone subscribed (up to 256 events, 30 s old) are delivered first.
// It opens the WebSocket if it is not open yet; events sent while no socket is
// connected are lost (ComfyUI does not buffer), so call Connect before queueing if the
// socket may not be up yet (Run does).
func (c *Client) Subscribe(promptID string) *Subscription {
	return c.stream.subscribe(promptID, false)
}

// SubscribeAll returns a subscription to every event: status broadcasts, every prompt's
// events, binary frames and unknown custom events.
func (c *Client) SubscribeAll() *Subscription {
	return c.stream.subscribe("", true)
}

func (s *stream) subscribe(promptID string, all bool) *Subscription {
	sub := newSubscription(s, promptID)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sub.Close()
		return sub
	}
	if all {
		s.all[sub] = struct{}{}
	} else {
		set := s.byPrompt[promptID]
		if set == nil {
			set = map[*Subscription]struct{}{}
			s.byPrompt[promptID] = set
		}
		set[sub] = struct{}{}
		if eb := s.early[promptID]; eb != nil {
			delete(s.early, promptID)
			now := time.Now()
			for _, ev := range eb.q.events {
				if now.Sub(ev.Received) <= earlyMaxAge {
					sub.push(ev)
				}
			}
		}
	}
	s.mu.Unlock()
	s.start()
	return sub
}

func (s *stream) remove(sub *Subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.all, sub)
	if set := s.byPrompt[sub.promptID]; set != nil {
		delete(set, sub)
		if len(set) == 0 {
			delete(s.byPrompt, sub.promptID)
		}
	}
}

// Connect opens the WebSocket if needed and waits until it is connected. It returns
// the dial error (wrapping ErrUnavailable) if an attempt made after the call fails;
// the client keeps retrying in the background either way.
func (c *Client) Connect(ctx context.Context) error {
	s := c.stream
	s.mu.Lock()
	seq := s.dialErrSeq
	s.mu.Unlock()
	s.start()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	for {
		s.mu.Lock()
		closed, connected, dialErr, dialSeq, ch := s.closed, s.connected, s.dialErr, s.dialErrSeq, s.stateCh
		s.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case connected:
			return nil
		case dialSeq != seq:
			return dialErr
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("comfy: connect: %w", ctx.Err())
		}
	}
}

// Connected reports whether the WebSocket is currently connected.
func (c *Client) Connected() bool { return c.stream.isConnected() }

func (s *stream) isConnected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

func (s *stream) start() {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return
	}
	s.started = true
	s.mu.Unlock()
	go s.run()
}

func (s *stream) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	started := s.started
	subs := make([]*Subscription, 0, len(s.all))
	for sub := range s.all {
		subs = append(subs, sub)
	}
	for _, set := range s.byPrompt {
		for sub := range set {
			subs = append(subs, sub)
		}
	}
	s.early = map[string]*earlyBuffer{}
	s.notifyLocked()
	s.mu.Unlock()
	s.cancel()
	if started {
		<-s.done
	}
	for _, sub := range subs {
		sub.Close()
	}
}

// notifyLocked wakes everyone waiting on a state change. s.mu must be held.
func (s *stream) notifyLocked() {
	close(s.stateCh)
	s.stateCh = make(chan struct{})
}

func (s *stream) setConnected(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connected = v
	if !v {
		s.current = ""
	}
	s.notifyLocked()
}

func (s *stream) setDialErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dialErr = err
	s.dialErrSeq++
	s.notifyLocked()
}

// run dials, serves and redials until the client is closed.
func (s *stream) run() {
	defer close(s.done)
	log := s.c.log
	attempt := 0
	for {
		conn, err := s.dial()
		if err == nil {
			var ready bool
			ready, err = s.serve(conn)
			if ready {
				// The socket had been registered: it was lost.
				s.setConnected(false)
				if s.ctx.Err() != nil {
					return
				}
				log.Warn("comfy: websocket lost", slog.String("error", err.Error()))
				s.broadcast(EventDisconnected)
				attempt = 0
				if !s.sleep(s.backoff(1)) {
					return
				}
				continue
			}
		}
		// Dial, handshake or registration failed.
		if s.ctx.Err() != nil {
			return
		}
		attempt++
		s.setDialErr(err)
		if attempt == 1 {
			log.Warn("comfy: websocket connect failed", slog.String("error", err.Error()))
		} else {
			log.Debug("comfy: websocket connect failed", slog.String("error", err.Error()), slog.Int("attempt", attempt))
		}
		if !s.sleep(s.backoff(attempt)) {
			return
		}
	}
}

// markReady is called on the first frame of a socket. ComfyUI registers the socket
// under its clientId before it sends that frame (a status with "sid"), so only from
// then on are messages for our prompts delivered: Connect waits for this, and a prompt
// queued earlier could lose its first messages.
func (s *stream) markReady() {
	s.mu.Lock()
	again := s.everConnected
	s.everConnected = true
	s.connected = true
	s.notifyLocked()
	s.mu.Unlock()
	if again {
		s.c.log.Info("comfy: websocket reconnected")
		s.broadcast(EventReconnected)
	} else {
		s.c.log.Debug("comfy: websocket connected")
	}
}

// backoff returns the delay before dial attempt n+1: ReconnectMin doubled per failed
// attempt up to ReconnectMax, with equal jitter (half fixed, half random).
func (s *stream) backoff(attempt int) time.Duration {
	b := retry.Backoff{Initial: s.c.cfg.ReconnectMin, Max: s.c.cfg.ReconnectMax, Jitter: retry.EqualJitter}
	return b.Delay(attempt)
}

func (s *stream) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.kick:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func (c *Client) wsHeader() http.Header {
	h := c.header.Clone()
	for _, k := range []string{"Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version",
		"Sec-Websocket-Extensions", "Origin", "Content-Type", "Content-Length", "Accept"} {
		h.Del(k)
	}
	return h
}

func (c *Client) dialer() *websocket.Dialer {
	d := &websocket.Dialer{
		HandshakeTimeout: c.cfg.RequestTimeout,
		ReadBufferSize:   32 << 10,
		WriteBufferSize:  4 << 10,
	}
	t, ok := c.hc.Transport.(*http.Transport)
	if c.hc.Transport == nil {
		t, ok = http.DefaultTransport.(*http.Transport)
	}
	if ok {
		d.Proxy = t.Proxy
		d.NetDialContext = t.DialContext
		if t.TLSClientConfig != nil {
			d.TLSClientConfig = t.TLSClientConfig.Clone()
			d.TLSClientConfig.NextProtos = nil // the upgrade is HTTP/1.1 only
		}
	}
	return d
}

func (s *stream) dial() (*websocket.Conn, error) {
	c := s.c
	ctx, cancel := context.WithTimeout(s.ctx, c.cfg.RequestTimeout)
	defer cancel()
	conn, resp, err := c.dialer().DialContext(ctx, c.wsURL, c.wsHeader())
	if err != nil {
		if resp != nil {
			body := readBounded(resp.Body, 512)
			resp.Body.Close()
			return nil, fmt.Errorf("%w: websocket handshake: HTTP %d: %s", ErrUnavailable, resp.StatusCode, body)
		}
		return nil, fmt.Errorf("%w: websocket dial: %w", ErrUnavailable, err)
	}
	conn.SetReadLimit(maxWSMessage)
	// Feature flags must be the first frame we send (§6); renegotiated on every connect.
	hello, _ := json.Marshal(map[string]any{
		"type": "feature_flags",
		"data": map[string]any{"supports_preview_metadata": c.cfg.PreviewMetadata},
	})
	_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
	if err := conn.WriteMessage(websocket.TextMessage, hello); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: websocket: send feature flags: %w", ErrUnavailable, err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// serve reads conn until it fails or the client closes, pinging to detect a dead
// peer. ready reports whether the socket got its first frame (see markReady); a socket
// that does not within RequestTimeout is given up. serve returns only when the socket
// is fully closed: after a close handshake it waits for the server to close TCP, so the
// server has dropped this socket before the next one registers under the same
// clientId (§6 gotcha).
func (s *stream) serve(conn *websocket.Conn) (ready bool, _ error) {
	var last atomic.Int64
	var isReady atomic.Bool
	touch := func() { last.Store(time.Now().UnixNano()) }
	touch()
	conn.SetPongHandler(func(string) error { touch(); return nil })
	ping := conn.PingHandler()
	conn.SetPingHandler(func(data string) error { touch(); return ping(data) })

	readErr := make(chan error, 1)
	go func() {
		for {
			mt, data, err := conn.ReadMessage()
			if err != nil {
				readErr <- err
				return
			}
			touch()
			if !isReady.Load() {
				isReady.Store(true)
				s.markReady()
			}
			s.handleFrame(mt, data, time.Now())
		}
	}()

	interval := s.c.cfg.PingInterval
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	registration := time.NewTimer(s.c.cfg.RequestTimeout)
	defer registration.Stop()
	var cause error
	closing := false
	initiateClose := func(why error) {
		if closing {
			return
		}
		closing, cause = true, why
		deadline := time.Now().Add(closeWait)
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
		_ = conn.SetReadDeadline(deadline)
	}
	done := s.ctx.Done()
	for {
		select {
		case err := <-readErr:
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
				// The server answered our close or sent its own (and the default handler
				// answered it): wait for it to close the TCP connection.
				waitEOF(conn.NetConn())
			}
			conn.Close()
			if cause != nil {
				err = cause
			}
			if !isReady.Load() {
				err = fmt.Errorf("%w: websocket closed before its first message: %w", ErrUnavailable, err)
			}
			return isReady.Load(), err
		case <-registration.C:
			if !isReady.Load() {
				initiateClose(fmt.Errorf("%w: no message within %v of the websocket handshake", ErrUnavailable, s.c.cfg.RequestTimeout))
			}
		case <-ticker.C:
			if closing {
				continue
			}
			if idle := time.Since(time.Unix(0, last.Load())); idle > 2*interval {
				initiateClose(fmt.Errorf("comfy: websocket silent for %v (no pong)", idle.Round(time.Millisecond)))
				continue
			}
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				initiateClose(fmt.Errorf("comfy: websocket ping: %w", err))
			}
		case <-done:
			done = nil
			initiateClose(ErrClosed)
		}
	}
}

// waitEOF waits, bounded by closeWait, until the peer closes the connection.
func waitEOF(nc net.Conn) {
	_ = nc.SetReadDeadline(time.Now().Add(closeWait))
	buf := make([]byte, 512)
	for {
		if _, err := nc.Read(buf); err != nil {
			return
		}
	}
}

func (s *stream) handleFrame(mt int, data []byte, now time.Time) {
	switch mt {
	case websocket.TextMessage:
		ev, err := parseTextFrame(data, now)
		if err != nil {
			s.c.log.Debug("comfy: ignoring WebSocket message", slog.String("error", err.Error()))
			return
		}
		s.dispatch(ev)
	case websocket.BinaryMessage:
		f, err := DecodeBinaryFrame(data)
		if err != nil {
			s.c.log.Debug("comfy: ignoring binary frame", slog.String("error", err.Error()))
			return
		}
		ev := Event{Binary: f, Received: now}
		switch f.Type {
		case BinaryPreviewImage, BinaryPreviewImageWithMetadata:
			ev.Type = EventPreviewImage
		case BinaryText:
			ev.Type = EventProgressText
		default:
			ev.Type = EventBinary
		}
		if f.Metadata != nil {
			ev.PromptID = f.Metadata.PromptID
		}
		s.dispatch(ev)
	}
}

func (s *stream) dispatch(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case ev.Type == EventExecutionStart && ev.PromptID != "":
		s.current = ev.PromptID
	case ev.Type == EventExecuting && ev.PromptID != "":
		if executingDone(ev) {
			if s.current == ev.PromptID {
				s.current = ""
			}
		} else {
			s.current = ev.PromptID
		}
	case ev.Binary != nil && ev.PromptID == "":
		ev.PromptID = s.current
	}
	for sub := range s.all {
		sub.push(ev)
	}
	if ev.PromptID == "" {
		return
	}
	if set := s.byPrompt[ev.PromptID]; len(set) > 0 {
		for sub := range set {
			sub.push(ev)
		}
		return
	}
	s.bufferEarlyLocked(ev)
}

func (s *stream) bufferEarlyLocked(ev Event) {
	now := ev.Received
	var oldestID string
	var oldest time.Time
	for id, b := range s.early {
		if now.Sub(b.first) > earlyMaxAge {
			delete(s.early, id)
			continue
		}
		if oldestID == "" || b.first.Before(oldest) {
			oldestID, oldest = id, b.first
		}
	}
	b := s.early[ev.PromptID]
	if b == nil {
		if len(s.early) >= earlyMaxPrompts {
			delete(s.early, oldestID)
		}
		b = &earlyBuffer{first: now}
		s.early[ev.PromptID] = b
	}
	b.q.add(ev, earlyMaxEvents, earlyMaxBytes)
}

// broadcast delivers a synthetic event to every subscription.
func (s *stream) broadcast(typ string) {
	ev := Event{Type: typ, Received: time.Now()}
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.all {
		sub.push(ev)
	}
	for _, set := range s.byPrompt {
		for sub := range set {
			sub.push(ev)
		}
	}
}
