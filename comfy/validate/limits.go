package validate

import (
	"fmt"

	"github.com/comfyq/comfyq/comfy"
)

// Defaults of Limits.
const (
	DefaultMaxNodes       = 5000
	DefaultMaxDepth       = 32
	DefaultMaxStringBytes = 256 << 10
	DefaultMaxImages      = 32
)

// Limits bound the size of one submission. A zero field takes its default; a negative
// one means no limit.
type Limits struct {
	// MaxNodes bounds the nodes of a prompt (default 5000; the largest real workflows,
	// group nodes and subgraphs expanded, have a few hundred).
	MaxNodes int
	// MaxDepth bounds how deeply an input value nests arrays and objects (default 32;
	// a link is depth 1).
	MaxDepth int
	// MaxStringBytes bounds one string input value, in bytes (default 256 KiB; a
	// prompt text is a few KiB).
	MaxStringBytes int
	// MaxImages bounds the input files of one submission (default 32). Prompt does not
	// check it (the prompt does not hold them); the producer does.
	MaxImages int
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxNodes, DefaultMaxNodes)
	def(&l.MaxDepth, DefaultMaxDepth)
	def(&l.MaxStringBytes, DefaultMaxStringBytes)
	def(&l.MaxImages, DefaultMaxImages)
	return l
}

// Names of Limits, in LimitError.Limit.
const (
	LimitNodes       = "nodes"
	LimitDepth       = "depth"
	LimitStringBytes = "string_bytes"
	LimitImages      = "images"
)

// LimitError is a submission over one of its Limits.
type LimitError struct {
	// Limit is LimitNodes, LimitDepth, LimitStringBytes or LimitImages.
	Limit string
	Max   int
	// Got is the size found (for LimitDepth: more than Max).
	Got int
	// NodeID and Input name where the value is, for LimitDepth and LimitStringBytes.
	NodeID, Input string
}

func (e *LimitError) Error() string {
	at := ""
	if e.NodeID != "" {
		at = fmt.Sprintf("node %s input %q: ", e.NodeID, e.Input)
	}
	switch e.Limit {
	case LimitNodes:
		return fmt.Sprintf("validate: the workflow has %d nodes; the limit is %d", e.Got, e.Max)
	case LimitDepth:
		return fmt.Sprintf("validate: %sthe value nests arrays and objects deeper than %d levels", at, e.Max)
	case LimitStringBytes:
		return fmt.Sprintf("validate: %sa string of %d bytes; the limit is %d", at, e.Got, e.Max)
	case LimitImages:
		return fmt.Sprintf("validate: %d input files; the limit is %d", e.Got, e.Max)
	}
	return fmt.Sprintf("validate: over the %s limit (%d > %d)", e.Limit, e.Got, e.Max)
}

// CheckLimits checks the prompt's size: the number of nodes, the nesting and the string
// lengths of every input value (and of _meta titles). It returns a *LimitError.
func CheckLimits(wf comfy.Workflow, l Limits) error {
	l = l.WithDefaults()
	if l.MaxNodes > 0 && len(wf) > l.MaxNodes {
		return &LimitError{Limit: LimitNodes, Max: l.MaxNodes, Got: len(wf)}
	}
	for _, id := range wf.NodeIDs() {
		n := wf[id]
		if n == nil {
			continue
		}
		if l.MaxStringBytes > 0 && len(n.ClassType) > l.MaxStringBytes {
			return &LimitError{Limit: LimitStringBytes, Max: l.MaxStringBytes, Got: len(n.ClassType), NodeID: id, Input: "class_type"}
		}
		for _, name := range sortedKeys(n.Inputs) {
			if err := checkValue(n.Inputs[name], l, 0, id, name); err != nil {
				return err
			}
		}
		if err := checkValue(n.Meta, l, 0, id, "_meta"); err != nil {
			return err
		}
	}
	return nil
}

func checkValue(v any, l Limits, depth int, id, input string) error {
	switch x := v.(type) {
	case string:
		if l.MaxStringBytes > 0 && len(x) > l.MaxStringBytes {
			return &LimitError{Limit: LimitStringBytes, Max: l.MaxStringBytes, Got: len(x), NodeID: id, Input: input}
		}
	case []any:
		if l.MaxDepth > 0 && depth+1 > l.MaxDepth {
			return &LimitError{Limit: LimitDepth, Max: l.MaxDepth, Got: depth + 1, NodeID: id, Input: input}
		}
		for _, e := range x {
			if err := checkValue(e, l, depth+1, id, input); err != nil {
				return err
			}
		}
	case map[string]any:
		if l.MaxDepth > 0 && depth+1 > l.MaxDepth {
			return &LimitError{Limit: LimitDepth, Max: l.MaxDepth, Got: depth + 1, NodeID: id, Input: input}
		}
		for k, e := range x {
			if l.MaxStringBytes > 0 && len(k) > l.MaxStringBytes {
				return &LimitError{Limit: LimitStringBytes, Max: l.MaxStringBytes, Got: len(k), NodeID: id, Input: input}
			}
			if err := checkValue(e, l, depth+1, id, input); err != nil {
				return err
			}
		}
	}
	return nil
}
