package comfysim

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxUploadSize is ComfyUI's --max-upload-size default (100 MB) in bytes.
const maxUploadSize = 100 * 1024 * 1024

// Server is a simulated ComfyUI node (0.3.64 or 0.38.1, Options.ComfyUIVersion). It is an http.Handler serving
// the HTTP API and the /ws WebSocket, with one executor goroutine.
type Server struct {
	opts    Options
	log     *slog.Logger
	classes map[string]*classDef
	order   []string // class names in object_info order

	dir, inputDir, outputDir, tempDir string
	ownDir                            bool

	mu     sync.Mutex
	inst   *instance // the running "process"; Crash replaces it
	closed bool

	down       atomic.Bool
	silenceEnd atomic.Int64 // unix nanos until which ws sends are dropped

	faultMu   sync.Mutex
	nodeFault map[string]nodeFault
	viewFault ViewFault
	nodeUI    map[string]*object // SetNodeUI overrides

	vmu     sync.Mutex
	virtual map[string]*virtualFile // absolute path → virtual output file

	listings listings // output folders' cached listings (listing.go)

	statsMu    sync.Mutex
	stats      Stats
	executions map[string]int
	spans      map[string]ExecutionSpan

	wg sync.WaitGroup // executor goroutines and ws connections
}

type nodeFault struct{ exceptionType, message string }

// New starts a simulator. Close it to stop its executor and remove its
// temporary directory.
func New(opts Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	classes, order, err := buildClasses(sortedPy(o.Models), o.ComfyUIVersion)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:       o,
		log:        o.Logger,
		classes:    classes,
		order:      order,
		nodeFault:  map[string]nodeFault{},
		virtual:    map[string]*virtualFile{},
		executions: map[string]int{},
		spans:      map[string]ExecutionSpan{},
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "comfysim-")
		if err != nil {
			return nil, fmt.Errorf("comfysim: %w", err)
		}
		s.dir, s.ownDir = d, true
	} else {
		d, err := filepath.Abs(o.Dir)
		if err != nil {
			return nil, fmt.Errorf("comfysim: %w", err)
		}
		s.dir = d
	}
	s.inputDir = filepath.Join(s.dir, "input")
	s.outputDir = filepath.Join(s.dir, "output")
	s.tempDir = filepath.Join(s.dir, "temp")
	for _, d := range []string{s.inputDir, s.outputDir, s.tempDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			s.removeOwnDir()
			return nil, fmt.Errorf("comfysim: %w", err)
		}
	}
	if err := s.seedInput(); err != nil {
		s.removeOwnDir()
		return nil, err
	}
	s.inst = s.newInstance()
	return s, nil
}

func (s *Server) removeOwnDir() {
	if s.ownDir {
		_ = os.RemoveAll(s.dir)
	}
}

// Close stops the executor, closes every WebSocket and, when the server
// created its directory, removes it. Closing twice is safe.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	inst := s.inst
	s.mu.Unlock()
	inst.kill()
	s.wg.Wait()
	if s.ownDir {
		if err := os.RemoveAll(s.dir); err != nil {
			return fmt.Errorf("comfysim: %w", err)
		}
	}
	return nil
}

// Dir returns the directory holding input/, output/ and temp/.
func (s *Server) Dir() string { return s.dir }

func (s *Server) current() *instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inst
}

// Crash simulates a ComfyUI process restart: the running prompt is aborted
// (no more messages for it), and the queue, history, caches, WebSocket
// clients and the prompt counter are lost. Files on disk (and virtual
// outputs) stay, and so do Stats and Executions.
func (s *Server) Crash() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	old := s.inst
	s.inst = s.newInstance()
	s.mu.Unlock()
	old.kill()
	s.log.Info("comfysim: crashed and restarted")
}

// SetDown makes the node unreachable (true) or reachable again (false).
// While down every HTTP request, /ws included, fails at the connection
// level (the connection is closed without an answer; 502 where it cannot be
// hijacked), and open WebSockets are dropped. The executor keeps running.
func (s *Server) SetDown(down bool) {
	s.down.Store(down)
	if down {
		s.current().dropSockets()
	}
}

// DropWebSockets closes every WebSocket abruptly (no close frame). Running
// prompts continue; their messages are lost until clients reconnect.
func (s *Server) DropWebSockets() { s.current().dropSockets() }

// SilenceWebSockets keeps sockets open but sends nothing on them for d:
// messages of that period are lost, as ComfyUI does not buffer.
func (s *Server) SilenceWebSockets(d time.Duration) {
	s.silenceEnd.Store(time.Now().Add(d).UnixNano())
}

func (s *Server) silenced() bool { return time.Now().UnixNano() < s.silenceEnd.Load() }

// FailNode makes every later execution of the nodes with that id or class
// raise an exception of exceptionType (a Python name such as
// "torch.OutOfMemoryError") with message, until ClearFaults. Cached nodes do
// not execute and so do not fail.
func (s *Server) FailNode(classOrID string, exceptionType, message string) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if exceptionType == "" {
		exceptionType = "Exception"
	}
	s.nodeFault[classOrID] = nodeFault{exceptionType: exceptionType, message: message}
}

// ClearFaults removes every FailNode and SetViewFault fault.
func (s *Server) ClearFaults() {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.nodeFault = map[string]nodeFault{}
	s.viewFault = ViewFault{}
}

// SetViewFault replaces the /view fault (the zero ViewFault clears it).
func (s *Server) SetViewFault(f ViewFault) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.viewFault = f
}

func (s *Server) faultFor(nodeID, class string) (nodeFault, bool) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if f, ok := s.nodeFault[nodeID]; ok {
		return f, true
	}
	f, ok := s.nodeFault[class]
	return f, ok
}

// takeViewFault returns the fault for one /view request and counts it.
func (s *Server) takeViewFault() (delay time.Duration, failStatus int, cutAfter int64) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	f := &s.viewFault
	if f.FailCount > 0 {
		f.FailCount--
		failStatus = f.FailStatus
		if failStatus == 0 {
			failStatus = http.StatusInternalServerError
		}
	}
	return f.Delay, failStatus, f.CutAfter
}

// Executions reports how many times promptID started executing
// (execution_start), across crashes.
func (s *Server) Executions(promptID string) int {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.executions[promptID]
}

// ExecutionSpan is when a prompt's last execution started and ended, on the
// simulator's clock to the nanosecond: the times of its execution_start and of its
// execution_success, execution_error or execution_interrupted message, which carry
// them in milliseconds, as ComfyUI's do.
type ExecutionSpan struct {
	Start, End time.Time
}

// ExecutionSpan returns the span of the prompt's last execution; ok is false before
// one ended.
func (s *Server) ExecutionSpan(promptID string) (ExecutionSpan, bool) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	sp, ok := s.spans[promptID]
	return sp, ok && !sp.End.IsZero()
}

func (s *Server) noteSpan(promptID, event string, at time.Time) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	switch event {
	case "execution_start":
		s.spans[promptID] = ExecutionSpan{Start: at}
	case "execution_success", "execution_error", "execution_interrupted":
		sp := s.spans[promptID]
		sp.End = at
		s.spans[promptID] = sp
	}
}

// Stats returns the totals since New.
func (s *Server) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.stats
}

func (s *Server) updateStats(f func(st *Stats)) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	f(&s.stats)
}

// ServeHTTP serves the ComfyUI API. Every route is also served under /api.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed || s.down.Load() {
		failConnection(w)
		return
	}
	if !originAllowed(r) {
		writeEmpty(w, http.StatusForbidden)
		return
	}
	if r.Method == http.MethodOptions {
		writeEmpty(w, http.StatusOK)
		return
	}
	path := r.URL.Path
	prefixed := strings.HasPrefix(path, "/api/")
	if prefixed {
		path = path[len("/api"):]
	}
	if s.routeJobs(w, r, path, prefixed) {
		return
	}
	s.route(w, r, path)
}

// failConnection closes the connection without an answer, or answers 502
// when the connection cannot be taken over.
func failConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	w.WriteHeader(http.StatusBadGateway)
}

type handlerFunc func(s *Server, w http.ResponseWriter, r *http.Request, arg string)

type route struct {
	methods map[string]handlerFunc
}

var (
	exactRoutes  map[string]route
	prefixRoutes []struct {
		prefix string
		route  route
	}
)

func init() {
	get := func(h handlerFunc) map[string]handlerFunc { return map[string]handlerFunc{http.MethodGet: h} }
	exactRoutes = map[string]route{
		"/ws":           {get(func(s *Server, w http.ResponseWriter, r *http.Request, _ string) { s.handleWS(w, r) })},
		"/prompt":       {map[string]handlerFunc{http.MethodGet: (*Server).handleGetPrompt, http.MethodPost: (*Server).handlePostPrompt}},
		"/queue":        {map[string]handlerFunc{http.MethodGet: (*Server).handleGetQueue, http.MethodPost: (*Server).handlePostQueue}},
		"/history":      {map[string]handlerFunc{http.MethodGet: (*Server).handleGetHistory, http.MethodPost: (*Server).handlePostHistory}},
		"/interrupt":    {map[string]handlerFunc{http.MethodPost: (*Server).handleInterrupt}},
		"/free":         {map[string]handlerFunc{http.MethodPost: (*Server).handleFree}},
		"/view":         {get((*Server).handleView)},
		"/upload/image": {map[string]handlerFunc{http.MethodPost: (*Server).handleUploadImage}},
		"/upload/mask":  {map[string]handlerFunc{http.MethodPost: (*Server).handleUploadMask}},
		"/object_info":  {get((*Server).handleObjectInfo)},
		"/system_stats": {get((*Server).handleSystemStats)},
		"/features":     {get((*Server).handleFeatures)},
		"/embeddings":   {get((*Server).handleEmbeddings)},
		"/models":       {get((*Server).handleModels)},
		"/extensions":   {get((*Server).handleExtensions)},
		"/":             {get((*Server).handleIndex)},
	}
	prefixRoutes = []struct {
		prefix string
		route  route
	}{
		{"/history/", route{get((*Server).handleGetHistoryItem)}},
		{"/object_info/", route{get((*Server).handleObjectInfoClass)}},
		{"/models/", route{get((*Server).handleModelFolder)}},
	}
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, path string) {
	rt, ok := exactRoutes[path]
	arg := ""
	if !ok {
		for _, p := range prefixRoutes {
			rest, found := strings.CutPrefix(path, p.prefix)
			if found && rest != "" && !strings.Contains(rest, "/") {
				rt, ok, arg = p.route, true, rest
				break
			}
		}
	}
	if !ok {
		writeText(w, http.StatusNotFound, "404: Not Found")
		return
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	h, ok := rt.methods[method]
	if !ok {
		var allow []string
		for m := range rt.methods {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
		w.Header().Set("Allow", strings.Join(sortedPy(allow), ","))
		writeText(w, http.StatusMethodNotAllowed, "405: Method Not Allowed")
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxUploadSize)
	}
	h(s, w, r, arg)
}

// originAllowed is ComfyUI's origin_only_middleware: for a loopback Host,
// an Origin whose host differs is refused.
func originAllowed(r *http.Request) bool {
	host := r.Host
	origin := r.Header.Get("Origin")
	if host == "" || origin == "" {
		return true
	}
	hostDomain := strings.ToLower(host)
	parsed, err := url.Parse(origin)
	if err != nil {
		return true
	}
	originDomain := strings.ToLower(parsed.Host)
	hostParsed, err := url.Parse("//" + hostDomain)
	if err != nil {
		return true
	}
	if !isLoopback(hostParsed.Hostname()) {
		return true
	}
	if parsed.Port() == "" {
		hostDomain = hostParsed.Hostname()
	}
	if hostParsed.Port() == "" {
		originDomain = strings.ToLower(parsed.Hostname())
	}
	if hostDomain == "" || originDomain == "" {
		return true
	}
	return hostDomain == originDomain
}

func isLoopback(host string) bool {
	if host == "" {
		return false
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.IsLoopback()
	}
	return strings.EqualFold(host, "localhost")
}

// --- response helpers, shaped like aiohttp's ---

// writeJSON answers like web.json_response: json.dumps bytes.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b := encodePy(v)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeEmpty answers like web.Response(status=…): no body.
func writeEmpty(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

func writeText(w http.ResponseWriter, status int, text string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(text)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text))
}

// writeServerError is aiohttp's answer to a handler that raised.
func writeServerError(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeText(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("Maximum request body size %d exceeded, actual body size %d", maxUploadSize, r.ContentLength))
		return
	}
	w.Header().Set("Connection", "close")
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		body := "<html><head><title>500 Internal Server Error</title></head><body><h1>500 Internal Server Error</h1>Server got itself in trouble</body></html>"
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(body))
		return
	}
	writeText(w, http.StatusInternalServerError, "500 Internal Server Error\n\nServer got itself in trouble")
}

// readJSON reads a request body as Python's json.loads would.
func readJSON(r *http.Request) (any, error) {
	if r.Body == nil {
		return nil, errJSON
	}
	return decodeJSON(r.Body)
}
