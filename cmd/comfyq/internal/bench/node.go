package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/comfysim"
)

// Workload is what every job of a run does on its node.
type Workload struct {
	// JobTime is how long each job executes on the node (default: the simulator's
	// 1 ms per graph node, a "tiny" job).
	JobTime time.Duration
	// OutputSize, when positive, makes each job's output one video file of that many
	// bytes (EmptyImage → CreateVideo → SaveVideo; the simulator generates the bytes
	// as they are read). Otherwise the output is one small PNG (EmptyImage →
	// SaveImage).
	OutputSize int64
}

// graphNodes is how many nodes of the workflow execute.
func (w Workload) graphNodes() int {
	if w.OutputSize > 0 {
		return 3
	}
	return 2
}

func (w Workload) simOptions() comfysim.Options {
	o := comfysim.Options{}
	if w.JobTime > 0 {
		o.NodeDelay = w.JobTime / time.Duration(w.graphNodes())
	}
	if w.OutputSize > 0 {
		o.VideoSize = w.OutputSize
	}
	return o
}

// prompt returns job i's API-format workflow. Each job gets its own colour, so that
// no job is a cache hit of an earlier one and every node executes.
func (w Workload) prompt(i int) map[string]any {
	empty := map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{
		"width": 64, "height": 64, "batch_size": 1, "color": i % (1 << 24)}}
	if w.OutputSize > 0 {
		return map[string]any{
			"1": empty,
			"2": map[string]any{"class_type": "CreateVideo", "inputs": map[string]any{"images": []any{"1", 0}, "fps": 24}},
			"3": map[string]any{"class_type": "SaveVideo", "inputs": map[string]any{"video": []any{"2", 0},
				"filename_prefix": "bench/video", "format": "auto", "codec": "auto"}},
		}
	}
	return map[string]any{
		"1": empty,
		"2": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"1", 0}, "filename_prefix": "bench"}},
	}
}

func (w Workload) promptJSON(i int) json.RawMessage {
	data, _ := json.Marshal(w.prompt(i)) // maps of strings and numbers always encode
	return data
}

// simNode is a simulated ComfyUI node served on a loopback port.
type simNode struct {
	sim    *comfysim.Server
	srv    *http.Server
	url    string
	client *comfy.Client // for reading history after a run
	dir    string        // the simulator's folders, removed by close
}

// startNodes starts n simulators running w, each on its own 127.0.0.1 port with its
// folders under the run's temporary directory.
func (e *env) startNodes(n int, w Workload) ([]*simNode, error) {
	opts := w.simOptions()
	opts.ComfyUIVersion = e.cfg.ComfyUIVersion
	var nodes []*simNode
	for range n {
		dir, err := os.MkdirTemp(e.tmpDir, "node-")
		if err != nil {
			closeNodes(nodes)
			return nil, fmt.Errorf("bench: %w", err)
		}
		opts.Dir = dir
		sim, err := comfysim.New(opts)
		if err != nil {
			closeNodes(nodes)
			return nil, fmt.Errorf("bench: simulator: %w", err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			_ = sim.Close()
			closeNodes(nodes)
			return nil, fmt.Errorf("bench: listen: %w", err)
		}
		srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		u := "http://" + ln.Addr().String()
		client, err := comfy.New(comfy.Config{BaseURL: u})
		if err != nil {
			_ = srv.Close()
			_ = sim.Close()
			closeNodes(nodes)
			return nil, err
		}
		nodes = append(nodes, &simNode{sim: sim, srv: srv, url: u, client: client, dir: dir})
	}
	return nodes, nil
}

func closeNodes(nodes []*simNode) {
	for _, n := range nodes {
		n.close()
	}
}

func (n *simNode) close() {
	_ = n.client.Close()
	_ = n.sim.Close() // closes the WebSockets, which Shutdown does not wait for
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = n.srv.Close()
	}
	_ = os.RemoveAll(n.dir)
}

// busyFraction averages the busy fraction of the nodes that executed anything.
func busyFraction(nodes []*simNode) float64 {
	var sum float64
	var n int
	for _, node := range nodes {
		st := node.sim.Stats()
		if st.PromptsExecuted == 0 {
			continue
		}
		sum += st.BusyFraction()
		n++
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// fillExecutions sets start and end of each sample from its node's history (to the
// nanosecond from the simulator); a sample whose prompt did not succeed on its node is
// marked not ok.
func fillExecutions(ctx context.Context, nodes []*simNode, samples []sample) error {
	spans := make([]map[string]execSpan, len(nodes))
	for i, n := range nodes {
		m, err := nodeExecutions(ctx, n.client)
		if err != nil {
			return err
		}
		spans[i] = m
	}
	for i := range samples {
		s := &samples[i]
		if s.node < 0 || s.node >= len(nodes) {
			s.ok = false
			continue
		}
		sp, found := spans[s.node][s.id]
		if !found || !sp.ok {
			s.ok = false
			continue
		}
		s.start, s.end = sp.start, sp.end
		// The same moments to the nanosecond from the simulator itself: the history's
		// millisecond timestamps would put up to 1 ms of the execution into the
		// after phase (0.5 ms on average).
		if exact, ok := nodes[s.node].sim.ExecutionSpan(s.id); ok {
			s.start, s.end = exact.Start, exact.End
		}
	}
	return nil
}
