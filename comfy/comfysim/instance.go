package comfysim

import (
	"context"
	"encoding/binary"
	"math/big"
	"sync"
	"sync/atomic"
)

// maxHistorySize is ComfyUI's MAXIMUM_HISTORY_SIZE.
const maxHistorySize = 10000

// sensitiveExtraDataKeys are removed from extra_data before history.
var sensitiveExtraDataKeys = []string{"auth_token_comfy_org", "api_key_comfy_org"}

// instance is one life of the simulated ComfyUI process: everything a
// restart loses. Crash replaces it with a fresh one.
type instance struct {
	s      *Server
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{}

	// interrupt is nodes.interrupt_processing: process wide, cleared when a
	// prompt starts. interruptCh wakes a node waiting out its delay.
	interrupt   atomic.Bool
	interruptCh chan struct{}

	mu          sync.Mutex
	dead        bool
	number      int64 // PromptServer.number
	queue       []*queueItem
	running     *queueItem
	taskCounter int
	history     object // PromptQueue.history: a prompt id seen again keeps its first position
	flags       map[string]any
	sockets     map[string]*wsConn
	// clientID/hasClient are PromptServer.client_id (None when !hasClient),
	// set when a prompt starts and kept after it ends, like ComfyUI.
	clientID   any
	hasClient  bool
	lastNodeID *string // PromptServer.last_node_id: display id of the running node

	// Owned by the executor goroutine.
	cache   *outputCache
	objects map[string]string // PreviewImage filename suffix per node id
}

func (s *Server) newInstance() *instance {
	ctx, cancel := context.WithCancel(context.Background())
	inst := &instance{
		s:           s,
		ctx:         ctx,
		cancel:      cancel,
		wake:        make(chan struct{}, 1),
		interruptCh: make(chan struct{}, 1),
		flags:       map[string]any{},
		sockets:     map[string]*wsConn{},
		cache:       newOutputCache(s.opts.CacheMode, s.opts.CacheSize),
		objects:     map[string]string{},
	}
	s.wg.Add(1)
	go inst.loop()
	return inst
}

// kill ends this process life: nothing is sent any more, the executor
// stops and every socket is dropped.
func (inst *instance) kill() {
	inst.mu.Lock()
	inst.dead = true
	conns := inst.takeSocketsLocked()
	inst.mu.Unlock()
	inst.cancel()
	for _, c := range conns {
		c.abort()
	}
}

// dropSockets closes every socket abruptly, removing them from the routing
// table at once (so a quick reconnect is not unregistered by the old
// connection's handler).
func (inst *instance) dropSockets() {
	inst.mu.Lock()
	conns := inst.takeSocketsLocked()
	inst.mu.Unlock()
	for _, c := range conns {
		c.abort()
	}
}

func (inst *instance) takeSocketsLocked() []*wsConn {
	conns := make([]*wsConn, 0, len(inst.sockets))
	for sid, c := range inst.sockets {
		c.dropped.Store(true)
		conns = append(conns, c)
		delete(inst.sockets, sid)
	}
	return conns
}

func (inst *instance) signal() {
	select {
	case inst.wake <- struct{}{}:
	default:
	}
}

// --- WebSocket sends (PromptServer.send_sync) ---

// emit sends a JSON event: to the socket registered under sid, or to every
// socket when sid is nil (None).
func (inst *instance) emit(event string, data any, sid any) {
	frame := wsFrame{data: encodePy(obj("type", event, "data", data))}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	inst.routeLocked(frame, sid)
}

// emitBinary sends a binary event: [u32 type][payload].
func (inst *instance) emitBinary(eventType uint32, payload []byte, sid any) {
	b := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(b, eventType)
	copy(b[4:], payload)
	inst.mu.Lock()
	defer inst.mu.Unlock()
	inst.routeLocked(wsFrame{binary: true, data: b}, sid)
}

func (inst *instance) routeLocked(f wsFrame, sid any) {
	if inst.dead || inst.s.silenced() {
		return
	}
	if sid == nil {
		for _, c := range inst.sockets {
			c.enqueue(f)
		}
		return
	}
	if k, ok := sid.(string); ok {
		if c := inst.sockets[k]; c != nil {
			c.enqueue(f)
		}
	}
}

// queueInfoLocked is get_queue_info.
func (inst *instance) queueInfoLocked() *object {
	n := len(inst.queue)
	if inst.running != nil {
		n++
	}
	return obj("exec_info", obj("queue_remaining", n))
}

// queueUpdatedLocked broadcasts status, as PromptServer.queue_updated.
func (inst *instance) queueUpdatedLocked() {
	inst.routeLocked(wsFrame{data: encodePy(obj("type", "status", "data", obj("status", inst.queueInfoLocked())))}, nil)
}

// supportsPreviewMetadata is feature_flags.supports_feature for sid.
func (inst *instance) supportsPreviewMetadata(sid any) bool {
	k, ok := sid.(string)
	if !ok {
		return false
	}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	c := inst.sockets[k]
	if c == nil {
		return false
	}
	return c.supportsPreviewMetadata()
}

// --- queue (PromptQueue) ---

// queueItem is the tuple (number, prompt_id, prompt, extra_data, outputs_to_execute).
type queueItem struct {
	number   any // *big.Int, or pyFloat when the client gave "number"
	promptID string
	prompt   *object
	extra    *object
	outputs  []string
	// sensitive is 0.38's sixth element: the secret extra_data keys, never
	// served (nil with 0.3.64, which keeps them in extra).
	sensitive *object
}

// tuple is the item as /queue and history show it.
func (it *queueItem) tuple(stripSecrets bool) []any {
	extra := it.extra
	if stripSecrets {
		extra = newObject()
		for _, k := range it.extra.Keys() {
			if !isSensitive(k) {
				v, _ := it.extra.Get(k)
				extra.Set(k, v)
			}
		}
	}
	return []any{it.number, it.promptID, it.prompt, extra, it.outputs}
}

func isSensitive(k string) bool {
	for _, s := range sensitiveExtraDataKeys {
		if k == s {
			return true
		}
	}
	return false
}

// less compares queue tuples like Python: number, then prompt_id.
func (it *queueItem) less(o *queueItem) bool {
	c, ok := pyCompare(it.number, o.number)
	if !ok {
		return false
	}
	if c != 0 {
		return c < 0
	}
	return it.promptID < o.promptID
}

// The heap functions are Python's heapq, step for step, so that the pending
// array /queue shows is in the very order ComfyUI's would be.

func heapPush(h *[]*queueItem, it *queueItem) {
	*h = append(*h, it)
	siftDown(*h, 0, len(*h)-1)
}

func heapPop(h *[]*queueItem) *queueItem {
	q := *h
	last := q[len(q)-1]
	q = q[:len(q)-1]
	*h = q
	if len(q) == 0 {
		return last
	}
	ret := q[0]
	q[0] = last
	siftUp(q, 0)
	return ret
}

func heapify(q []*queueItem) {
	for i := len(q)/2 - 1; i >= 0; i-- {
		siftUp(q, i)
	}
}

func siftDown(q []*queueItem, start, pos int) {
	item := q[pos]
	for pos > start {
		parent := (pos - 1) >> 1
		if item.less(q[parent]) {
			q[pos] = q[parent]
			pos = parent
			continue
		}
		break
	}
	q[pos] = item
}

func siftUp(q []*queueItem, pos int) {
	end := len(q)
	start := pos
	item := q[pos]
	child := 2*pos + 1
	for child < end {
		right := child + 1
		if right < end && !q[child].less(q[right]) {
			child = right
		}
		q[pos] = q[child]
		pos = child
		child = 2*pos + 1
	}
	q[pos] = item
	siftDown(q, start, pos)
}

// put enqueues an item and broadcasts status.
func (inst *instance) put(it *queueItem) {
	inst.mu.Lock()
	heapPush(&inst.queue, it)
	inst.queueUpdatedLocked()
	inst.mu.Unlock()
	inst.signal()
}

// deleteQueueItem is PromptQueue.delete_queue_item for one prompt id.
func (inst *instance) deleteQueueItemLocked(promptID string) {
	for i, it := range inst.queue {
		if it.promptID != promptID {
			continue
		}
		if len(inst.queue) == 1 {
			inst.queue = nil
			inst.queueUpdatedLocked() // wipe_queue
		} else {
			inst.queue = append(inst.queue[:i:i], inst.queue[i+1:]...)
			heapify(inst.queue)
		}
		inst.queueUpdatedLocked()
		return
	}
}

// nextNumber is the priority of a request without "number".
func (inst *instance) nextNumber(front bool) *big.Int {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	n := inst.number
	inst.number++
	if front {
		n = -n
	}
	return big.NewInt(n)
}

// taskDone stores the history entry and broadcasts status.
func (inst *instance) taskDone(it *queueItem, outputs, meta *object, statusStr string, completed bool, messages []any) bool {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.dead {
		return false
	}
	inst.running = nil
	if inst.history.Len() > maxHistorySize {
		inst.history.Delete(inst.history.Keys()[0])
	}
	entry := obj(
		"prompt", it.tuple(true),
		"outputs", outputs,
		"status", obj("status_str", statusStr, "completed", completed, "messages", messages),
		"meta", meta,
	)
	inst.history.Set(it.promptID, entry)
	inst.queueUpdatedLocked()
	return true
}

// setInterrupt is nodes.interrupt_processing(True).
func (inst *instance) setInterrupt() {
	inst.interrupt.Store(true)
	select {
	case inst.interruptCh <- struct{}{}:
	default:
	}
}

// clearInterrupt is nodes.interrupt_processing(False), at a prompt's start.
func (inst *instance) clearInterrupt() {
	inst.interrupt.Store(false)
	select {
	case <-inst.interruptCh:
	default:
	}
}
