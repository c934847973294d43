package worker

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"sort"
	"strings"
	"time"

	"lukechampine.com/blake3"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/internal/retry"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/storage"
)

// toUploading is the change of a job whose outputs are being collected.
func toUploading(j *job.Job) error {
	j.Status = job.StatusUploading
	return nil
}

// uploadingAfter is how long collect waits for early copies under way before it
// records the job uploading.
const uploadingAfter = 20 * time.Millisecond

// collect streams every output of the finished prompt from /view into storage and
// returns the outputs with their keys, sizes and digests, plus the upload time. It
// records uploading first unless recorded says it was: that write goes to Redis while
// the first output downloads, and is joined before any other write of the job. When
// every file was already copied while the prompt ran (early.go) there is nothing left
// to upload: the job goes from running to its end in one write.
func (r *run) collect(ctx context.Context, entry *comfy.HistoryEntry, recorded bool) ([]job.Output, int64, error) {
	start := time.Now()
	nodeIDs := make([]string, 0, len(entry.Outputs))
	for id := range entry.Outputs {
		nodeIDs = append(nodeIDs, id)
	}
	sort.Slice(nodeIDs, func(i, k int) bool { return lessNodeID(nodeIDs[i], nodeIDs[k]) })
	// The outputs in order: texts as they are, files with their storage keys.
	type item struct {
		text job.Output
		file *comfy.OutputFile
		key  string
	}
	var items []item
	usedKeys := map[string]bool{}
	allCopied := true
	// An early copy still under way gets a moment to end: a job whose last small file
	// is nearly stored goes on to its end without an uploading write.
	copiedBy := start.Add(uploadingAfter)
	for _, nodeID := range nodeIDs {
		out := entry.Outputs[nodeID]
		for _, text := range out.Text() {
			items = append(items, item{text: job.Output{NodeID: nodeID, Kind: job.KindText, Text: text}})
		}
		for _, f := range out.Files() {
			if f.Type == "temp" && !r.w.cfg.UploadPreviews {
				continue
			}
			key, err := r.outputKey(nodeID, f, usedKeys)
			if err != nil {
				return nil, 0, err
			}
			r.early.keep(key)
			allCopied = allCopied && r.early.copiedBy(nodeID, f, key, copiedBy)
			items = append(items, item{text: job.Output{NodeID: nodeID}, file: &f, key: key})
		}
	}

	join := func() {}
	if !recorded && !allCopied {
		written := make(chan struct{})
		go func() {
			defer close(written)
			_, _ = r.w.store.Update(ctx, r.id, toUploading)
		}()
		join = func() { <-written }
	}
	defer join()
	var outputs []job.Output
	// The outputs stored so far are recorded before the next upload starts; the
	// last ones ride in the job's end (succeed), one write fewer a job.
	uncommitted := false
	for _, it := range items {
		if it.file == nil {
			outputs = append(outputs, it.text)
			continue
		}
		if uncommitted && !allCopied {
			join()
			r.commitOutputs(ctx, outputs)
		}
		o, early := r.early.take(it.text.NodeID, *it.file, it.key)
		if !early {
			var err error
			if o, err = r.upload(ctx, it.text.NodeID, *it.file, it.key); err != nil {
				return nil, 0, err
			}
		}
		outputs = append(outputs, o)
		uncommitted = true
	}
	return outputs, time.Since(start).Milliseconds(), nil
}

// commitOutputs records the outputs copied so far in the job record, so that a client
// polling the job (or the Comfy API v2 event stream) sees them while the next output
// uploads, not only when the job ends. A failed write is only logged: the final
// record of succeed carries them all.
func (r *run) commitOutputs(ctx context.Context, outputs []job.Output) {
	_, err := r.w.store.Update(ctx, r.id, func(j *job.Job) error {
		j.Outputs = append([]job.Output(nil), outputs...)
		return nil
	})
	if err != nil && !errors.Is(err, job.ErrTerminal) {
		r.log.Warn("could not record an output before the end of the job", "err", err)
	}
}

// outputKey is the storage key of output file f of node nodeID: prefix/job/node/name,
// with _2, _3 … before the extension for a name already in used, to which it is added.
func (r *run) outputKey(nodeID string, f comfy.OutputFile, used map[string]bool) (string, error) {
	name := storage.SanitizeName(f.Filename)
	key, err := storage.JoinKey(r.w.cfg.OutputPrefix, r.id, storage.SanitizeName(nodeID), name)
	if err != nil {
		return "", &job.Error{Code: job.CodeUploadFailed, Message: err.Error()}
	}
	for i := 2; used[key]; i++ { // same file name twice in one node: keep both
		ext := path.Ext(name)
		key, _ = storage.JoinKey(r.w.cfg.OutputPrefix, r.id, storage.SanitizeName(nodeID),
			fmt.Sprintf("%s_%d%s", strings.TrimSuffix(name, ext), i, ext))
	}
	used[key] = true
	return key, nil
}

// upload copies one output file to key, retrying with backoff while storage fails.
func (r *run) upload(ctx context.Context, nodeID string, f comfy.OutputFile, key string) (job.Output, error) {
	name := storage.SanitizeName(f.Filename)
	// 1 s, 2 s, 4 s … 32 s between tries, UploadRetries times.
	policy := retry.Policy{
		Backoff:     retry.Backoff{Initial: time.Second, Max: 32 * time.Second},
		MaxAttempts: r.w.cfg.UploadRetries + 1,
		OnRetry: func(_ int, err error, d time.Duration) {
			r.log.Warn("output upload failed, retrying", "key", key, "err", err, "in", d)
		},
	}
	var o job.Output
	err := retry.Do(ctx, policy, func(ctx context.Context) error {
		var copyErr error
		o, copyErr = r.copyOnce(ctx, nodeID, f, key)
		return copyErr
	})
	switch {
	case err == nil:
		return o, nil
	case ctx.Err() != nil:
		return job.Output{}, ctx.Err()
	}
	return job.Output{}, &job.Error{Code: job.CodeUploadFailed, Message: fmt.Sprintf("copy %s to storage: %v", name, err)}
}

func (r *run) copyOnce(ctx context.Context, nodeID string, f comfy.OutputFile, key string) (job.Output, error) {
	file, err := r.c.View(ctx, f.FileRef, nil)
	if err != nil {
		return job.Output{}, fmt.Errorf("read from the node: %w", err)
	}
	defer file.Body.Close()
	ctype := contentType(f.Filename, file.ContentType)
	h := blake3.New(32, nil)
	obj, err := r.w.cfg.Storage.Put(ctx, key, io.TeeReader(file.Body, h), storage.PutOptions{ContentType: ctype, Size: file.Size})
	if err != nil {
		return job.Output{}, err
	}
	if file.Size >= 0 && obj.Size != file.Size {
		return job.Output{}, fmt.Errorf("short copy: %d of %d bytes", obj.Size, file.Size)
	}
	// The Job JSON names the object as the user's own S3 client would; the API
	// maps it back with storage.Unlocate.
	loc := storage.Locate(r.w.cfg.Storage, key)
	// The file name is reported as it was stored: the node's own may hold NUL, bidi
	// controls (which can disguise an extension) or "../", and a client may save the
	// file under it.
	o := job.Output{NodeID: nodeID, Kind: outputKind(f, ctype), Filename: storage.SanitizeName(f.Filename), Bucket: loc.Bucket, Key: loc.Key,
		Size: obj.Size, SHA256: obj.SHA256, BLAKE3: hex.EncodeToString(h.Sum(nil)), ContentType: ctype, Type: f.Type, Animated: f.Animated, Format: f.Format}
	if u, err := r.w.cfg.Storage.URL(ctx, key, r.w.cfg.URLTTL); err == nil {
		o.URL = u
	}
	return o, nil
}

// contentType prefers the type the extension names over a generic server answer.
func contentType(filename, served string) string {
	if ext := strings.ToLower(path.Ext(filename)); ext != "" {
		if t := extTypes[ext]; t != "" {
			return t
		}
		if t := mime.TypeByExtension(ext); t != "" {
			return t
		}
	}
	if served != "" {
		return served
	}
	return "application/octet-stream"
}

var extTypes = map[string]string{
	".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif",
	".mp4": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime", ".mkv": "video/x-matroska",
	".flac": "audio/flac", ".mp3": "audio/mpeg", ".wav": "audio/wav", ".ogg": "audio/ogg", ".opus": "audio/opus",
	".glb": "model/gltf-binary", ".gltf": "model/gltf+json", ".obj": "model/obj", ".svg": "image/svg+xml",
	".latent": "application/octet-stream", ".safetensors": "application/octet-stream",
}

func outputKind(f comfy.OutputFile, ctype string) string {
	switch {
	case strings.HasPrefix(ctype, "video/") || f.Animated || f.Key == "gifs":
		return job.KindVideo
	case strings.HasPrefix(ctype, "audio/") || f.Key == "audio":
		return job.KindAudio
	case strings.HasPrefix(ctype, "image/") && f.Key != "3d":
		return job.KindImage
	}
	return job.KindFile
}

func lessNodeID(a, b string) bool {
	if len(a) != len(b) && isDigits(a) && isDigits(b) {
		return len(a) < len(b)
	}
	return a < b
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
