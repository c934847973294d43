package comfysim_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image/jpeg"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

// TestGeneratedSid: without clientId the server makes a uuid4 hex sid.
func TestGeneratedSid(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ws := dialWS(t, b.base, "")
	m := ws.next()
	require.Equal(t, "status", m.Type)
	require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{32}$`), m.Data["sid"])
}

// TestReconnectReplay: a client reconnecting with the same clientId while
// its prompt runs gets status, then the id-less executing; the old socket
// leaves the routing table.
func TestReconnectReplay(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	old := dialWS(t, b.base, "c1")
	old.next()
	run := b.queue(t, map[string]any{"prompt": blocker(), "client_id": "c1"})
	old.waitProgress(run)

	fresh := dialWS(t, b.base, "c1")
	st := fresh.next()
	require.Equal(t, "status", st.Type)
	require.Equal(t, "c1", st.Data["sid"])
	require.Equal(t, `{"type": "executing", "data": {"node": "3"}}`, string(fresh.next().Raw))
	next := fresh.next()
	require.Contains(t, []string{"progress_state", "progress"}, next.Type, "the run's messages now reach the new socket")

	_, _ = b.postRaw(t, "/interrupt", nil)
	ms := fresh.untilDone(run)
	require.Equal(t, "execution_interrupted", ms[len(ms)-3].Type)

	// After the run, a new connection gets no replay.
	late := dialWS(t, b.base, "c1")
	late.next()
	p := b.queue(t, map[string]any{"prompt": emptyImageSave("after"), "client_id": "c1"})
	first := late.next()
	require.Equal(t, "status", first.Type, "no executing replay once the prompt ended")
	late.untilDone(p)
}

// TestBroadcastWithoutClientID: a prompt without client_id sends only the
// broadcast messages of §6's routing table.
func TestBroadcastWithoutClientID(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{PreviewMethod: "auto"})
	ws := dialWS(t, b.base, "watcher")
	ws.next()
	p := b.queue(t, map[string]any{"prompt": txt2img(3, 2)})
	ms := ws.until(func(m msg) bool {
		return m.Type == "status" && m.Data["status"].(map[string]any)["exec_info"].(map[string]any)["queue_remaining"] == json.Number("0")
	})
	seen := map[string]bool{}
	for _, m := range ms {
		seen[m.Type] = true
	}
	require.Equal(t, map[string]bool{"status": true, "progress_state": true, "progress": true, "binary": true}, seen)
	h := waitHistory(t, b, p)
	require.Equal(t, "success", h["status"].(map[string]any)["status_str"])

	// An interrupted prompt without client_id broadcasts execution_interrupted.
	run := b.queue(t, map[string]any{"prompt": blocker()})
	ws.waitProgress(run)
	_, _ = b.postRaw(t, "/interrupt", map[string]any{"prompt_id": run})
	m := ws.until(func(m msg) bool { return m.Type == "execution_interrupted" })
	require.Equal(t, run, m[len(m)-1].Data["prompt_id"])
}

// TestFeatureFlagsAndPreviews: type 4 previews to a client that negotiated
// supports_preview_metadata, type 1 to the others.
func TestFeatureFlagsAndPreviews(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{PreviewMethod: "auto"})

	meta := dialWS(t, b.base, "meta")
	meta.next()
	meta.send(map[string]any{"type": "feature_flags", "data": map[string]any{"supports_preview_metadata": true}})
	require.Equal(t, `{"type": "feature_flags", "data": {"supports_preview_metadata": true, "max_upload_size": 104857600.0}}`, string(meta.next().Raw))

	p := b.queue(t, map[string]any{"prompt": txt2img(5, 2), "client_id": "meta"})
	ms := forPrompt(meta.untilDone(p), p)
	seq := types(ms)
	i := indexOf(seq, "progress")
	require.Equal(t, []string{"progress_state", "binary", "progress", "progress_state", "binary", "progress"}, seq[i-2:i+4])
	f := ms[i-1].Raw
	require.Equal(t, uint32(4), binary.BigEndian.Uint32(f[:4]))
	n := binary.BigEndian.Uint32(f[4:8])
	require.Equal(t, `{"node_id": "3", "prompt_id": "`+p+`", "display_node_id": "3", "parent_node_id": null, "real_node_id": "3", "image_type": "image/jpeg"}`, string(f[8:8+n]))
	img, err := jpeg.Decode(bytes.NewReader(f[8+n:]))
	require.NoError(t, err)
	require.Equal(t, 512, img.Bounds().Dx(), "previews fit --preview-size 512")

	plain := dialWS(t, b.base, "plain")
	plain.next()
	// A first frame that is not feature_flags ends negotiation.
	plain.send(map[string]any{"type": "hello"})
	plain.send(map[string]any{"type": "feature_flags", "data": map[string]any{"supports_preview_metadata": true}})
	p2 := b.queue(t, map[string]any{"prompt": txt2img(6, 2), "client_id": "plain"})
	ms = forPrompt(plain.untilDone(p2), p2)
	seq = types(ms)
	require.NotContains(t, seq, "feature_flags")
	i = indexOf(seq, "progress")
	require.Equal(t, []string{"progress_state", "progress", "binary"}, seq[i-1:i+2])
	f = ms[i+1].Raw
	require.Equal(t, []byte{0, 0, 0, 1, 0, 0, 0, 1}, f[:8], "type 1, format 1 (JPEG)")
	_, err = jpeg.Decode(bytes.NewReader(f[8:]))
	require.NoError(t, err)
}

// TestNoPreviewsByDefault: --preview-method none sends no binary frames.
func TestNoPreviewsByDefault(t *testing.T) {
	t.Parallel()
	b := setup(t, comfysim.Options{})
	ws := dialWS(t, b.base, "c")
	ws.next()
	p := b.queue(t, map[string]any{"prompt": txt2img(5, 3), "client_id": "c"})
	require.NotContains(t, types(ws.untilDone(p)), "binary")
}

func indexOf(l []string, s string) int {
	for i, x := range l {
		if x == s {
			return i
		}
	}
	return -1
}
