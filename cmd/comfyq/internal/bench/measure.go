package bench

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/comfyq/comfyq/comfy"
)

// Dist summarises a distribution of durations, in milliseconds.
type Dist struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// distOf summarises ds (nearest-rank percentiles).
func distOf(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Dist{Mean: ms(sum / time.Duration(len(s))), P50: ms(rank(0.50)), P99: ms(rank(0.99)), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }

// sample is one job as the benchmark saw it: when its client created it, when its
// node started and ended executing it, and when the client had it done (outputs
// stored, status written).
type sample struct {
	node     int
	id       string
	created  time.Time
	start    time.Time // execution_start on the node
	end      time.Time // execution_success on the node
	finished time.Time
	ok       bool
}

// timeline holds the samples of one run and derives its numbers.
type timeline struct {
	samples []sample
}

// span is the run's wall time: first job created to last job finished.
func (t *timeline) span() time.Duration {
	var first, last time.Time
	for _, s := range t.samples {
		if first.IsZero() || s.created.Before(first) {
			first = s.created
		}
		if s.finished.After(last) {
			last = s.finished
		}
	}
	if first.IsZero() || last.Before(first) {
		return 0
	}
	return last.Sub(first)
}

// headTail splits the span's ends: from the first job's creation to the first
// execution start on any node (dispatch of the first job), and from the last
// execution end to the last job's end (the last job's history, download and upload).
func (t *timeline) headTail() (head, tail time.Duration) {
	var created, start, end, finished time.Time
	for _, s := range t.samples {
		if created.IsZero() || s.created.Before(created) {
			created = s.created
		}
		if s.finished.After(finished) {
			finished = s.finished
		}
		if !s.ok {
			continue
		}
		if start.IsZero() || s.start.Before(start) {
			start = s.start
		}
		if s.end.After(end) {
			end = s.end
		}
	}
	if start.IsZero() {
		return 0, 0
	}
	return max(start.Sub(created), 0), max(finished.Sub(end), 0)
}

// perNode counts the succeeded jobs of each node.
func (t *timeline) perNode(nodes int) []int {
	out := make([]int, nodes)
	for _, s := range t.samples {
		if s.ok && s.node >= 0 && s.node < nodes {
			out[s.node]++
		}
	}
	return out
}

func (t *timeline) succeeded() int {
	n := 0
	for _, s := range t.samples {
		if s.ok {
			n++
		}
	}
	return n
}

// execTimes are the node execution times of the succeeded jobs.
func (t *timeline) execTimes() []time.Duration {
	var out []time.Duration
	for _, s := range t.samples {
		if s.ok {
			out = append(out, s.end.Sub(s.start))
		}
	}
	return out
}

// overheads returns each succeeded job's orchestration overhead: its end-to-end time
// (created → finished) minus its own execution on the node, minus the time it waited
// while its node executed earlier jobs. What is left is the time the job spent
// neither executing nor queued behind other work: dispatch before its node started it
// (while the node was idle) plus everything after execution (history, download,
// upload, status writes). In a sequential client this is end-to-end minus execution;
// in a pipelined one the queue wait behind other jobs is not counted.
func (t *timeline) overheads() (total, dispatch, after []time.Duration) {
	byNode := map[int][]sample{}
	for _, s := range t.samples {
		if s.ok {
			byNode[s.node] = append(byNode[s.node], s)
		}
	}
	for _, ss := range byNode {
		slices.SortFunc(ss, func(a, b sample) int { return a.start.Compare(b.start) })
		var prevEnd time.Time
		for _, s := range ss {
			ready := s.created
			if prevEnd.After(ready) {
				ready = prevEnd
			}
			pre := max(s.start.Sub(ready), 0)
			post := max(s.finished.Sub(s.end), 0)
			total = append(total, pre+post)
			dispatch = append(dispatch, pre)
			after = append(after, post)
			prevEnd = s.end
		}
	}
	return total, dispatch, after
}

// execSpan is one prompt's execution on a node, from its history messages
// (millisecond timestamps, as ComfyUI writes them).
type execSpan struct {
	start, end time.Time
	ok         bool
}

// nodeExecutions reads the execution spans of every prompt in the node's history.
func nodeExecutions(ctx context.Context, c *comfy.Client) (map[string]execSpan, error) {
	h, err := c.HistoryList(ctx, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("bench: read the node's history: %w", err)
	}
	out := make(map[string]execSpan, len(h))
	for id, e := range h {
		var sp execSpan
		for _, m := range e.Status.Messages {
			switch m.Type {
			case "execution_start":
				sp.start = m.Timestamp()
			case "execution_success":
				sp.end, sp.ok = m.Timestamp(), true
			case "execution_error", "execution_interrupted":
				sp.end = m.Timestamp()
			}
		}
		out[id] = sp
	}
	return out, nil
}

// heapSampler records the peak of this process's in-use heap (runtime/metrics: heap
// objects plus unused heap spans, i.e. MemStats.HeapInuse) above the level at start,
// sampled every interval.
type heapSampler struct {
	base   uint64
	peak   uint64
	stop   chan struct{}
	done   chan struct{}
	sample []metrics.Sample
}

func startHeapSampler(interval time.Duration) *heapSampler {
	runtime.GC()
	h := &heapSampler{
		stop: make(chan struct{}),
		done: make(chan struct{}),
		sample: []metrics.Sample{
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/memory/classes/heap/unused:bytes"},
		},
	}
	h.base = h.read()
	h.peak = h.base
	go func() {
		defer close(h.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				if v := h.read(); v > h.peak {
					h.peak = v
				}
			}
		}
	}()
	return h
}

func (h *heapSampler) read() uint64 {
	metrics.Read(h.sample)
	var total uint64
	for _, s := range h.sample {
		if s.Value.Kind() == metrics.KindUint64 {
			total += s.Value.Uint64()
		}
	}
	return total
}

// Stop ends sampling and returns the peak above the starting level, in bytes.
func (h *heapSampler) Stop() int64 {
	close(h.stop)
	<-h.done
	if v := h.read(); v > h.peak {
		h.peak = v
	}
	return int64(h.peak - h.base)
}

// procStatus reads fields (in bytes) such as VmHWM and VmRSS from /proc/PID/status.
func procStatus(pid int, fields ...string) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, fmt.Errorf("bench: read process memory (Linux only): %w", err)
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || !slices.Contains(fields, name) {
			continue
		}
		parts := strings.Fields(rest)
		if len(parts) != 2 || parts[1] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(parts[0], 10, 64)
		if err == nil {
			out[name] = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bench: read /proc/%d/status: %w", pid, err)
	}
	for _, name := range fields {
		if _, ok := out[name]; !ok {
			return nil, fmt.Errorf("bench: /proc/%d/status has no %s", pid, name)
		}
	}
	return out, nil
}
