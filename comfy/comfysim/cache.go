package comfysim

import (
	"math/big"
	"strconv"
	"strings"
)

// cacheEntry is a node's cached result: its outputs and, when it produced
// UI output, {"meta": …, "output": …} (ComfyUI 0.3.64 keeps the UI in a
// separate cache with the same keys).
type cacheEntry struct {
	outputs []any
	ui      *object
}

// outputCache is CacheSet.outputs (and .ui) of execution.py for one of the
// three retention modes of ComfyUI 0.3.64.
type outputCache struct {
	mode    string
	maxSize int
	entries map[string]*cacheEntry
	keys    map[string]string // node id → signature, for the current prompt

	// lru bookkeeping (LRUCache)
	generation    int
	minGeneration int
	used          map[string]int
}

func newOutputCache(mode string, maxSize int) *outputCache {
	return &outputCache{mode: mode, maxSize: maxSize, entries: map[string]*cacheEntry{}, used: map[string]int{}}
}

// reset drops everything (POST /free {"free_memory": true}).
func (c *outputCache) reset() {
	*c = *newOutputCache(c.mode, c.maxSize)
}

// setPrompt installs the keys of a new prompt and cleans unused entries, as
// set_prompt followed by clean_unused.
func (c *outputCache) setPrompt(keys map[string]string, nodeIDs []string) {
	c.keys = keys
	switch c.mode {
	case "none":
		c.entries = map[string]*cacheEntry{}
	case "lru":
		c.generation++
		for _, id := range nodeIDs {
			c.markUsed(id)
		}
		for len(c.entries) > c.maxSize && c.minGeneration < c.generation {
			c.minGeneration++
			for k := range c.entries {
				if c.used[k] < c.minGeneration {
					delete(c.entries, k)
					delete(c.used, k)
				}
			}
		}
	case "ram_pressure":
		// RAMPressureCache keeps entries until memory runs low; the
		// simulator holds descriptions, not tensors, so it never does.
	default: // classic: keep only the keys of the current prompt
		live := make(map[string]bool, len(keys))
		for _, k := range keys {
			live[k] = true
		}
		for k := range c.entries {
			if !live[k] {
				delete(c.entries, k)
			}
		}
	}
}

func (c *outputCache) markUsed(id string) {
	if k, ok := c.keys[id]; ok {
		c.used[k] = c.generation
	}
}

func (c *outputCache) get(id string) *cacheEntry {
	if c.mode == "none" {
		return nil
	}
	if c.mode == "lru" {
		c.markUsed(id)
	}
	k, ok := c.keys[id]
	if !ok {
		return nil
	}
	return c.entries[k]
}

func (c *outputCache) set(id string, e *cacheEntry) {
	if c.mode == "none" {
		return
	}
	if c.mode == "lru" {
		c.markUsed(id)
	}
	if k, ok := c.keys[id]; ok {
		c.entries[k] = e
	}
}

// isLink is graph_utils.is_link: [str, int|float].
func isLink(v any) (string, any, bool) {
	l, ok := v.([]any)
	if !ok || len(l) != 2 {
		return "", nil, false
	}
	id, ok := l[0].(string)
	if !ok {
		return "", nil, false
	}
	switch l[1].(type) {
	case *big.Int, pyFloat, bool:
		return id, l[1], true
	}
	return "", nil, false
}

// signer computes CacheKeySetInputSignature keys for one prompt.
type signer struct {
	prompt    *object
	classes   map[string]*classDef
	isChanged func(nodeID string) any
	nonces    int
}

func (sg *signer) nonce() string {
	sg.nonces++
	return strconv.Itoa(sg.nonces)
}

// key is get_node_signature: the node's immediate signature followed by
// those of its ancestors in ordered-ancestry order.
func (sg *signer) key(nodeID string) string {
	var ancestors []string
	order := map[string]int{}
	sg.ancestry(nodeID, &ancestors, order)
	var b strings.Builder
	sg.immediate(&b, nodeID, order)
	for _, a := range ancestors {
		b.WriteString("|")
		sg.immediate(&b, a, order)
	}
	return b.String()
}

func (sg *signer) node(id string) *object {
	v, _ := sg.prompt.Get(id)
	n, _ := v.(*object)
	return n
}

func (sg *signer) ancestry(id string, ancestors *[]string, order map[string]int) {
	n := sg.node(id)
	if n == nil {
		return
	}
	inputs := n.getObject("inputs")
	for _, k := range sortedPy(inputs.Keys()) {
		v, _ := inputs.Get(k)
		if from, _, ok := isLink(v); ok {
			if _, seen := order[from]; !seen {
				*ancestors = append(*ancestors, from)
				order[from] = len(*ancestors) - 1
				sg.ancestry(from, ancestors, order)
			}
		}
	}
}

func (sg *signer) immediate(b *strings.Builder, id string, order map[string]int) {
	n := sg.node(id)
	if n == nil {
		b.WriteString("[nan#" + sg.nonce() + "]")
		return
	}
	class, _ := n.getString("class_type")
	b.WriteString("[" + strconv.Quote(class) + ",")
	canonical(b, sg.isChanged(id), sg.nonce)
	// No simulated class is NOT_IDEMPOTENT or takes a hidden UNIQUE_ID, so
	// the node id is never part of the key: renumbered graphs hit the cache.
	inputs := n.getObject("inputs")
	for _, k := range sortedPy(inputs.Keys()) {
		v, _ := inputs.Get(k)
		b.WriteString("," + strconv.Quote(k) + "=")
		if from, socket, ok := isLink(v); ok {
			b.WriteString("ANCESTOR(" + strconv.Itoa(order[from]) + ",")
			canonical(b, socket, sg.nonce)
			b.WriteString(")")
		} else {
			canonical(b, v, sg.nonce)
		}
	}
	b.WriteString("]")
}
