package worker

import (
	"slices"
	"sync"
	"time"
)

// Adaptive pipelining (--depth auto): how many jobs a node holds at once.
//
// A job's slot on a node is held from the moment the worker takes its task to the
// moment its end is recorded. Of that time the node works only during the execution
// (E); before it asynq hands the slot its task and the worker reads the record and
// submits the prompt (B), after it the
// worker fetches the history, moves the outputs and writes the end (A). For the node
// never to wait, d slots must cover one execution while the other slots do their
// before and after work: with the node saturated, each slot's cycle is d·E, so
//
//	d ≥ 1 + ⌈(B + A) / E⌉
//
// (the 1 + ⌈after/execution⌉, with the worker's work before submitting
// counted as "after" of the previous job). Over the last depthWindow jobs the node
// ran, E is the mean execution and B + A the 90th percentile of the jobs' before and
// after work: the mean would do if every job took as long, but a node idles whenever
// a few slots are late at once (a slow storage request, a garbage collection), and
// tiny jobs vary by a multiple of their own length. The result is bounded to
// [1, max].
//
// The formula is an upper bound, not a target. When the worker's CPU is shared (many
// nodes of tiny jobs on one small machine, or the simulators of the benchmark on the
// same cores), B + A is mostly waiting for a CPU, and a deeper pipeline only adds work
// in flight: on 4 simulated nodes of 5 ms jobs sharing 2 cores with the worker, the
// formula asks for 8, and 3–7 slots give the same throughput with less added latency
// (docs/benchmarks.md). So the depth rises only when the node ran
// out of work: a prompt queued while the node held no other prompt of this worker
// (a "starved" sample) raises it by one, up to the formula. A node that never ran
// out during depthProbe jobs in a row is given one slot fewer (never below
// initialDepth): if that was one too few, the next starved sample gives it back. The
// depth thus settles at the least that keeps the node busy, probing one below it now
// and then.
//
// Bounds of the controller.
const (
	// depthWindow is how many recent jobs the depth is computed from.
	depthWindow = 16
	// depthMinSamples is how many jobs the controller waits for before it moves
	// from its initial depth.
	depthMinSamples = 4
	// initialDepth is an automatic node's depth before it has measured anything:
	// one job executing, one waiting in the node's queue (enough whenever the after
	// work is shorter than an execution, as for most GPU jobs).
	initialDepth = 2
	// DefaultMaxDepth is the default bound of the automatic depth (--max-depth).
	DefaultMaxDepth = 8
	// depthProbe is how many jobs in a row must find the node still holding work
	// before the depth is lowered by one to see whether it can do with less.
	depthProbe = 2 * depthWindow
	// execResolution is the resolution of ComfyUI's timestamps: an execution
	// reported as 0 ms counts as this long.
	execResolution = time.Millisecond
)

// depthSample is one job's measured times on a node.
type depthSample struct {
	// Before: the slot's previous job ended → the prompt submitted (asynq's
	// completion and dequeue, record read and written, input files uploaded).
	Before time.Duration
	// Exec: the node's execution_start → execution_success (the node's clock).
	Exec time.Duration
	// After: the end of the execution seen → the job's end recorded (history,
	// download, upload, status writes).
	After time.Duration
	// Starved: when its prompt was queued the node held no other prompt of this
	// worker, so the node had run out of work (or the job found an idle node).
	Starved bool
}

// depthFor returns the depth that keeps a node busy for jobs like samples:
// 1 + ⌈p90(Before + After) / mean(Exec)⌉, bounded to [1, maxDepth]. No samples: 1.
func depthFor(samples []depthSample, maxDepth int) int {
	if len(samples) == 0 {
		return 1
	}
	work := make([]time.Duration, len(samples))
	var exec time.Duration
	for i, s := range samples {
		work[i] = max(s.Before, 0) + max(s.After, 0)
		exec += max(s.Exec, execResolution)
	}
	slices.Sort(work)
	p90 := work[(len(work)*9+9)/10-1] // nearest rank: ⌈0.9·n⌉
	exec /= time.Duration(len(samples))
	d := 1 + int((p90+exec-1)/exec) // 1 + ⌈p90/exec⌉
	return min(max(d, 1), maxDepth)
}

// depthController holds one node's automatic depth. It raises the depth by one for
// each starved job while the window asks for more (a node that idles loses throughput
// at once), lowers it by one after depthProbe jobs that found the node busy, and lowers
// it to what the window asks for after a whole window of jobs asked for less (a lower
// depth holds fewer jobs, which matters for spreading long jobs across nodes, but not
// within seconds; by then the window holds only jobs of the run asking for less). It
// is a pure function of the samples it is given, in order.
type depthController struct {
	max int

	mu      sync.Mutex
	depth   int
	samples []depthSample // ring of the last depthWindow samples
	next    int
	seen    int // samples observed, saturating at depthWindow
	low     int // consecutive samples after which the window asked for less
	busy    int // consecutive samples that found the node holding work
}

func newDepthController(maxDepth int) *depthController {
	return &depthController{max: maxDepth, depth: min(initialDepth, maxDepth), samples: make([]depthSample, depthWindow)}
}

// current returns the depth in force.
func (c *depthController) current() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.depth
}

// observe adds one job's sample and returns the depth in force afterwards and
// whether it changed.
func (c *depthController) observe(s depthSample) (depth int, changed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	before := c.depth
	defer func() { depth, changed = c.depth, c.depth != before }()
	c.samples[c.next] = s
	c.next = (c.next + 1) % len(c.samples)
	c.seen = min(c.seen+1, len(c.samples))
	if c.seen < depthMinSamples {
		return
	}
	if s.Starved {
		c.busy = 0
	} else {
		c.busy++
	}
	want := depthFor(c.samples[:c.seen], c.max)
	switch {
	case want > c.depth:
		c.low = 0
		if s.Starved {
			c.depth++
		}
	case want < c.depth:
		c.low++
		if c.low >= depthWindow {
			c.depth, c.low = want, 0
		}
	default:
		c.low = 0
	}
	if c.busy >= depthProbe && c.depth > initialDepth && c.depth == before {
		c.depth--
		c.busy = 0
	}
	return
}
