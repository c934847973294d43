package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/producer"
)

func submitCommand(b base) *cli.Command {
	o := &submitOptions{base: b}
	return &cli.Command{
		Name:      "submit",
		Usage:     "submit a job (a workflow file or a template) and optionally wait for it",
		ArgsUsage: "(--workflow FILE | --template NAME) [--param k=v] [--set id.inputs.x=v] [--image TARGET=PATH|URL] [--wait] [--json]",
		Description: `Submits a generation job, to Redis (--redis) or through an API server (--api URL
--api-key KEY). --workflow takes an API-format workflow ("Export (API)"
in ComfyUI) or a UI-format one (converted with --object-info). Values of --param and
--set are read as JSON when they parse (numbers, true/false, "quoted"), else as text.
--image uploads a local file (or passes a URL) into an input, e.g.
--image 10.inputs.image=./cat.png.

Prints the job id; with --wait, follows the job to the end (a progress bar on a
terminal), prints the outputs, and exits non-zero unless it succeeded (2: failed,
3: canceled). --json prints the Job JSON instead.

Examples:

  comfyq submit --redis redis://127.0.0.1:6379/0 --workflow flux.api.json --set 6.inputs.text="a red fox" --wait
  comfyq submit --api http://127.0.0.1:8080 --api-key KEY --template txt2img --param prompt="a red fox" --param seed=7`,
		Flags: flagList([]cli.Flag{
			stringFlag(&o.RedisURL, "redis", "COMFYQ_REDIS_URL", "", "Redis URL"),
		}, apiClientFlags(&o.APIURL, &o.APIKey, "API key for --api"), []cli.Flag{
			stringFlag(&o.Workflow, "workflow", "", "", "workflow JSON file (API or UI format); - reads standard input"),
			stringFlag(&o.Template, "template", "", "", "template name"),
			listFlag(&o.Params, "param", "", "template parameter NAME=VALUE"),
			listFlag(&o.Sets, "set", "", "input override NODE.inputs.NAME=VALUE (NODE: id, title or class)"),
			listFlag(&o.Images, "image", "", "input file TARGET=PATH|URL (TARGET: NODE.inputs.NAME, or a template's image parameter)"),
			stringFlag(&o.Queue, "queue", "COMFYQ_QUEUE", "default", "queue"),
			durationFlag(&o.Timeout, "timeout", "", 0, "job timeout on the node (default 10m)"),
			intFlag(&o.MaxAttempts, "max-attempts", "", 0, "attempts before the job fails (default 4)"),
			stringFlag(&o.Webhook, "webhook", "", "", "webhook URL for this job's events"),
			listFlag(&o.Metadata, "metadata", "", "metadata KEY=VALUE stored with the job"),
			stringFlag(&o.IdempotencyKey, "idempotency-key", "", "", "a retried submit with the same key returns the same job"),
			boolFlag(&o.RandomizeSeeds, "randomize-seeds", "", false, "give every seed a new random value (ComfyUI caches identical prompts)"),
			stringFlag(&o.ObjectInfo, "object-info", "COMFYQ_OBJECT_INFO", "", "object_info file or ComfyUI URL, to convert UI-format workflows"),
			boolFlag(&o.Wait, "wait", "", false, "wait for the job to end"),
			boolFlag(&o.JSON, "json", "", false, "print JSON"),
		}),
		Action: action(o, nil),
	}
}

// submitOptions are the flags of comfyq submit.
type submitOptions struct {
	base
	RedisURL, APIURL, APIKey                                       string
	Workflow, Template, Queue, Webhook, IdempotencyKey, ObjectInfo string
	Params, Sets, Images, Metadata                                 []string
	Timeout                                                        time.Duration
	MaxAttempts                                                    int
	RandomizeSeeds, Wait, JSON                                     bool
}

func (o *submitOptions) Validate() error {
	if o.APIURL == "" {
		if err := required("redis", "COMFYQ_REDIS_URL", o.RedisURL); err != nil {
			return err
		}
	}
	if o.Timeout < 0 || o.MaxAttempts < 0 {
		return usagef("--timeout and --max-attempts must not be negative")
	}
	return nil
}

func (o *submitOptions) Run(ctx context.Context) error {
	spec := job.Spec{Template: o.Template, Queue: o.Queue, MaxAttempts: o.MaxAttempts,
		IdempotencyKey: o.IdempotencyKey, RandomizeSeeds: o.RandomizeSeeds, TimeoutS: int(o.Timeout.Seconds())}
	if o.Workflow != "" {
		data, err := readFileOrStdin(o.Workflow)
		if err != nil {
			return err
		}
		spec.Workflow = data
	}
	var err error
	if spec.Params, err = valuesOf(o.Params, "--param"); err != nil {
		return err
	}
	if spec.Set, err = valuesOf(o.Sets, "--set"); err != nil {
		return err
	}
	md, err := keyValues(o.Metadata, "--metadata")
	if err != nil {
		return err
	}
	if len(md) > 0 {
		spec.Metadata = map[string]any{}
		for k, v := range md {
			spec.Metadata[k] = v
		}
	}
	if o.Webhook != "" {
		spec.Webhook = &job.WebhookSpec{URL: o.Webhook}
	}
	imgs, err := keyValues(o.Images, "--image")
	if err != nil {
		return err
	}
	for target, src := range imgs {
		is, imgErr := imageSource(src)
		if imgErr != nil {
			return imgErr
		}
		if spec.Images == nil {
			spec.Images = map[string]job.ImageSource{}
		}
		spec.Images[target] = is
	}
	var cfg producer.Config
	if o.ObjectInfo != "" {
		cfg.ObjectInfo = objectInfoSource(o.ObjectInfo)
	}
	p, err := openJobs(o.APIURL, o.APIKey, o.RedisURL, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	j, err := p.Enqueue(ctx, spec)
	if err != nil {
		return describeAPIError(describeSpecError(err))
	}
	if !o.Wait {
		if o.JSON {
			return printJSON(o.Out, j)
		}
		fmt.Fprintln(o.Out, j.ID)
		return nil
	}
	if !o.JSON {
		fmt.Fprintf(o.Err, "job %s queued on %q\n", j.ID, j.Queue)
	}
	return waitAndReport(ctx, o.base, p, j.ID, o.JSON)
}

// waitAndReport follows a job to its end, showing progress on a terminal, and prints
// the result. The exit code tells the final state.
func waitAndReport(ctx context.Context, b base, p job.Client, id string, asJSON bool) error {
	bar := newProgressBar(b.Err)
	last, err := job.Follow(ctx, p, id, func(j *job.Job) {
		if !asJSON {
			bar.update(j)
		}
	})
	bar.done()
	if ctx.Err() != nil {
		return fmt.Errorf("stopped waiting; the job goes on: comfyq status %s", id)
	}
	if err != nil {
		return err
	}
	return reportJob(b, last, asJSON)
}

func reportJob(b base, j *job.Job, asJSON bool) error {
	if asJSON {
		if err := printJSON(b.Out, j); err != nil {
			return err
		}
	} else {
		printJob(b.Out, j)
	}
	switch j.Status {
	case job.StatusFailed:
		return &exitError{code: 2, err: fmt.Errorf("job %s failed: %s", j.ID, j.Error.Error())}
	case job.StatusCanceled:
		return &exitError{code: 3, err: fmt.Errorf("job %s was canceled", j.ID)}
	}
	return nil
}

func printJob(w io.Writer, j *job.Job) {
	fmt.Fprintf(w, "job      %s\nstatus   %s\nqueue    %s\nattempt  %d of %d\n", j.ID, j.Status, j.Queue, j.Attempt, j.MaxAttempts)
	if j.NodeName != "" {
		fmt.Fprintf(w, "node     %s\n", j.NodeName)
	}
	if j.Progress != nil && !j.Status.Terminal() {
		fmt.Fprintf(w, "progress %.0f%% %s\n", j.Progress.Fraction*100, progressDetail(j.Progress))
	}
	if j.Timings != nil {
		fmt.Fprintf(w, "timings  queued %dms, execution %dms, upload %dms, total %dms\n",
			j.Timings.QueuedMS, j.Timings.ExecutionMS, j.Timings.UploadMS, j.Timings.TotalMS)
	}
	if j.Error != nil {
		fmt.Fprintf(w, "error    %s: %s\n", j.Error.Code, j.Error.Message)
		if j.Error.NodeID != "" {
			fmt.Fprintf(w, "         at node %s (%s) %s\n", j.Error.NodeID, j.Error.NodeClass, j.Error.ExceptionType)
		}
		if len(j.Error.NodeErrors) > 0 {
			fmt.Fprintf(w, "         node errors: %s\n", j.Error.NodeErrors)
		}
	}
	for _, o := range j.Outputs {
		if o.Kind == job.KindText {
			fmt.Fprintf(w, "output   node %s text: %s\n", o.NodeID, o.Text)
			continue
		}
		where := o.URL
		if where == "" {
			where = o.Key
		}
		fmt.Fprintf(w, "output   node %s %s %s (%d bytes) %s\n", o.NodeID, o.Kind, o.Filename, o.Size, where)
	}
}

func progressDetail(p *job.Progress) string {
	s := ""
	if p.NodeClass != "" {
		s = p.NodeClass
	}
	if p.Steps > 0 {
		s += fmt.Sprintf(" step %d/%d", p.Step, p.Steps)
	}
	if p.NodesTotal > 0 {
		s += fmt.Sprintf(" (nodes %d/%d)", p.NodesDone, p.NodesTotal)
	}
	return strings.TrimSpace(s)
}

// progressBar draws one self-rewriting line on a terminal, and nothing elsewhere.
type progressBar struct {
	w     io.Writer
	tty   bool
	drawn bool
	start time.Time
}

func newProgressBar(w io.Writer) *progressBar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progressBar{w: w, tty: tty, start: time.Now()}
}

func (b *progressBar) update(j *job.Job) {
	if !b.tty {
		return
	}
	frac := 0.0
	detail := ""
	if j.Progress != nil {
		frac, detail = j.Progress.Fraction, progressDetail(j.Progress)
	}
	const width = 24
	filled := int(frac * width)
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	fmt.Fprintf(b.w, "\r\033[K%-9s %s %3.0f%% %s  %s", j.Status, bar, frac*100, detail, time.Since(b.start).Round(100*time.Millisecond))
	b.drawn = true
}

func (b *progressBar) done() {
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
	}
}

func valuesOf(pairs []string, what string) (map[string]any, error) {
	kv, err := keyValues(pairs, what)
	if err != nil || len(kv) == 0 {
		return nil, err
	}
	out := map[string]any{}
	for k, v := range kv {
		out[k] = parseValue(v)
	}
	return out, nil
}

// maxCLIImage bounds a local file sent inline with a submission.
const maxCLIImage = 50 << 20

func imageSource(src string) (job.ImageSource, error) {
	if u, err := url.Parse(src); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return job.ImageSource{URL: src}, nil
	}
	st, err := os.Stat(src)
	if err != nil {
		return job.ImageSource{}, fmt.Errorf("--image: %w", err)
	}
	if st.Size() > maxCLIImage {
		return job.ImageSource{}, fmt.Errorf("--image %s: %d bytes is over the %d-byte limit for inline files; put it in storage or behind a URL", src, st.Size(), maxCLIImage)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return job.ImageSource{}, fmt.Errorf("--image: %w", err)
	}
	return job.ImageSource{Base64: base64.StdEncoding.EncodeToString(data), Filename: filepath.Base(src)}, nil
}

func readFileOrStdin(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, 64<<20))
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return data, nil
}

// objectInfoSource reads object_info from a file or a ComfyUI base URL, once.
func objectInfoSource(src string) func(ctx context.Context) (comfy.ObjectInfo, error) {
	return func(ctx context.Context) (comfy.ObjectInfo, error) {
		if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
			c, err := comfy.New(comfy.Config{BaseURL: src})
			if err != nil {
				return nil, err
			}
			defer c.Close()
			return c.ObjectInfo(ctx)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		return comfy.ParseObjectInfo(data)
	}
}

// describeSpecError renders a refused submission with its details.
func describeSpecError(err error) error {
	var se *job.SpecError
	if !errors.As(err, &se) {
		return err
	}
	msg := fmt.Sprintf("refused (%s): %s", se.Code, se.Message)
	if se.Field != "" {
		msg = fmt.Sprintf("refused (%s) %s: %s", se.Code, se.Field, se.Message)
	}
	if se.Details != nil {
		if d, err := json.Marshal(se.Details); err == nil {
			msg += "\ndetails: " + string(d)
		}
	}
	return &exitError{code: 2, err: errors.New(msg)}
}
