package comfysim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"
)

// errInterrupted is comfy.model_management.InterruptProcessingException.
var errInterrupted = errors.New("comfysim: processing interrupted")

// pyError is a Python exception raised by a node or by validation.
type pyError struct {
	typ       string // full type name, e.g. "torch.OutOfMemoryError", "KeyError"
	msg       string // str(exception)
	traceback []any  // traceback.format_tb lines
}

func (e *pyError) Error() string { return e.typ + ": " + e.msg }

func raise(typ, format string, args ...any) *pyError {
	return &pyError{typ: typ, msg: fmt.Sprintf(format, args...)}
}

// loop is main.py's prompt_worker: one prompt at a time, lowest number first.
func (inst *instance) loop() {
	defer inst.s.wg.Done()
	for {
		it := inst.next()
		if it == nil {
			return
		}
		inst.execute(it)
	}
}

// next waits for a queued prompt. Pending /free flags are applied first:
// set_flag wakes an idle worker, as in ComfyUI, and a prompt queued right
// after POST /free finds the caches already dropped. nil means the
// instance died.
func (inst *instance) next() *queueItem {
	for {
		inst.applyFlags()
		inst.mu.Lock()
		if inst.dead {
			inst.mu.Unlock()
			return nil
		}
		if len(inst.queue) > 0 {
			it := heapPop(&inst.queue)
			inst.running = it
			inst.taskCounter++
			inst.queueUpdatedLocked()
			inst.mu.Unlock()
			return it
		}
		inst.mu.Unlock()
		select {
		case <-inst.ctx.Done():
			return nil
		case <-inst.wake:
		}
	}
}

// applyFlags applies POST /free: free_memory drops every cache.
func (inst *instance) applyFlags() {
	inst.mu.Lock()
	flags := inst.flags
	inst.flags = map[string]any{}
	inst.mu.Unlock()
	if pyTruthy(flags["free_memory"]) {
		inst.cache.reset()
		inst.objects = map[string]string{}
		inst.s.log.Info("comfysim: caches freed")
	}
}

// run is one execution of a prompt (PromptExecutor.execute).
type run struct {
	inst     *instance
	s        *Server
	ctx      context.Context
	item     *queueItem
	prompt   *object // the executing copy: dynprompt.get_original_prompt()
	promptID string
	extra    *object
	clientID any // nil is None: targeted messages are not sent

	messages    []any
	progress    progressRegistry
	outputs     map[string][]any   // results available to downstream nodes
	localUI     map[string]*object // UI produced by this run
	executed    []string
	executedSet map[string]bool
	isChanged   map[string]any
	ranNodes    int
}

// failure is the error_details of a failed or interrupted node.
type failure struct {
	interrupted   bool
	nodeID        string
	excType       string
	excMsg        string
	traceback     []any
	currentInputs any
}

func (inst *instance) execute(it *queueItem) {
	s := inst.s
	r := &run{
		inst:        inst,
		s:           s,
		ctx:         inst.ctx,
		item:        it,
		prompt:      copyObject(it.prompt),
		promptID:    it.promptID,
		extra:       it.extra,
		outputs:     map[string][]any{},
		localUI:     map[string]*object{},
		executedSet: map[string]bool{},
		isChanged:   map[string]any{},
	}
	if v, ok := it.extra.Get("client_id"); ok {
		r.clientID = v
	}
	r.progress = progressRegistry{r: r, nodes: map[string]*nodeProgress{}}

	inst.clearInterrupt()
	inst.mu.Lock()
	inst.clientID, inst.hasClient, inst.lastNodeID = r.clientID, r.clientID != nil, nil
	inst.mu.Unlock()

	start := time.Now()
	s.statsMu.Lock()
	s.executions[r.promptID]++
	if s.stats.FirstStart.IsZero() {
		s.stats.FirstStart = start
	}
	s.statsMu.Unlock()
	r.addMessage("execution_start", obj("prompt_id", r.promptID), false)

	nodeIDs := r.prompt.Keys()
	sg := &signer{prompt: r.prompt, classes: s.classes, isChanged: r.nodeIsChanged}
	keys := make(map[string]string, len(nodeIDs))
	for _, id := range nodeIDs {
		keys[id] = sg.key(id)
	}
	inst.cache.setPrompt(keys, nodeIDs)
	inst.cleanObjects(r.prompt)
	cached := []any{}
	for _, id := range nodeIDs {
		if inst.cache.get(id) != nil {
			cached = append(cached, id)
		}
	}
	s.updateStats(func(st *Stats) { st.NodesCached += int64(len(cached)) })
	r.addMessage("execution_cached", obj("nodes", cached, "prompt_id", r.promptID), false)

	list := newExecList(r.prompt,
		func(id string) bool { return inst.cache.get(id) != nil },
		func(id string) bool { d := r.class(id); return d != nil && d.outputNode })
	for _, o := range it.outputs {
		list.addNode(o)
	}
	var fail *failure
	for !list.empty() {
		id, ok := list.stage()
		if !ok {
			fail = &failure{nodeID: list.cycleNode(), excType: "graph.DependencyCycleError",
				excMsg: "Dependency cycle detected", traceback: []any{}, currentInputs: []any{}}
			break
		}
		f := r.executeNode(id)
		if r.ctx.Err() != nil {
			return // the process died: nothing more is sent or stored
		}
		if f != nil {
			fail = f
			break
		}
		list.complete(id)
	}
	if fail != nil {
		r.handleError(fail)
	} else {
		r.addMessage("execution_success", obj("prompt_id", r.promptID), false)
	}
	outputs, meta := r.historyOutputs()
	inst.mu.Lock()
	inst.lastNodeID = nil
	inst.mu.Unlock()

	statusStr := "success"
	if fail != nil {
		statusStr = "error"
	}
	if !inst.taskDone(it, outputs, meta, statusStr, fail == nil, r.messages) {
		return
	}
	end := time.Now()
	if r.clientID != nil {
		inst.emit("executing", obj("node", nil, "prompt_id", r.promptID), r.clientID)
	}
	// Stats change after the last message, so a test that sees them change
	// knows every message of the run was sent.
	s.updateStats(func(st *Stats) {
		st.PromptsExecuted++
		switch {
		case fail == nil:
			st.PromptsSucceeded++
			if r.ranNodes == 0 {
				st.PromptsCached++
			}
		case fail.interrupted:
			st.PromptsInterrupted++
		default:
			st.PromptsFailed++
		}
		st.NodesExecuted += int64(r.ranNodes)
		st.BusyTime += end.Sub(start)
		st.LastEnd = end
	})
}

// cleanObjects drops node objects whose (id, class) left the prompt, as the
// objects cache (CacheKeySetID) does.
func (inst *instance) cleanObjects(prompt *object) {
	if inst.s.opts.CacheMode == "none" {
		inst.objects = map[string]string{}
		return
	}
	for k := range inst.objects {
		keep := false
		for _, id := range prompt.Keys() {
			n := prompt.getObject(id)
			class, _ := n.getString("class_type")
			if k == id+"\x00"+class {
				keep = true
				break
			}
		}
		if !keep {
			delete(inst.objects, k)
		}
	}
}

// addMessage is PromptExecutor.add_message: timestamped, kept for history.
func (r *run) addMessage(event string, data *object, broadcast bool) {
	now := time.Now()
	data.Set("timestamp", now.UnixMilli())
	r.s.noteSpan(r.promptID, event, now)
	r.messages = append(r.messages, []any{event, data})
	if r.clientID != nil || broadcast {
		r.inst.emit(event, data, r.clientID)
	}
}

func (r *run) class(id string) *classDef {
	class, _ := r.prompt.getObject(id).getString("class_type")
	return r.s.classes[class]
}

// nodeIsChanged is IsChangedCache.get: the class's IS_CHANGED result (False
// for classes without one), stored in the node as "is_changed".
func (r *run) nodeIsChanged(id string) any {
	if v, ok := r.isChanged[id]; ok {
		return v
	}
	n := r.prompt.getObject(id)
	def := r.class(id)
	var v any = false
	switch {
	case def == nil || def.isChanged == nil:
	case n.Has("is_changed"):
		v, _ = n.Get("is_changed")
	default:
		res, err := def.isChanged(r.s, n.getObject("inputs"))
		if err != nil {
			r.s.log.Warn("comfysim: IS_CHANGED failed", "node", id, "err", err)
			v = pyFloat(nan())
		} else {
			v = []any{res}
		}
		n.Set("is_changed", v)
	}
	r.isChanged[id] = v
	return v
}

// executeNode is execution.py's execute() for one node.
func (r *run) executeNode(id string) *failure {
	n := r.prompt.getObject(id)
	def := r.class(id)
	if e := r.inst.cache.get(id); e != nil {
		if r.clientID != nil {
			var out any
			if e.ui != nil {
				out, _ = e.ui.Get("output")
			}
			r.inst.emit("executed", obj("node", id, "display_node", id, "output", out, "prompt_id", r.promptID), r.clientID)
		}
		r.progress.finish(id)
		r.outputs[id] = e.outputs
		return nil
	}

	r.progress.start(id)
	rc := r.inputData(id, n, def)
	if r.clientID != nil {
		display := id
		r.inst.mu.Lock()
		r.inst.lastNodeID = &display
		r.inst.mu.Unlock()
		r.inst.emit("executing", obj("node", id, "display_node", id, "prompt_id", r.promptID), r.clientID)
	}
	// nodes.before_node_execution
	if r.inst.interrupt.Load() {
		return &failure{interrupted: true, nodeID: id}
	}
	r.ranNodes++
	outputs, ui, err := r.runNode(rc, def)
	if err != nil {
		if r.ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errInterrupted) {
			return &failure{interrupted: true, nodeID: id}
		}
		var pe *pyError
		if !errors.As(err, &pe) {
			pe = raise("Exception", "%v", err)
		}
		tb := pe.traceback
		if tb == nil {
			tb = nodeTraceback(def)
		}
		msg := pe.msg + "\n"
		if pe.typ == "torch.OutOfMemoryError" || pe.typ == "torch.cuda.OutOfMemoryError" {
			msg = pe.msg + "\nThis error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before you might have accidentally set the batch_size to a large number."
		}
		return &failure{nodeID: id, excType: pe.typ, excMsg: msg, traceback: tb, currentInputs: rc.formatted()}
	}
	var uiEntry *object
	if ui.Len() > 0 {
		meta := obj("node_id", id, "display_node", id, "parent_node", nil, "real_node_id", id)
		uiEntry = obj("meta", meta, "output", ui)
		r.localUI[id] = uiEntry
		if r.clientID != nil {
			r.inst.emit("executed", obj("node", id, "display_node", id, "output", ui, "prompt_id", r.promptID), r.clientID)
		}
	}
	r.inst.cache.set(id, &cacheEntry{outputs: outputs, ui: uiEntry})
	r.outputs[id] = outputs
	r.progress.finish(id)
	r.executed = append(r.executed, id)
	r.executedSet[id] = true
	return nil
}

// runNode runs the class function, or the injected fault.
func (r *run) runNode(rc *runCtx, def *classDef) ([]any, *object, error) {
	if f, ok := r.s.faultFor(rc.nodeID, def.name); ok {
		if err := r.work(r.s.opts.NodeDelay); err != nil {
			return nil, nil, err
		}
		return nil, nil, &pyError{typ: f.exceptionType, msg: f.message}
	}
	if def.name != "KSampler" {
		if err := r.work(r.s.opts.NodeDelay); err != nil {
			return nil, nil, err
		}
	}
	outputs, ui, err := def.run(rc)
	if err == nil {
		if o := r.s.uiFor(rc.nodeID, def.name); o != nil {
			ui = o
		}
	}
	return outputs, ui, err
}

// work waits d, the simulated work of a node other than a sampler. As in
// ComfyUI, an interrupt does not stop a node that is running: it is seen when
// the next node starts. A crash aborts it.
func (r *run) work(d time.Duration) error {
	if d <= 0 {
		return r.ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return r.ctx.Err()
	case <-t.C:
		return nil
	}
}

// delay waits d, a sampler step. An interrupt ends it early (ComfyUI
// notices one at each sampler step; the messages are the same), and a crash
// aborts it.
func (r *run) delay(d time.Duration) error {
	if d <= 0 {
		return r.ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-t.C:
			return nil
		case <-r.inst.interruptCh:
			if r.inst.interrupt.Load() {
				return errInterrupted
			}
		}
	}
}

// inputData is get_input_data: linked values from upstream results,
// constants of declared inputs, then hidden inputs.
func (r *run) inputData(id string, n *object, def *classDef) *runCtx {
	rc := &runCtx{r: r, nodeID: id, def: def, in: newObject(), hiddenV3: map[string]any{}}
	inputs := n.getObject("inputs")
	for _, name := range inputs.Keys() {
		v, _ := inputs.Get(name)
		if from, slot, ok := isLink(v); ok {
			var val any
			outs, ok := r.outputs[from]
			if !ok {
				// a cached ancestor that never entered the execution list
				if e := r.inst.cache.get(from); e != nil {
					outs, ok = e.outputs, true
				}
			}
			if ok {
				if i, ok := slotIndex(slot, len(outs)); ok {
					val = outs[i]
				}
			}
			rc.in.Set(name, val)
			continue
		}
		if d := def.inputs[name]; d != nil {
			rc.in.Set(name, v)
		}
	}
	for _, d := range def.hidden {
		var v any
		switch hiddenKind(d.typ) {
		case "PROMPT":
			v = r.prompt
		case "EXTRA_PNGINFO":
			v, _ = r.extra.Get("extra_pnginfo")
		default:
			continue
		}
		if def.v3 {
			rc.hiddenV3[d.name] = v // V3 hidden inputs are not input data
			continue
		}
		rc.in.Set(d.name, v)
	}
	return rc
}

func hiddenKind(t any) string {
	s, _ := t.(string)
	return s
}

func nan() float64 { return math.NaN() }

// slotIndex resolves an output index like Python indexing a tuple.
func slotIndex(slot any, n int) (int, bool) {
	var i int64
	switch s := slot.(type) {
	case *big.Int:
		if !s.IsInt64() {
			return 0, false
		}
		i = s.Int64()
	case bool:
		if s {
			i = 1
		}
	default:
		return 0, false
	}
	if i < 0 {
		i += int64(n)
	}
	if i < 0 || i >= int64(n) {
		return 0, false
	}
	return int(i), true
}

// handleError is PromptExecutor.handle_execution_error.
func (r *run) handleError(f *failure) {
	class, _ := r.prompt.getObject(f.nodeID).getString("class_type")
	executed := make([]any, len(r.executed))
	for i, id := range r.executed {
		executed[i] = id
	}
	if f.interrupted {
		r.addMessage("execution_interrupted", obj(
			"prompt_id", r.promptID, "node_id", f.nodeID, "node_type", class, "executed", executed,
		), true)
		return
	}
	current := []any{}
	for _, id := range r.prompt.Keys() {
		current = append(current, id)
	}
	r.addMessage("execution_error", obj(
		"prompt_id", r.promptID, "node_id", f.nodeID, "node_type", class, "executed", executed,
		"exception_message", f.excMsg, "exception_type", f.excType, "traceback", f.traceback,
		"current_inputs", f.currentInputs, "current_outputs", current,
	), false)
}

// historyOutputs collects the UI of every prompt node found in the UI cache
// (cached ones included, with their old filenames, as 0.3.64 does).
func (r *run) historyOutputs() (*object, *object) {
	outputs, meta := newObject(), newObject()
	for _, id := range r.prompt.Keys() {
		var ui *object
		if e := r.inst.cache.get(id); e != nil && e.ui != nil {
			ui = e.ui
		} else if u := r.localUI[id]; u != nil {
			ui = u
		}
		if ui == nil {
			continue
		}
		o, _ := ui.Get("output")
		m, _ := ui.Get("meta")
		outputs.Set(id, o)
		meta.Set(id, m)
	}
	return outputs, meta
}

// hook is main.py's progress hook, called by KSampler at each step.
func (r *run) hook(nodeID string, value, total int, preview []byte) error {
	if r.inst.interrupt.Load() {
		return errInterrupted
	}
	meta := r.inst.supportsPreviewMetadata(r.clientID)
	r.progress.update(nodeID, value, total)
	if preview != nil && meta {
		md := encodePy(obj("node_id", nodeID, "prompt_id", r.promptID, "display_node_id", nodeID,
			"parent_node_id", nil, "real_node_id", nodeID, "image_type", "image/jpeg"))
		payload := make([]byte, 4, 4+len(md)+len(preview))
		payload[0], payload[1], payload[2], payload[3] = byte(len(md)>>24), byte(len(md)>>16), byte(len(md)>>8), byte(len(md))
		payload = append(append(payload, md...), preview...)
		r.inst.emitBinary(4, payload, r.clientID)
	}
	r.inst.emit("progress", obj("value", value, "max", total, "prompt_id", r.promptID, "node", nodeID), r.clientID)
	if preview != nil && !meta {
		payload := append([]byte{0, 0, 0, 1}, preview...) // image format 1 = JPEG
		r.inst.emitBinary(1, payload, r.clientID)
	}
	return nil
}

// progressRegistry is comfy_execution/progress.py's registry with the
// WebUIProgressHandler: every change sends progress_state with every
// non-pending node.
type progressRegistry struct {
	r     *run
	order []string
	nodes map[string]*nodeProgress
}

type nodeProgress struct {
	state      string
	value, max any
}

func (p *progressRegistry) entry(id string) *nodeProgress {
	e := p.nodes[id]
	if e == nil {
		e = &nodeProgress{state: "pending", value: pyFloat(0), max: pyFloat(1)}
		p.nodes[id] = e
		p.order = append(p.order, id)
	}
	return e
}

func (p *progressRegistry) start(id string) {
	e := p.entry(id)
	e.state, e.value, e.max = "running", pyFloat(0), pyFloat(1)
	p.send()
}

func (p *progressRegistry) update(id string, value, total int) {
	e := p.entry(id)
	e.state, e.value, e.max = "running", value, total
	p.send()
}

func (p *progressRegistry) finish(id string) {
	e := p.entry(id)
	e.state, e.value = "finished", e.max
	p.send()
}

func (p *progressRegistry) send() {
	nodes := newObject()
	for _, id := range p.order {
		e := p.nodes[id]
		if e.state == "pending" {
			continue
		}
		nodes.Set(id, obj("value", e.value, "max", e.max, "state", e.state, "node_id", id,
			"prompt_id", p.r.promptID, "display_node_id", id, "parent_node_id", nil, "real_node_id", id))
	}
	p.r.inst.emit("progress_state", obj("prompt_id", p.r.promptID, "nodes", nodes), p.r.clientID)
}

// runCtx is what a node function sees: its resolved inputs.
type runCtx struct {
	r        *run
	nodeID   string
	def      *classDef
	in       *object        // input name → value (one value per input, not a list)
	hiddenV3 map[string]any // hidden inputs of V3 nodes (cls.hidden)
}

// formatted is current_inputs of execution_error: each input as a list of
// format_value results.
func (rc *runCtx) formatted() *object {
	out := newObject()
	for _, k := range rc.in.Keys() {
		v, _ := rc.in.Get(k)
		out.Set(k, []any{formatValue(v)})
	}
	return out
}

// formatValue is execution.format_value.
func formatValue(v any) any {
	switch v.(type) {
	case nil, bool, string, *big.Int, pyFloat:
		return v
	}
	return pyStr(v)
}

// nodeTraceback is a plausible traceback.format_tb for a node exception.
func nodeTraceback(def *classDef) []any {
	module, _ := def.info.getString("python_module")
	file := "/ComfyUI/" + module + ".py"
	if module == "nodes" {
		file = "/ComfyUI/nodes.py"
	} else if len(module) > 0 {
		file = "/ComfyUI/" + replaceDots(module) + ".py"
	}
	return []any{
		"  File \"/ComfyUI/execution.py\", line 496, in execute\n    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n",
		"  File \"/ComfyUI/execution.py\", line 315, in get_output_data\n    return_values = await _async_map_node_over_list(prompt_id, unique_id, obj, input_data_all, obj.FUNCTION, allow_interrupt=True, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n",
		"  File \"/ComfyUI/execution.py\", line 289, in _async_map_node_over_list\n    await process_inputs(input_dict, i)\n",
		"  File \"/ComfyUI/execution.py\", line 277, in process_inputs\n    result = f(**inputs)\n",
		"  File \"" + file + "\", line 1, in " + def.name + "\n",
	}
}

func replaceDots(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}
