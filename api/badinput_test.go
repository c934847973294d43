package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/job"
)

// The bad-input corpus: malformed and hostile requests in testdata/badinput/*.json,
// each file a JSON array of cases:
//
//	{
//	  "name":    "unique, human-readable",
//	  "method":  "POST",                        default POST
//	  "path":    "/v1/jobs",                    default /v1/jobs
//	  "auth":    "user" | "admin" | "none",     default user (a valid user key)
//	  "headers": {"Content-Type": "text/plain"}, added to or replacing the defaults;
//	                                             "" removes a header
//	  "body":    <any JSON value>,              sent as written; the string "$WF" is
//	                                             replaced by a valid workflow object
//	  "raw":     "text",                        sent verbatim instead (broken JSON)
//	  "raw_base64": "…",                        bytes sent verbatim (invalid UTF-8)
//	  "generate": {"kind": "deep_array", …},    a generated body (huge, deep, wide)
//	  "status":  400,
//	  "code":    "invalid_request",             error.code (required for 4xx)
//	  "field":   "timeout_s",                   error.field, checked when given
//	  "note":    "why this answer is right",
//	  "known_issue": "what is wrong today"      logged, not failed, until fixed
//	}
//
// A case with status 202 documents input the API accepts on purpose (the node, not
// the API, judges it); the test checks it enqueued exactly one job. Every other case
// must be refused with its 4xx and code, write nothing to Redis, leak nothing, and
// leave the server answering.
type badCase struct {
	Name     string            `json:"name"`
	Method   string            `json:"method"`
	Path     string            `json:"path"`
	Auth     string            `json:"auth"`
	Headers  map[string]string `json:"headers"`
	Body     json.RawMessage   `json:"body"`
	Raw      *string           `json:"raw"`
	RawB64   string            `json:"raw_base64"`
	Generate *generator        `json:"generate"`
	Status   int               `json:"status"`
	Code     string            `json:"code"`
	Field    *string           `json:"field"`
	Note     string            `json:"note"`
	// KnownIssue marks a case the server answers wrongly today: the test logs the
	// issue instead of failing, and fails once the answer is right, so that the mark
	// is removed and the case guards the fix.
	KnownIssue string `json:"known_issue"`

	file string
}

// generator describes a body too large or too deep to write out.
type generator struct {
	// Kind: deep_array, deep_object, big_metadata, big_base64, chain,
	// long_webhook_url, long_image_url, long_template_name, long_string (a string
	// input of Bytes), deep_input (an input value nested Depth deep), many_images
	// (Nodes LoadImage nodes, each with an image of the submission),
	// long_template_param (the corpus template's prompt parameter of Bytes).
	Kind string `json:"kind"`
	// Depth of deep_array and deep_object.
	Depth int `json:"depth"`
	// Field receives the generated value of deep_*; "" is the whole body.
	Field string `json:"field"`
	// Bytes is the size of big_metadata, big_base64 (decoded) and long_*.
	Bytes int `json:"bytes"`
	// Nodes is the length of a chain workflow; Cycle closes it into a loop, Dangling
	// makes its first node link to a node that does not exist.
	Nodes    int  `json:"nodes"`
	Cycle    bool `json:"cycle"`
	Dangling bool `json:"dangling"`
}

// validWorkflow replaces "$WF" in corpus bodies: two real nodes the simulator runs.
const validWorkflow = imageWorkflow

func loadBadInputs(t testing.TB) []badCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "badinput", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "testdata/badinput/*.json")
	var all []badCase
	names := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var cases []badCase
		require.NoError(t, dec.Decode(&cases), "%s", f)
		for i := range cases {
			c := &cases[i]
			c.file = filepath.Base(f)
			require.NotEmpty(t, c.Name, "%s: case #%d has no name", f, i+1)
			if other, dup := names[c.Name]; dup {
				t.Fatalf("%s: case %q is also in %s", f, c.Name, other)
			}
			names[c.Name] = c.file
			bodies := 0
			for _, set := range []bool{c.Body != nil, c.Raw != nil, c.RawB64 != "", c.Generate != nil} {
				if set {
					bodies++
				}
			}
			require.LessOrEqual(t, bodies, 1, "%s: %q: give at most one of body, raw, raw_base64, generate", f, c.Name)
			require.NotZero(t, c.Status, "%s: %q: no status", f, c.Name)
			if c.Status >= 400 {
				require.NotEmpty(t, c.Code, "%s: %q: a refusal needs its error code", f, c.Name)
			} else {
				require.Equal(t, http.StatusAccepted, c.Status, "%s: %q: a case is refused (4xx) or accepted (202)", f, c.Name)
				require.NotEmpty(t, c.Note, "%s: %q: an accepted case says why in its note", f, c.Name)
			}
			if c.Method == "" {
				c.Method = http.MethodPost
			}
			if c.Path == "" {
				c.Path = "/v1/jobs"
			}
			if c.Auth == "" {
				c.Auth = "user"
			}
			require.Contains(t, []string{"user", "admin", "none"}, c.Auth, "%s: %q", f, c.Name)
		}
		all = append(all, cases...)
	}
	return all
}

// body returns the bytes the case sends, and whether it sends any.
func (c *badCase) body(t testing.TB) ([]byte, bool) {
	t.Helper()
	switch {
	case c.Raw != nil:
		return []byte(*c.Raw), true
	case c.RawB64 != "":
		data, err := base64.StdEncoding.DecodeString(c.RawB64)
		require.NoError(t, err, "%s: %q: raw_base64", c.file, c.Name)
		return data, true
	case c.Body != nil:
		return bytes.ReplaceAll(c.Body, []byte(`"$WF"`), []byte(validWorkflow)), true
	case c.Generate != nil:
		data, err := c.Generate.build()
		require.NoError(t, err, "%s: %q", c.file, c.Name)
		return data, true
	}
	return nil, false
}

func (g *generator) build() ([]byte, error) {
	// wrap puts a value at Field of an otherwise valid submission.
	wrap := func(value []byte) []byte {
		switch g.Field {
		case "":
			return value
		case "workflow":
			return append(append([]byte(`{"workflow": `), value...), '}')
		default:
			var b bytes.Buffer
			fmt.Fprintf(&b, `{"workflow": %s, %q: `, validWorkflow, g.Field)
			b.Write(value)
			b.WriteByte('}')
			return b.Bytes()
		}
	}
	switch g.Kind {
	case "deep_array":
		return wrap(append(bytes.Repeat([]byte("["), g.Depth), bytes.Repeat([]byte("]"), g.Depth)...)), nil
	case "deep_object":
		var b bytes.Buffer
		b.Grow(g.Depth * 7)
		for range g.Depth {
			b.WriteString(`{"a": `)
		}
		b.WriteString("1")
		b.Write(bytes.Repeat([]byte("}"), g.Depth))
		return wrap(b.Bytes()), nil
	case "long_webhook_url":
		return []byte(fmt.Sprintf(`{"workflow": %s, "webhook": {"url": "https://93.184.215.14/%s"}}`, validWorkflow, strings.Repeat("a", g.Bytes))), nil
	case "long_image_url":
		return []byte(fmt.Sprintf(`{"workflow": %s, "images": {"1.inputs.image": {"url": "https://93.184.215.14/%s.png"}}}`, loadImageWorkflow, strings.Repeat("a", g.Bytes))), nil
	case "long_template_name":
		return []byte(fmt.Sprintf(`{"template": "%s"}`, strings.Repeat("a", g.Bytes))), nil
	case "big_metadata":
		return []byte(fmt.Sprintf(`{"workflow": %s, "metadata": {"x": "%s"}}`, validWorkflow, strings.Repeat("a", g.Bytes))), nil
	case "big_base64":
		b64 := base64.StdEncoding.EncodeToString(make([]byte, g.Bytes))
		return []byte(fmt.Sprintf(`{"workflow": %s, "images": {"1.inputs.image": {"base64": %q}}}`, loadImageWorkflow, b64)), nil
	case "long_template_param":
		return []byte(fmt.Sprintf(`{"template": "img2img", "params": {"prompt": "%s"}}`, strings.Repeat("a", g.Bytes))), nil
	case "long_string":
		return []byte(fmt.Sprintf(`{"workflow": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "%s"}}}}`, strings.Repeat("a", g.Bytes))), nil
	case "deep_input":
		deep := strings.Repeat(`{"__value__": `, g.Depth) + `"x"` + strings.Repeat("}", g.Depth)
		return []byte(fmt.Sprintf(`{"workflow": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": %s}}}}`, deep)), nil
	case "many_images":
		var wf, imgs bytes.Buffer
		for i := 1; i <= g.Nodes; i++ {
			fmt.Fprintf(&wf, `"%d": {"class_type": "LoadImage", "inputs": {"image": "x.png"}}, "s%d": {"class_type": "SaveImage", "inputs": {"images": ["%d", 0], "filename_prefix": "x"}},`, i, i, i)
			if i > 1 {
				imgs.WriteByte(',')
			}
			fmt.Fprintf(&imgs, `"%d.inputs.image": {"url": "https://93.184.215.14/%d.png"}`, i, i)
		}
		return []byte(fmt.Sprintf(`{"workflow": {%s "0": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}}, "images": {%s}}`, wf.String(), imgs.String())), nil
	case "chain":
		// n nodes, node i takes node i-1's output; node 1 takes node n's (cycle) or a
		// node that does not exist (dangling).
		var b bytes.Buffer
		b.WriteString(`{"workflow": {`)
		for i := 1; i <= g.Nodes; i++ {
			if i > 1 {
				b.WriteByte(',')
			}
			from := i - 1
			switch {
			case i == 1 && g.Cycle:
				from = g.Nodes
			case i == 1 && g.Dangling:
				from = g.Nodes + 1
			}
			if from == 0 {
				fmt.Fprintf(&b, `"%d": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}`, i)
			} else {
				fmt.Fprintf(&b, `"%d": {"class_type": "ImageInvert", "inputs": {"image": ["%d", 0]}}`, i, from)
			}
		}
		b.WriteString(`}}`)
		return b.Bytes(), nil
	}
	return nil, fmt.Errorf("unknown generator kind %q", g.Kind)
}

// loadImageWorkflow has an image input for the images cases.
const loadImageWorkflow = `{
 "1": {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}},
 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "in"}}
}`

// badInputTemplate is the template the corpus's template cases submit to: typed
// parameters with bounds (seed up to 2^64-1, steps 1-10000, denoise 0-1), a choice
// (sampler), a required prompt and an image parameter.
const badInputTemplate = `{
 "name": "img2img",
 "workflow": {
  "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "` + simModel + `"}},
  "10": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
  "11": {"class_type": "ImageScale", "inputs": {"image": ["10", 0], "upscale_method": "nearest-exact", "width": 64, "height": 64, "crop": "disabled"}},
  "12": {"class_type": "VAEEncode", "inputs": {"pixels": ["11", 0], "vae": ["4", 2]}},
  "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
  "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
  "3": {"class_type": "KSampler", "inputs": {"seed": 7, "steps": 8, "cfg": 7, "sampler_name": "euler", "scheduler": "normal",
        "denoise": 0.6, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["12", 0]}},
  "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
  "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "fox"}}
 },
 "params": [
  {"name": "prompt", "targets": ["6.inputs.text"], "required": true},
  {"name": "seed", "targets": ["3.inputs.seed"]},
  {"name": "steps", "targets": ["3.inputs.steps"]},
  {"name": "cfg", "targets": ["3.inputs.cfg"]},
  {"name": "sampler", "targets": ["3.inputs.sampler_name"]},
  {"name": "denoise", "targets": ["3.inputs.denoise"]},
  {"name": "photo", "targets": ["10.inputs.image"]}
 ]
}`

// badInputClient sends corpus requests: a timeout per request so that no case can
// hang the test, no connection reuse after a refused body.
var badInputClient = &http.Client{Timeout: 60 * time.Second}

// redisState is what a refused request must leave unchanged.
type redisState struct {
	keys  int64 // DBSIZE: every key, comfyq's and asynq's
	tasks int   // tasks in every asynq queue, in any state
	jobs  int   // job records in the index
}

func (b *bundle) redisState(t testing.TB) redisState {
	t.Helper()
	ctx := context.Background()
	keys, err := b.rdb.DBSize(ctx).Result()
	require.NoError(t, err)
	insp := asynq.NewInspectorFromRedisClient(b.rdb)
	queues, err := insp.Queues()
	require.NoError(t, err)
	tasks := 0
	for _, q := range queues {
		info, infoErr := insp.GetQueueInfo(q)
		require.NoError(t, infoErr)
		tasks += info.Size + info.Completed
	}
	jobs, _, err := b.jobs().List(ctx, job.ListOptions{Limit: 500})
	require.NoError(t, err)
	return redisState{keys: keys, tasks: tasks, jobs: len(jobs)}
}

// leaks are strings no answer may contain: stack traces, keys, addresses and paths of
// the server's backends.
func (b *bundle) leaks() []string {
	l := []string{"goroutine ", "panic", ".go:", "runtime.", "runtime/debug", userKey, adminKey, "redis://"}
	if c, ok := b.rdb.(interface{ Options() *redis.Options }); ok {
		l = append(l, c.Options().Addr)
	}
	if s := os.Getenv("AWS_SECRET_ACCESS_KEY"); s != "" {
		l = append(l, s)
	}
	if s := b.store.String(); s != "" {
		l = append(l, strings.TrimPrefix(s, "file://"))
	}
	return l
}

// send performs the case's request against the server.
func (b *bundle) send(t testing.TB, c *badCase) response {
	t.Helper()
	body, hasBody := c.body(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var rd io.Reader
	if hasBody {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, b.url+c.Path, rd)
	require.NoError(t, err, "%s: %q", c.file, c.Name)
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	switch c.Auth {
	case "user":
		req.Header.Set("Authorization", "Bearer "+userKey)
	case "admin":
		req.Header.Set("Authorization", "Bearer "+adminKey)
	}
	for k, v := range c.Headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := badInputClient.Do(req)
	if errors.Is(err, context.DeadlineExceeded) || (err != nil && strings.Contains(err.Error(), "Timeout")) {
		t.Fatalf("%s: %q: no answer within 60s: %v", c.file, c.Name, err)
	}
	require.NoError(t, err, "%s: %q", c.file, c.Name)
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	require.NoError(t, err, "%s: %q", c.file, c.Name)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// setupBadInput starts an API server with its default limits (32 MiB bodies, 20 MiB
// images, no private URLs) on a Redis of its own, and registers the corpus template.
func setupBadInput(t testing.TB) *bundle {
	t.Helper()
	b := setup(t, setupOpts{})
	r := b.do(t, "POST", "/v1/templates", adminKey, badInputTemplate)
	require.Equal(t, http.StatusCreated, r.status, "register the corpus template: %s", r.body)
	return b
}

// TestBadInputCorpus sends every case of testdata/badinput to a real API server (real
// Redis) and checks its answer: the expected status and error code, a well-formed JSON
// error without stack traces or secrets, nothing written to Redis (no job record, no
// task, no key at all), and a server that still answers afterwards.
func TestBadInputCorpus(t *testing.T) {
	t.Parallel()
	cases := loadBadInputs(t)
	refused := 0
	for _, c := range cases {
		if c.Status >= 400 {
			refused++
		}
	}
	require.GreaterOrEqual(t, refused, 100, "the corpus holds at least 100 refused inputs")
	b := setupBadInput(t)
	leaks := b.leaks()
	byStatus := map[int]int{}
	knownIssues, large := 0, 0
	// Cases run one after the other: each one's effect on Redis is measured alone.
	for i := range cases {
		c := &cases[i]
		ok := t.Run(c.file+"/"+c.Name, func(t *testing.T) {
			before := b.redisState(t)
			start := time.Now()
			r := b.send(t, c)
			took := time.Since(start)
			byStatus[r.status]++
			if c.KnownIssue != "" {
				require.NotEqual(t, c.Status, r.status, "%s: %q is answered right now: remove its known_issue", c.file, c.Name)
				t.Logf("KNOWN ISSUE %s: %q: %s (answer %d: %.300s)", c.file, c.Name, c.KnownIssue, r.status, r.body)
				knownIssues++
				return
			}
			if len(r.body) > 64<<10 {
				t.Logf("LARGE ANSWER %s: %q: %d bytes", c.file, c.Name, len(r.body))
				large++
			}
			require.Equal(t, c.Status, r.status, "%s: %q: body: %.2000s", c.file, c.Name, r.body)
			require.True(t, json.Valid(r.body), "the answer is JSON: %.2000s", r.body)
			for _, l := range leaks {
				require.NotContains(t, string(r.body), l, "the answer leaks %q", l)
			}
			after := b.redisState(t)
			if c.Status >= 400 {
				e := r.apiError(t)
				require.Equal(t, c.Code, e.Code, "body: %.2000s", r.body)
				if c.Field != nil {
					require.Equal(t, *c.Field, e.Field, "body: %.2000s", r.body)
				}
				require.Equal(t, before, after, "a refused request writes nothing to Redis")
			} else {
				var acc api.Accepted
				r.json(t, &acc)
				require.True(t, job.ValidID(acc.ID), "body: %s", r.body)
				require.Equal(t, before.jobs+1, after.jobs, "an accepted submission makes one job")
				require.Equal(t, before.tasks+1, after.tasks, "an accepted submission makes one task")
			}
			hz := b.do(t, "GET", "/healthz", "", nil)
			require.Equal(t, http.StatusOK, hz.status, "the server answers after the case")
			if took > 5*time.Second {
				t.Logf("slow answer: %s", took)
			}
		})
		if !ok && testing.Short() {
			break
		}
	}
	// The server still takes good work after the whole corpus.
	acc := b.submit(t, map[string]any{"workflow": jsonRaw(validWorkflow)})
	require.True(t, job.ValidID(acc.ID))
	statuses := make([]int, 0, len(byStatus))
	for s := range byStatus {
		statuses = append(statuses, s)
	}
	sort.Ints(statuses)
	var parts []string
	for _, s := range statuses {
		parts = append(parts, fmt.Sprintf("%d×%d", byStatus[s], s))
	}
	t.Logf("bad-input corpus: %d cases (%d refused), answers %s; %d known issues, %d answers over 64 KiB",
		len(cases), refused, strings.Join(parts, " "), knownIssues, large)
}

// FuzzSubmitBody posts arbitrary bodies to POST /v1/jobs of a real server: the answer
// is always a 202 or a 4xx with a well-formed JSON error (never a 5xx, never a hang),
// and a refused body writes nothing to Redis. The corpus bodies seed it.
func FuzzSubmitBody(f *testing.F) {
	for _, c := range loadBadInputs(f) {
		if c.Method != http.MethodPost || c.Path != "/v1/jobs" || c.Generate != nil {
			continue
		}
		if body, ok := c.body(f); ok {
			f.Add(body)
		}
	}
	f.Add([]byte(`{"workflow": ` + validWorkflow + `}`))
	// Private URLs are allowed so that address literals are accepted; a host name is
	// still looked up (to refuse one that does not exist), within the 2 s URL check.
	b := setup(f, setupOpts{config: func(c *api.Config) {
		c.AllowPrivateURLs = true
		c.MaxBodyBytes = 1 << 20
	}})
	f.Fuzz(func(t *testing.T, body []byte) {
		before := b.redisState(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url+"/v1/jobs", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+userKey)
		resp, err := badInputClient.Do(req)
		require.NoError(t, err)
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		r := response{status: resp.StatusCode, header: resp.Header, body: data}
		switch {
		case r.status == http.StatusAccepted:
			require.True(t, json.Valid(r.body), "body: %s", r.body)
		case r.status >= 400 && r.status < 500:
			r.apiError(t)
			require.Equal(t, before, b.redisState(t), "a refused body writes nothing; answer: %s", r.body)
		default:
			t.Fatalf("answer %d to %q: %s", r.status, body, r.body)
		}
	})
}
