package comfy

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// FuzzConvertUI feeds UI workflows to ConvertUI: it must never panic, fail only with a
// *ConvertError that names its cause, and a successful result must have every link
// resolved, encode to JSON, and either pass Validate or report a *WorkflowError.
//
//	go test ./comfy -run '^$' -fuzz FuzzConvertUI -fuzztime 60s
func FuzzConvertUI(f *testing.F) {
	info := convLoadInfo(f)
	uiFiles, err := filepath.Glob(filepath.Join(convFixtureDir, "workflows", "*.ui.json"))
	if err != nil || len(uiFiles) == 0 {
		f.Fatalf("no UI fixtures in %s: %v", convFixtureDir, err)
	}
	for _, file := range uiFiles {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	cases, _ := filepath.Glob(filepath.Join("testdata", "convert", "*.json"))
	for _, file := range cases {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var tc struct {
			UI json.RawMessage `json:"ui"`
		}
		if err := json.Unmarshal(data, &tc); err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		f.Add([]byte(tc.UI))
	}
	f.Add([]byte(`{"nodes":[],"links":[]}`))
	f.Add([]byte(`{"nodes":[{"id":1,"type":"Reroute","inputs":[{"name":"","type":"*","link":1}]}],"links":[[1,1,0,1,0,"*"]]}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, opts := range []*ConvertOptions{nil, {Strict: true, DynamicPrompts: true, Rand: rand.New(rand.NewPCG(1, 1))}} {
			wf, err := ConvertUI(data, info, opts)
			if err != nil {
				var ce *ConvertError
				if !errors.As(err, &ce) {
					t.Fatalf("error is %T, not *ConvertError: %v", err, err)
				}
				if ce.Err == nil || ce.Reason == "" {
					t.Fatalf("ConvertError without cause or reason: %#v", ce)
				}
				continue
			}
			for _, id := range wf.NodeIDs() {
				n := wf[id]
				if n == nil || n.ClassType == "" || info[n.ClassType] == nil {
					t.Fatalf("node %s: not a known class: %#v", id, n)
				}
				for name, v := range n.Inputs {
					if l, ok := AsLink(v); ok && wf[l.NodeID] == nil {
						t.Fatalf("node %s input %q links to absent node %q", id, name, l.NodeID)
					}
				}
			}
			if _, err := json.Marshal(wf); err != nil {
				t.Fatalf("result does not encode: %v", err)
			}
			if err := wf.Validate(); err != nil {
				var we *WorkflowError
				if !errors.As(err, &we) || len(we.Problems) == 0 {
					t.Fatalf("Validate failed without a *WorkflowError: %v", err)
				}
			}
		}
	})
}
