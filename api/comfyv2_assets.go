package api

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"lukechampine.com/blake3"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/storage"
)

// Assets of the Comfy API v2: records with a UUID over content-addressed blobs.
//
// A blob is one stored object, named by its blake3 hash in Redis
// (comfyq:v2:blob:<hex> → its storage key, size and type) and stored once whoever
// uploads it. A tenant may mint an asset over a blob only after it uploaded those
// bytes itself (a grant, comfyq:v2:grant:<tenant>, counts its assets per blob), so a
// hash is a lookup key, never the authority to read another tenant's content; a
// miss and "not yours" are the same 404 (by-hash, from-hash), and an upload of bytes
// another tenant stored answers as new (created_new). An asset record
// (comfyq:v2:asset:<id>) names its blob, its owner (the tenant of the key that made it,
// or of the job that output it) and its file path. Every file output of a job is an asset too:
// its id is derived from the job and the output's key, and its record is minted when
// the job is first shown through /api/v2, kept as long as the job.

var (
	blakeHash = regexp.MustCompile(`^blake3:([0-9a-f]{64})$`)
	// outputNamespace derives the asset ids of job outputs (UUIDv5).
	outputNamespace = uuid.MustParse("6f1c3f0e-5d1a-4f7e-9a8b-3c2d1e0f4a5b")
)

const (
	maxFilePath = 1024
	maxTags     = 32
	maxTagLen   = 128
)

// assetRecord is an asset as Redis keeps it.
type assetRecord struct {
	ID          string    `json:"id"`
	Owner       string    `json:"owner"`
	Hash        string    `json:"hash,omitempty"` // blake3:<hex>; empty for outputs (not computed)
	Size        int64     `json:"size"`
	ContentType string    `json:"content_type"`
	FilePath    string    `json:"file_path,omitempty"`
	Key         string    `json:"key"`            // the blob's key in the Server's store; "" for a text output
	Text        string    `json:"text,omitempty"` // the bytes of a text output
	Tags        []string  `json:"tags,omitempty"`
	JobID       string    `json:"job_id,omitempty"` // outputs: the job that made it
	CreatedAt   time.Time `json:"created_at"`
	Deleted     bool      `json:"deleted,omitempty"` // an output asset deleted through the API
}

// blobRecord is a stored blob.
type blobRecord struct {
	Key         string `json:"key"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
}

// V2Asset is the Asset object of the Comfy API v2.
type V2Asset struct {
	ID           string    `json:"id"`
	Hash         *string   `json:"hash"`
	SizeBytes    int64     `json:"size_bytes"`
	ContentType  string    `json:"content_type"`
	FilePath     *string   `json:"file_path"`
	CreatedNew   *bool     `json:"created_new,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	URL          string    `json:"url"`
	URLExpiresAt time.Time `json:"url_expires_at"`
	JobID        *string   `json:"job_id,omitempty"`
	Tags         []string  `json:"tags,omitempty"`
}

func assetKey(id string) string         { return jobstore.KeyPrefix + "v2:asset:" + id }
func blobKey(hexHash string) string     { return jobstore.KeyPrefix + "v2:blob:" + hexHash }
func blobRefsKey(hexHash string) string { return jobstore.KeyPrefix + "v2:blobrefs:" + hexHash }
func grantKey(owner string) string      { return jobstore.KeyPrefix + "v2:grant:" + owner }
func newAssetID() (string, error)       { return job.NewID() }

// hexOf returns the hex digits of a "blake3:<hex>" hash.
func hexOf(hash string) (string, bool) {
	m := blakeHash.FindStringSubmatch(hash)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// outputAssetID is the asset id of a job's output: the same whenever it is shown.
func outputAssetID(jobID, key string) string {
	return uuid.NewSHA1(outputNamespace, []byte(jobID+"\x00"+key)).String()
}

// getAsset reads an asset the identity may use; a miss, a deleted asset and
// another tenant's are the same job.ErrNotFound-like 404.
func (s *Server) getAsset(ctx context.Context, id identity, assetID string) (*assetRecord, error) {
	notFound := errorf(http.StatusNotFound, CodeNotFound, "no such asset")
	if !job.ValidID(assetID) {
		return nil, notFound
	}
	data, err := s.rdb.Get(ctx, assetKey(assetID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("api: read asset: %w", err)
	}
	var rec assetRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("api: decode asset: %w", err)
	}
	if rec.Deleted || !id.may(rec.Owner) {
		return nil, notFound
	}
	return &rec, nil
}

// contentURL is a short-lived URL of a stored object: presigned where the store can,
// else the asset's content route of this API (which needs the key).
func (s *Server) contentURL(ctx context.Context, r *http.Request, assetID, key string) (string, time.Time) {
	// A presigned URL is reused for a quarter of its life, as /v1 does (presigning
	// costs more than the rest of a job's answer).
	exp := time.Now().Add(s.cfg.URLTTL).UTC().Truncate(time.Second)
	if key == "" { // a text output: served from its record
		return s.baseURL(r) + v2Prefix + "/assets/" + assetID + "/content", exp
	}
	if u, cachedExp, ok := s.v2.urls.get(key); ok {
		return u, cachedExp
	}
	u, err := s.storage.URL(ctx, key, s.cfg.URLTTL)
	if err == nil {
		s.v2.urls.put(key, u, exp, s.cfg.URLTTL/4)
		return u, exp
	}
	if !errors.Is(err, storage.ErrNoURL) {
		s.log.Warn("asset URL", "asset_id", assetID, "err", err)
	}
	return s.baseURL(r) + v2Prefix + "/assets/" + assetID + "/content", exp
}

func (s *Server) presentAsset(ctx context.Context, r *http.Request, rec *assetRecord) V2Asset {
	a := V2Asset{ID: rec.ID, SizeBytes: rec.Size, ContentType: rec.ContentType, FilePath: strPtr(rec.FilePath),
		CreatedAt: rec.CreatedAt, JobID: strPtr(rec.JobID), Tags: rec.Tags, Hash: strPtr(rec.Hash)}
	a.URL, a.URLExpiresAt = s.contentURL(ctx, r, rec.ID, rec.Key)
	return a
}

// v2UploadAsset serves POST /api/v2/assets: multipart with content_type, file_path,
// optional expected_hash and tags, then file (last: it is streamed into storage,
// hashed on the way, never held whole).
func (s *Server) v2UploadAsset(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := s.identity(r)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "upload an asset as multipart/form-data with the fields content_type, file_path and file")
	}
	// The multipart framing and the small fields get a MiB beyond the file's limit.
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxAssetBytes+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return &job.SpecError{Code: CodeInvalidRequest, Message: "the multipart body cannot be read: " + err.Error()}
	}
	var rec assetRecord
	var expected string
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return &job.SpecError{Code: CodeInvalidRequest, Field: "file", Message: "the file field is missing"}
		}
		if err != nil {
			return multipartError(err)
		}
		name := part.FormName()
		if name == "file" {
			if rec.ContentType == "" || rec.FilePath == "" {
				return &job.SpecError{Code: CodeInvalidRequest, Field: "file", Message: "content_type and file_path are required and must come before the file field"}
			}
			return s.storeUpload(ctx, w, r, id, &rec, expected, part)
		}
		value, err := io.ReadAll(io.LimitReader(part, maxFilePath+1))
		if err != nil {
			return multipartError(err)
		}
		v := string(value)
		switch name {
		case "content_type":
			if _, _, err := mime.ParseMediaType(v); err != nil || len(v) > 255 {
				return &job.SpecError{Code: CodeInvalidRequest, Field: "content_type", Message: "content_type is a MIME type such as image/png"}
			}
			rec.ContentType = v
		case "file_path":
			if err := checkFilePath(v); err != nil {
				return err
			}
			rec.FilePath = v
		case "expected_hash":
			if _, ok := hexOf(v); !ok {
				return &job.SpecError{Code: CodeInvalidRequest, Field: "expected_hash", Message: "expected_hash is blake3:<64 lower-case hex digits>"}
			}
			expected = v
		case "tags":
			if len(rec.Tags) >= maxTags || v == "" || len(v) > maxTagLen {
				return &job.SpecError{Code: CodeInvalidRequest, Field: "tags", Message: fmt.Sprintf("at most %d tags of 1-%d bytes", maxTags, maxTagLen)}
			}
			rec.Tags = append(rec.Tags, v)
		default:
			return &job.SpecError{Code: CodeInvalidRequest, Field: name, Message: "unknown field (known: file, content_type, file_path, expected_hash, tags)"}
		}
	}
}

func multipartError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return &job.SpecError{Code: CodeInvalidRequest, Message: "the multipart body is malformed: " + err.Error()}
}

func checkFilePath(p string) error {
	if p == "" || len(p) > maxFilePath || strings.ContainsAny(p, "\x00\r\n\\") || strings.HasPrefix(p, "/") {
		return &job.SpecError{Code: CodeInvalidRequest, Field: "file_path", Message: "file_path is a relative path such as photo.png (at most 1024 bytes)"}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return &job.SpecError{Code: CodeInvalidRequest, Field: "file_path", Message: "file_path has an empty, . or .. segment"}
		}
	}
	return nil
}

// limitedReader fails once more than n bytes were read, so that storage.Put stores
// nothing of a file over the limit.
type limitedReader struct {
	r     io.Reader
	n     int64
	limit int64
}

var errAssetTooLarge = errors.New("api: asset over its limit")

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.limit {
		return n, errAssetTooLarge
	}
	return n, err
}

// storeUpload streams the file into a new object while hashing it, then dedups by
// hash: a blob already stored keeps its object and the new one is deleted.
func (s *Server) storeUpload(ctx context.Context, w http.ResponseWriter, r *http.Request, id identity, rec *assetRecord, expected string, body io.Reader) error {
	assetID, err := newAssetID()
	if err != nil {
		return err
	}
	key := "assets/" + assetID
	h := blake3.New(32, nil)
	lr := &limitedReader{r: io.TeeReader(body, h), limit: s.cfg.MaxAssetBytes}
	obj, err := s.storage.Put(ctx, key, lr, storage.PutOptions{ContentType: rec.ContentType, Size: -1})
	if err != nil {
		_ = s.storage.Delete(context.WithoutCancel(ctx), key)
		var mbe *http.MaxBytesError
		if errors.Is(err, errAssetTooLarge) || errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "the asset is larger than %d bytes", s.cfg.MaxAssetBytes)
		}
		if ctx.Err() != nil {
			return errClientGone
		}
		return fmt.Errorf("api: store asset: %w", err)
	}
	hexHash := hex.EncodeToString(h.Sum(nil))
	hash := "blake3:" + hexHash
	if expected != "" && expected != hash {
		_ = s.storage.Delete(context.WithoutCancel(ctx), key)
		e := errorf(http.StatusConflict, CodeHashMismatch, "the bytes received hash to %s, not the expected_hash %s; nothing was stored", hash, expected)
		e.info.Details = map[string]any{"expected_hash": expected, "computed_hash": hash}
		return e
	}
	replayID, idemKey, fp, err := s.assetIdempotency(ctx, r, id.owner,
		map[string]any{"hash": hash, "content_type": rec.ContentType, "file_path": rec.FilePath, "tags": rec.Tags})
	if err != nil || replayID != "" {
		_ = s.storage.Delete(context.WithoutCancel(ctx), key)
		if err != nil {
			return err
		}
		prev, getErr := s.getAsset(ctx, id, replayID)
		if getErr != nil {
			return getErr
		}
		w.Header().Set("Idempotency-Replayed", "true")
		writeJSON(w, http.StatusOK, s.presentAsset(ctx, r, prev))
		return nil
	}
	blob := blobRecord{Key: key, Size: obj.Size, ContentType: rec.ContentType}
	data, _ := json.Marshal(blob)
	created, err := s.rdb.SetNX(ctx, blobKey(hexHash), data, 0).Result()
	if err != nil {
		_ = s.storage.Delete(context.WithoutCancel(ctx), key)
		return fmt.Errorf("api: record blob: %w", err)
	}
	// fresh is created_new as the caller may know it: bytes another tenant stored are
	// new to this one, so an upload never tells whether someone else has them.
	fresh := created
	if !created {
		// Bytes the platform already has: keep one copy.
		_ = s.storage.Delete(context.WithoutCancel(ctx), key)
		existing, err := s.readBlob(ctx, hexHash)
		if err != nil {
			return err
		}
		blob = *existing
		if !id.admin {
			n, err := s.rdb.HGet(ctx, grantKey(id.owner), hexHash).Int64()
			if err != nil && !errors.Is(err, redis.Nil) {
				return fmt.Errorf("api: read grant: %w", err)
			}
			fresh = n <= 0
		}
	}
	rec.ID, rec.Owner, rec.Hash, rec.Size, rec.Key = assetID, id.owner, hash, blob.Size, blob.Key
	rec.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	if err := s.mintAsset(ctx, rec, hexHash); err != nil {
		return err
	}
	if idemKey != "" {
		s.recordAssetKey(ctx, idemKey, fp, assetID)
	}
	status := http.StatusOK
	if fresh {
		status = http.StatusCreated
	}
	a := s.presentAsset(ctx, r, rec)
	a.CreatedNew = &fresh
	s.log.Info("v2 asset uploaded", "asset_id", assetID, "tenant", id.owner, "size", blob.Size, "new_blob", created)
	writeJSON(w, status, a)
	return nil
}

func (s *Server) readBlob(ctx context.Context, hexHash string) (*blobRecord, error) {
	data, err := s.rdb.Get(ctx, blobKey(hexHash)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, errorf(http.StatusNotFound, CodeBlobNotFound, "no blob with this hash that you may use")
	}
	if err != nil {
		return nil, fmt.Errorf("api: read blob: %w", err)
	}
	var b blobRecord
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("api: decode blob: %w", err)
	}
	return &b, nil
}

// mintAsset writes the asset record and counts it on its blob and the owner's grant.
func (s *Server) mintAsset(ctx context.Context, rec *assetRecord, hexHash string) error {
	data, _ := json.Marshal(rec)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, assetKey(rec.ID), data, 0)
		p.Incr(ctx, blobRefsKey(hexHash))
		p.HIncrBy(ctx, grantKey(rec.Owner), hexHash, 1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("api: record asset: %w", err)
	}
	return nil
}

// mayMint reports whether the identity may mint over the blob: it uploaded it (or is
// an admin and the blob exists).
func (s *Server) mayMint(ctx context.Context, id identity, hexHash string) (*blobRecord, error) {
	blob, err := s.readBlob(ctx, hexHash)
	if err != nil {
		return nil, err
	}
	if id.admin {
		return blob, nil
	}
	n, err := s.rdb.HGet(ctx, grantKey(id.owner), hexHash).Int64()
	if errors.Is(err, redis.Nil) || (err == nil && n <= 0) {
		return nil, errorf(http.StatusNotFound, CodeBlobNotFound, "no blob with this hash that you may use")
	}
	if err != nil {
		return nil, fmt.Errorf("api: read grant: %w", err)
	}
	return blob, nil
}

type fromHashRequest struct {
	Hash     string   `json:"hash"`
	FilePath string   `json:"file_path,omitempty"`
	Tags     []string `json:"tags,omitempty"`
}

func (s *Server) v2AssetFromHash(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var req fromHashRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	hexHash, ok := hexOf(req.Hash)
	if !ok {
		return &job.SpecError{Code: CodeInvalidRequest, Field: "hash", Message: "hash is blake3:<64 lower-case hex digits>"}
	}
	if req.FilePath != "" {
		if err := checkFilePath(req.FilePath); err != nil {
			return err
		}
	}
	if len(req.Tags) > maxTags {
		return &job.SpecError{Code: CodeInvalidRequest, Field: "tags", Message: fmt.Sprintf("at most %d tags", maxTags)}
	}
	id := s.identity(r)
	blob, err := s.mayMint(ctx, id, hexHash)
	if err != nil {
		return err
	}
	assetID, err := newAssetID()
	if err != nil {
		return err
	}
	rec := &assetRecord{ID: assetID, Owner: id.owner, Hash: req.Hash, Size: blob.Size, ContentType: blob.ContentType,
		FilePath: req.FilePath, Key: blob.Key, Tags: req.Tags, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := s.mintAsset(ctx, rec, hexHash); err != nil {
		return err
	}
	a := s.presentAsset(ctx, r, rec)
	no := false
	a.CreatedNew = &no
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func (s *Server) v2HeadAssetByHash(w http.ResponseWriter, r *http.Request) error {
	hexHash, ok := hexOf(r.PathValue("hash"))
	if !ok {
		return &job.SpecError{Code: CodeInvalidRequest, Field: "hash", Message: "hash is blake3:<64 lower-case hex digits>"}
	}
	if _, err := s.mayMint(r.Context(), s.identity(r), hexHash); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) v2GetAsset(w http.ResponseWriter, r *http.Request) error {
	rec, err := s.getAsset(r.Context(), s.identity(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.presentAsset(r.Context(), r, rec))
	return nil
}

// v2AssetContent redirects to a fresh presigned URL where the store has them (S3),
// else serves the bytes, honouring one Range.
func (s *Server) v2AssetContent(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if r.PathValue("part") != "content" {
		return errorf(http.StatusNotFound, CodeNotFound, "no route %s %s; see /docs", r.Method, r.URL.Path)
	}
	rec, err := s.getAsset(ctx, s.identity(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	if rec.Key == "" {
		return serveBytes(w, r, rec, io.NopCloser(strings.NewReader(rec.Text)), int64(len(rec.Text)))
	}
	u, urlErr := s.storage.URL(ctx, rec.Key, s.cfg.URLTTL)
	switch {
	case urlErr == nil:
		w.Header().Set("Location", u)
		w.WriteHeader(http.StatusFound)
		return nil
	case !errors.Is(urlErr, storage.ErrNoURL):
		return urlErr
	}
	body, obj, err := s.storage.Get(ctx, rec.Key)
	if err != nil {
		return err
	}
	return serveBytes(w, r, rec, body, obj.Size)
}

// serveBytes writes an asset's content of size bytes, honouring one Range.
func serveBytes(w http.ResponseWriter, r *http.Request, rec *assetRecord, body io.ReadCloser, size int64) error {
	defer body.Close()
	start, end, partial, err := parseRange(r.Header.Get("Range"), size)
	if err != nil {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		return err
	}
	h := w.Header()
	h.Set("Content-Type", rec.ContentType)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(orName(rec.FilePath, rec.ID))}))
	h.Set("Content-Length", strconv.FormatInt(end-start, 10))
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, size))
		status = http.StatusPartialContent
	}
	if start > 0 {
		if _, err := io.CopyN(io.Discard, body, start); err != nil {
			return err
		}
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = io.CopyN(w, body, end-start)
	}
	return nil
}

func orName(p, fallback string) string {
	if p == "" {
		return fallback
	}
	return p
}

// parseRange reads one "bytes=a-b", "bytes=a-" or "bytes=-n" range of a size-byte
// object: [start, end). Several ranges are answered whole (allowed by RFC 9110).
func parseRange(h string, size int64) (start, end int64, partial bool, err error) {
	if h == "" {
		return 0, size, false, nil
	}
	unsat := errorf(http.StatusRequestedRangeNotSatisfiable, CodeRangeNotSatisfiable, "the range %q is outside the %d bytes of the content", h, size)
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, 0, false, unsat
	}
	if a == "" {
		n, perr := strconv.ParseInt(b, 10, 64)
		if perr != nil || n <= 0 || size == 0 {
			return 0, 0, false, unsat
		}
		return max(size-n, 0), size, true, nil
	}
	first, perr := strconv.ParseInt(a, 10, 64)
	if perr != nil || first < 0 || first >= size {
		return 0, 0, false, unsat
	}
	last := size - 1
	if b != "" {
		l, perr := strconv.ParseInt(b, 10, 64)
		if perr != nil || l < first {
			return 0, 0, false, unsat
		}
		last = min(l, size-1)
	}
	return first, last + 1, true, nil
}

// v2DeleteAsset removes an asset record; the blob goes with its last asset. An
// output's asset is only marked deleted: its object stays the job's output (/v1).
func (s *Server) v2DeleteAsset(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	rec, err := s.getAsset(ctx, s.identity(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	if rec.JobID != "" {
		rec.Deleted = true // and its hash is no blob of the asset index: nothing to count down
		data, _ := json.Marshal(rec)
		if err := s.rdb.Set(ctx, assetKey(rec.ID), data, redis.KeepTTL).Err(); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	hexHash, _ := hexOf(rec.Hash)
	var refs *redis.IntCmd
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, assetKey(rec.ID))
		p.HIncrBy(ctx, grantKey(rec.Owner), hexHash, -1)
		refs = p.Decr(ctx, blobRefsKey(hexHash))
		return nil
	}); err != nil {
		return fmt.Errorf("api: delete asset: %w", err)
	}
	if refs.Val() <= 0 {
		s.rdb.Del(context.WithoutCancel(ctx), blobKey(hexHash), blobRefsKey(hexHash))
		if err := s.storage.Delete(context.WithoutCancel(ctx), rec.Key); err != nil {
			s.log.Warn("could not delete the blob of a deleted asset", "asset_id", rec.ID, "key", rec.Key, "err", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// v2Outputs presents a job's file outputs as assets, minting their records on the
// way (once: SET NX; kept as long as the job).
func (s *Server) v2Outputs(ctx context.Context, r *http.Request, j *job.Job) []V2Output {
	outs := []V2Output{}
	if len(j.Outputs) == 0 {
		return outs
	}
	ttl := s.retention()
	pipe := s.rdb.Pipeline()
	queued := 0
	for i, o := range j.Outputs {
		var rec assetRecord
		switch {
		case o.Key != "":
			key, ok := storage.Unlocate(s.storage, storage.Location{Bucket: o.Bucket, Key: o.Key})
			if !ok {
				continue
			}
			ctype := o.ContentType
			if ctype == "" {
				ctype = storage.TypeByKey(key)
			}
			rec = assetRecord{ID: outputAssetID(j.ID, o.Key), Size: o.Size, ContentType: ctype, FilePath: o.Filename, Key: key}
			if o.BLAKE3 != "" {
				rec.Hash = "blake3:" + o.BLAKE3
			}
		case o.Kind == job.KindText:
			// A text output (a node's "text" list) is an asset whose bytes are the text,
			// kept in its record.
			sum := blake3.Sum256([]byte(o.Text))
			rec = assetRecord{ID: outputAssetID(j.ID, fmt.Sprintf("text:%d:%s", i, o.NodeID)), Size: int64(len(o.Text)),
				ContentType: "text/plain; charset=utf-8", FilePath: fmt.Sprintf("%s_%d.txt", storage.SanitizeName(o.NodeID), i),
				Text: o.Text, Hash: "blake3:" + hex.EncodeToString(sum[:])}
		default:
			continue
		}
		id, key, ctype, hash := rec.ID, rec.Key, rec.ContentType, rec.Hash
		rec.JobID, rec.CreatedAt, rec.Tags = j.ID, j.CreatedAt, []string{"output"}
		if s.v2.minted.add(id) {
			rec.Owner = j.Tenant // an output is its job's tenant's
			data, _ := json.Marshal(rec)
			pipe.SetNX(ctx, assetKey(id), data, ttl)
			queued++
		}
		u, exp := s.contentURL(ctx, r, id, key)
		kind := o.Kind
		if kind == "" {
			kind = job.KindFile
		}
		outs = append(outs, V2Output{NodeID: o.NodeID, Name: rec.FilePath, Type: kind, ContentType: ctype, SizeBytes: rec.Size,
			ID: id, Hash: strPtr(hash), URL: u, URLExpiresAt: exp, JobID: j.ID})
	}
	if queued == 0 {
		return outs
	}
	if _, err := pipe.Exec(ctx); err != nil {
		s.log.Warn("could not record the output assets of a job", "job_id", j.ID, "err", err)
		for _, o := range outs {
			s.v2.minted.forget(o.ID)
		}
	}
	return outs
}

// resolveAssetRefs replaces every core/ASSET reference among the workflow's inputs
// by the asset's file name and returns the inputs the worker uploads to its node
// (as it does for /v1 images): input path → the asset's object.
func (s *Server) resolveAssetRefs(ctx context.Context, id identity, wf comfy.Workflow) (map[string]job.ImageSource, error) {
	images := map[string]job.ImageSource{}
	for nodeID, n := range wf {
		for name, v := range n.Inputs {
			m, ok := v.(map[string]any)
			if !ok || m["__type"] != "core/ASSET" {
				continue
			}
			info, _ := m["info"].(map[string]any)
			assetID, _ := info["id"].(string)
			missing := func(msg string) error {
				e := errorf(http.StatusUnprocessableEntity, CodeMissingAsset, "node %s input %q: %s", nodeID, name, msg)
				e.info.Details = map[string]any{"node_id": nodeID, "input": name, "asset_id": assetID}
				return e
			}
			if assetID == "" {
				return nil, missing("a core/ASSET reference needs info.id")
			}
			rec, err := s.getAsset(ctx, id, assetID)
			if err != nil {
				var he *httpError
				if errors.As(err, &he) && he.status == http.StatusNotFound {
					return nil, missing(fmt.Sprintf("no asset %q that you may use", assetID))
				}
				return nil, err
			}
			filename := storage.SanitizeName(path.Base(orName(rec.FilePath, rec.ID)))
			images[nodeID+".inputs."+name] = job.ImageSource{Key: storage.Locate(s.storage, rec.Key).Key, Filename: filename}
			n.Inputs[name] = filename
		}
	}
	if len(images) == 0 {
		return nil, nil
	}
	return images, nil
}
