package comfy

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"
	"time"
)

// Run a target with e.g. `go test -fuzz FuzzDecodeBinaryFrame ./comfy`. Without -fuzz
// the seed corpus runs as ordinary tests.

func FuzzDecodeBinaryFrame(f *testing.F) {
	be := func(vs ...uint32) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.BigEndian.AppendUint32(b, v)
		}
		return b
	}
	f.Add([]byte{})
	f.Add(be(1))
	f.Add(append(be(1, 1), 0xff, 0xd8, 0xff))
	f.Add(append(be(1, 2), "\x89PNG"...))
	f.Add(append(be(3, 1), "3step 4/20"...))
	f.Add(append(be(3, 0xffffffff), "x"...))
	meta := `{"node_id":"3","prompt_id":"p","display_node_id":"3","parent_node_id":null,"real_node_id":"3","image_type":"image/jpeg"}`
	f.Add(append(append(be(4, uint32(len(meta))), meta...), 0xff, 0xd8))
	f.Add(append(be(4, 2), "{}"...))
	f.Add(append(be(4, 3), "{}"...))
	f.Add(append(be(2), 1, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeBinaryFrame(b)
		if err != nil {
			if fr != nil {
				t.Fatal("frame with error")
			}
			return
		}
		_ = fr.ContentType()
		ev := Event{Type: EventPreviewImage, Binary: fr}
		if v, err := ev.Decode(); err != nil || v != fr {
			t.Fatal("binary event decodes to its frame")
		}
		switch fr.Type {
		case BinaryPreviewImageWithMetadata:
			// The metadata is re-encoded, so compare decoded forms.
			enc, err := EncodeBinaryFrame(fr)
			if err != nil {
				t.Fatal(err)
			}
			again, err := DecodeBinaryFrame(enc)
			if err != nil {
				t.Fatalf("type 4 round trip: %v", err)
			}
			m1, _ := json.Marshal(fr.Metadata)
			m2, _ := json.Marshal(again.Metadata)
			if !bytes.Equal(again.Image, fr.Image) || !bytes.Equal(m1, m2) {
				t.Fatalf("type 4 round trip changed the frame: %s / %s", m1, m2)
			}
		default:
			enc, err := EncodeBinaryFrame(fr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, b) {
				t.Fatalf("round trip changed the frame:\n%x\n%x", b, enc)
			}
		}
	})
}

func FuzzEventDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"status","data":{"status":{"exec_info":{"queue_remaining":1}},"sid":"abc"}}`,
		`{"type":"status","data":{"status":{"exec_info":{"queue_remaining":1.5}}}}`,
		`{"type":"execution_start","data":{"prompt_id":"P","timestamp":1728600000000}}`,
		`{"type":"execution_cached","data":{"nodes":["1","2"],"prompt_id":"P","timestamp":1}}`,
		`{"type":"executing","data":{"node":null,"prompt_id":"P"}}`,
		`{"type":"executing","data":{"node":"2","display_node":"2","prompt_id":"P"}}`,
		`{"type":"executing","data":{"node":"5"}}`,
		`{"type":"progress","data":{"value":3,"max":20,"prompt_id":"P","node":"3"}}`,
		`{"type":"progress_state","data":{"prompt_id":"P","nodes":{"1":{"value":0.0,"max":1.0,"state":"running","node_id":"1","prompt_id":"P","display_node_id":"1","parent_node_id":null,"real_node_id":"1"}}}}`,
		`{"type":"executed","data":{"node":"2","display_node":"2","output":{"images":[{"filename":"a.png","subfolder":"","type":"output"}],"animated":[true]},"prompt_id":"P"}}`,
		`{"type":"executed","data":{"node":"2","display_node":"2","output":null,"prompt_id":"P"}}`,
		`{"type":"execution_success","data":{"prompt_id":"P","timestamp":1}}`,
		`{"type":"execution_error","data":{"prompt_id":"P","node_id":"2","node_type":"Morphology","executed":["1"],"exception_message":"boom","exception_type":"RuntimeError","traceback":["a","b"],"current_inputs":{"image":["tensor(…)"]},"current_outputs":["2"],"timestamp":1}}`,
		`{"type":"execution_error","data":{"prompt_id":"P","node_id":"2","node_type":"X","executed":[],"exception_message":"blocked","exception_type":"ExecutionBlocked","traceback":[],"current_inputs":[],"current_outputs":[]}}`,
		`{"type":"execution_interrupted","data":{"prompt_id":"P","node_id":"3","node_type":"KSampler","executed":["1"],"timestamp":1}}`,
		`{"type":"feature_flags","data":{"supports_preview_metadata":true,"max_upload_size":104857600.0}}`,
		`{"type":"custom","data":[1,2]}`,
		`{"type":"status"}`,
		`{"type":"","data":{}}`,
		`[1]`,
		`{"type":"executing","data":{"node":7,"prompt_id":["x"]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := parseTextFrame(b, time.Unix(0, 0))
		if err == nil {
			_, _ = ev.Decode()
			_ = executingDone(ev)
			if ev.Type == "" {
				t.Fatal("event without type")
			}
		}
		// The same bytes as other decoded shapes must not panic either.
		var h HistoryEntry
		if json.Unmarshal(b, &h) == nil {
			_, _ = h.Failed()
			_ = h.Interrupted()
			_ = h.Files()
			for _, m := range h.Status.Messages {
				_, _ = m.Event().Decode()
				_ = m.Timestamp()
			}
		}
		var q QueueItem
		_ = json.Unmarshal(b, &q)
		var o NodeOutput
		if json.Unmarshal(b, &o) == nil {
			_ = o.Files()
			_ = o.Text()
		}
		var sm StatusMessage
		_ = json.Unmarshal(b, &sm)
	})
}

func FuzzParseWorkflow(f *testing.F) {
	f.Add([]byte(`{"3":{"class_type":"KSampler","inputs":{"seed":18446744073709551615,"cfg":8.0,"model":["4",0]},"_meta":{"title":"K"}},"4":{"class_type":"CheckpointLoaderSimple","inputs":{"ckpt_name":"a"}}}`))
	f.Add([]byte(`{"1":{"class_type":"A","inputs":{"a":["2",0]}},"2":{"class_type":"B","inputs":{"b":["1",0]}}}`))
	f.Add([]byte(`{"1":{"class_type":"A","inputs":{"x":[2,0],"y":["9",-1],"z":{"__value__":[1,2]}}},"2":null}`))
	f.Add([]byte(`{"1":{"inputs":null,"_meta":null,"extra":{"k":[1e400]}}}`))
	f.Add([]byte(`{"nodes":[],"links":[]}`))
	f.Add([]byte(`{"1":{"class_type":"A","inputs":{"v":-0.0,"w":1E+2,"u":"\u00e9"}}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		wf, err := ParseWorkflow(b)
		if err != nil {
			return
		}
		_ = wf.Validate()
		_ = wf.NodeIDs()
		for _, id := range wf.NodeIDs() {
			_, _ = wf.ResolveNode(id)
			if n := wf[id]; n != nil {
				_ = n.Links()
				_ = n.Title()
			}
		}
		c := wf.Clone()
		out, err := json.Marshal(wf)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := ParseWorkflow(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		out2, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip not stable:\n%s\n%s", out, out2)
		}
		outc, err := json.Marshal(c)
		if err != nil || !bytes.Equal(out, outc) {
			t.Fatalf("clone differs: %v", err)
		}
		if survivesGenericDecode(b, "18446744073709551615") && !bytes.Contains(out, []byte("18446744073709551615")) {
			t.Fatalf("large integer lost: %s", out)
		}
	})
}

// survivesGenericDecode reports whether the number literal lit is still in b after a
// decode into plain values (numbers kept exact) and back: a literal under a key that a
// later duplicate overrides is not, so a parse that drops it loses nothing.
func survivesGenericDecode(b []byte, lit string) bool {
	if !bytes.Contains(b, []byte(lit)) {
		return false
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return false
	}
	out, err := json.Marshal(v)
	return err == nil && bytes.Contains(out, []byte(lit))
}
