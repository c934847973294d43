package worker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/internal/media"
	"github.com/comfyq/comfyq/internal/netguard"
	"github.com/comfyq/comfyq/internal/retry"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/storage"
)

// uploadInputs uploads each input file of the job to the node and wires the name into
// its target input.
//
// ComfyUI has no route that deletes a file from input/, so inputs cannot be removed when
// the job ends. They are named after their content instead ("comfyq-<sha256>.ext",
// without overwrite): ComfyUI's upload keeps an existing file with identical bytes and
// returns its name (server.py image_upload, compare_image_hash), so a node holds each
// distinct input once however many jobs use it, and a prompt resubmitted after a node
// restart still finds its input.
func (r *run) uploadInputs(ctx context.Context, wf comfy.Workflow) error {
	targets := make([]string, 0, len(r.p.Images))
	for t := range r.p.Images {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, target := range targets {
		spooled, sum, name, err := r.fetchInput(ctx, target, r.p.Images[target])
		if err != nil {
			return err
		}
		ref, err := r.c.UploadImage(ctx, comfy.UploadRequest{
			Name: "comfyq-" + sum[:32] + path.Ext(name),
			Body: spooled,
		})
		spooled.Close()
		if err != nil {
			return r.nodeErr(fmt.Errorf("upload input %s to the node: %w", target, err))
		}
		value := ref.Filename
		if ref.Subfolder != "" {
			value = ref.Subfolder + "/" + value
		}
		if ref.Type != "" && ref.Type != "input" {
			value += " [" + ref.Type + "]"
		}
		if err := wf.Set(target, value); err != nil {
			return &job.Error{Code: job.CodeInvalidWorkflow, Message: fmt.Sprintf("input %s: %v", target, err)}
		}
	}
	return nil
}

// fetchInput reads input src of target into a temporary file named by its SHA-256
// (spool). Fetching and reading are one try: a transient failure at either (5xx,
// timeout, a connection or storage error, even after the first bytes) is retried
// with backoff inside the attempt; a permanent one (permanentInputError: 4xx, a
// forbidden URL, too large, not an image, a missing key) fails the job with
// invalid_input at once. Still failing after the retries, the attempt fails and is
// retried later.
func (r *run) fetchInput(ctx context.Context, target string, src job.ImageSource) (io.ReadCloser, string, string, error) {
	var (
		spooled   io.ReadCloser
		sum, name string
	)
	policy := retry.Policy{
		Backoff:     retry.Backoff{Initial: 500 * time.Millisecond, Max: 8 * time.Second, Jitter: retry.EqualJitter},
		MaxAttempts: r.w.cfg.InputRetries + 1,
		Retryable:   func(err error) bool { return !permanentInputError(err) },
		OnRetry: func(_ int, err error, d time.Duration) {
			r.log.Warn("could not fetch an input, retrying", "target", target, "err", err, "in", d)
		},
	}
	err := retry.Do(ctx, policy, func(ctx context.Context) error {
		body, n, err := r.openInput(ctx, src)
		if err != nil {
			return err
		}
		defer body.Close()
		spooled, sum, err = spool(sniffed(body), r.w.cfg.Inputs.MaxBytes)
		name = n
		return err
	})
	switch {
	case err == nil:
		return spooled, sum, name, nil
	case permanentInputError(err):
		return nil, "", "", &job.Error{Code: job.CodeInvalidInput, Message: fmt.Sprintf("input %s: %v", target, err)}
	}
	return nil, "", "", fmt.Errorf("input %s could not be fetched: %w", target, err)
}

// openInput opens an input file from a URL (through the SSRF guard), base64 or storage.
func (r *run) openInput(ctx context.Context, src job.ImageSource) (io.ReadCloser, string, error) {
	name := src.Filename
	switch {
	case src.URL != "":
		body, _, err := r.w.inputs.Fetch(ctx, src.URL)
		if err != nil {
			return nil, "", err
		}
		if name == "" {
			if u, err := url.Parse(src.URL); err == nil {
				name = path.Base(u.Path)
			}
		}
		return body, inputName(name), nil
	case src.Base64 != "":
		declared, data, _, err := media.DataURL(src.Base64)
		if err == nil {
			err = media.CheckDeclared(declared)
		}
		if err != nil {
			return nil, "", fmt.Errorf("%w: %w", errBadInput, err)
		}
		if int64(base64.StdEncoding.DecodedLen(len(data))) > r.w.cfg.Inputs.MaxBytes {
			return nil, "", fmt.Errorf("%w: base64 input is larger than %d bytes", errBadInput, r.w.cfg.Inputs.MaxBytes)
		}
		dec := base64.NewDecoder(base64.StdEncoding, strings.NewReader(data))
		return io.NopCloser(dec), inputName(name), nil
	case src.Key != "":
		body, _, err := r.w.cfg.Storage.Get(ctx, storage.InputKey(r.w.cfg.Storage, src.Key))
		if err != nil {
			return nil, "", fmt.Errorf("storage key %q: %w", src.Key, err)
		}
		if name == "" {
			name = path.Base(src.Key)
		}
		return body, inputName(name), nil
	}
	return nil, "", fmt.Errorf("%w: no url, base64 or key", errBadInput)
}

// sniffed passes body through, failing with errBadInput when its first bytes are not
// an image, video or audio file (package media): the API checks base64 inputs at
// submission, this checks every source, URLs and storage keys included.
func sniffed(body io.Reader) io.Reader {
	br := bufio.NewReaderSize(body, media.SniffLen)
	head, err := br.Peek(media.SniffLen)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return io.MultiReader(bytes.NewReader(head), &errReader{err})
	}
	if ct, ok := media.Sniff(head); !ok {
		return &errReader{fmt.Errorf("%w: the file is not an image, video or audio file (its bytes read as %s)", errBadInput, ct)}
	}
	return br
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

// errBadInput marks an input that is wrong as given.
var errBadInput = errors.New("worker: bad input")

// permanentInputError tells a failure to get an input that another try cannot fix (the
// job's input is wrong) from a transient one (5xx, timeout, connection, storage error).
func permanentInputError(err error) bool {
	var se *netguard.StatusError
	if errors.As(err, &se) {
		return se.StatusCode >= 400 && se.StatusCode < 500 &&
			se.StatusCode != http.StatusRequestTimeout && se.StatusCode != http.StatusTooManyRequests
	}
	for _, perm := range []error{errBadInput, netguard.ErrInvalidURL, netguard.ErrForbiddenAddress,
		netguard.ErrTooManyRedirects, netguard.ErrTooLarge, storage.ErrNotFound, storage.ErrInvalidKey} {
		if errors.Is(err, perm) {
			return true
		}
	}
	return false
}

func inputName(name string) string {
	name = storage.SanitizeName(name)
	if name == "" || name == "." || name == "/" || path.Ext(name) == "" {
		name += ".png"
	}
	return name
}

// spool copies an input into a temporary file, hashing it on the way, so that it can be
// named after its content before the upload; an input of more than maxBytes fails
// with errBadInput, whatever its source. Closing the file removes it.
func spool(body io.Reader, maxBytes int64) (io.ReadCloser, string, error) {
	f, err := os.CreateTemp("", "comfyq-input-*")
	if err != nil {
		return nil, "", err
	}
	_ = os.Remove(f.Name()) // unlinked now, gone when closed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(body, maxBytes+1))
	if err == nil && n > maxBytes {
		err = fmt.Errorf("%w: the file is larger than %d bytes", errBadInput, maxBytes)
	}
	if err != nil {
		f.Close()
		return nil, "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, "", err
	}
	return f, hex.EncodeToString(h.Sum(nil)), nil
}
