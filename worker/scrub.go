package worker

import (
	"bytes"
	"encoding/json"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/comfyq/comfyq/job"
)

// A job's error is shown to whoever submitted the job (GET /v1/jobs/{id}, events,
// webhooks), not only to the operator. What a node reports (ComfyUI's exception
// messages and tracebacks, a failed connection) names the node's file system
// ("/home/gpu/ComfyUI/models/checkpoints/x.safetensors") and its internal address
// ("http://10.0.0.5:8188"). scrubError keeps the file names and drops the
// directories, and names the node by its configured name instead of its URL. The
// worker logs the error as it was.

// absPath matches an absolute file-system path of at least one directory, Unix
// (/opt/ComfyUI/execution.py) or Windows (C:\ComfyUI\main.py), after the start of
// the text or a separator that cannot be part of a URL's host. Group 1 is that
// separator, group 2 the directories, group 3 the file name.
var absPath = regexp.MustCompile(`(^|[\s"'(\[=,;])((?:/[^/\s"'<>|,;()\[\]]+)+/|[A-Za-z]:\\(?:[^\\\s"'<>|,;()\[\]]+\\)*)([^/\\\s"'<>|,;()\[\]]*)`)

// scrubber rewrites the texts of a job's error for its submitter.
type scrubber struct {
	nodeURL, nodeName string
}

// text scrubs one string.
func (s scrubber) text(t string) string {
	if s.nodeURL != "" {
		label := "node " + s.nodeName
		if s.nodeName == "" {
			label = "the node"
		}
		base := strings.TrimRight(s.nodeURL, "/")
		t = strings.ReplaceAll(t, base, label)
		if u, err := url.Parse(base); err == nil && u.Host != "" {
			t = strings.ReplaceAll(t, u.Host, label)
		}
	}
	return absPath.ReplaceAllStringFunc(t, func(m string) string {
		sub := absPath.FindStringSubmatch(m)
		name := sub[3]
		if name == "" {
			name = path.Base(strings.ReplaceAll(strings.TrimRight(sub[2], `/\`), `\`, "/"))
		}
		return sub[1] + name
	})
}

// scrubError returns a copy of e with its message, traceback and node_errors
// scrubbed. nil stays nil.
func (s scrubber) scrubError(e *job.Error) *job.Error {
	if e == nil {
		return nil
	}
	c := *e
	c.Message = s.text(e.Message)
	if len(e.Traceback) > 0 {
		c.Traceback = make([]string, len(e.Traceback))
		for i, l := range e.Traceback {
			c.Traceback[i] = s.text(l)
		}
	}
	if len(e.NodeErrors) > 0 {
		c.NodeErrors = s.json(e.NodeErrors)
	}
	return &c
}

// json scrubs every string of a JSON document (keys stay), keeping numbers exact.
func (s scrubber) json(raw json.RawMessage) json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return raw
	}
	out, err := json.Marshal(s.value(v))
	if err != nil {
		return raw
	}
	return out
}

func (s scrubber) value(v any) any {
	switch v := v.(type) {
	case string:
		return s.text(v)
	case []any:
		for i := range v {
			v[i] = s.value(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = s.value(v[k])
		}
	}
	return v
}
