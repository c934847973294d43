// Package s3 is the storage backend for Amazon S3 and S3-compatible services
// (MinIO, versitygw, Ceph RGW, Cloudflare R2, …), built on aws-sdk-go-v2.
//
// It registers the "s3" URL scheme with package storage:
//
//	s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true
//
// Query options: endpoint (the service's base URL; default AWS), region (default
// from the AWS chain, else us-east-1), path_style (bucket in the path rather
// than the host name; true for most self-hosted services), create_bucket (create
// the bucket if it is missing), part_size (multipart part size in bytes, default
// 8 MiB, at least 5 MiB) and concurrency (parts uploaded at once, default 2).
// Credentials come from the default AWS chain: AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared config files, web identity,
// instance roles.
//
// The prefix is prepended to every key: with the URL above, key "jobs/1/a.png"
// is stored as "prefix/jobs/1/a.png".
//
// # Uploads
//
// Put reads the first part (part_size bytes) into memory. An object that fits
// goes up in one PutObject, with its SHA-256 in the x-amz-meta-sha256 header, so
// content and checksum appear together. A larger object goes up as a multipart
// upload through the SDK's upload manager, with at most concurrency parts in
// flight: memory stays near (concurrency+2) × part_size whatever the object's
// size. Its SHA-256 is known only at the end, so Put then copies the object onto
// itself with the new metadata (a server-side copy, conditional on the ETag so
// that it never labels another writer's content). Objects over 5 GiB, which S3
// cannot copy in one request, are left without the sha256 metadata; Put still
// returns their SHA-256. If that copy fails, Put fails although the complete new
// content is in place, without its sha256 metadata.
//
// S3 allows 10,000 parts: an object of unknown size can be up to 10,000 ×
// part_size (78 GiB by default); with PutOptions.Size the parts grow to fit.
//
// Request and response checksums are computed only where the S3 API requires
// them, so that services which do not implement the newer AWS checksum headers
// work.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/storage/internal/digest"
)

func init() {
	storage.Register("s3", func(ctx context.Context, u *url.URL) (storage.Store, error) {
		cfg, err := ConfigFromURL(u)
		if err != nil {
			return nil, err
		}
		return New(ctx, cfg)
	})
}

const (
	// DefaultPartSize is the multipart part size when Config.PartSize is 0.
	DefaultPartSize = 8 << 20
	// MinPartSize is the smallest part size S3 accepts.
	MinPartSize = manager.MinUploadPartSize
	// DefaultConcurrency is the number of parts uploaded at once when
	// Config.Concurrency is 0.
	DefaultConcurrency = 2
	// DefaultPresignTTL is how long a URL is valid when URL is called with a
	// ttl <= 0 and Config.PresignTTL is 0.
	DefaultPresignTTL = time.Hour
	// MaxPresignTTL is the longest validity S3 allows for a presigned URL.
	MaxPresignTTL = 7 * 24 * time.Hour
	// maxCopySize is the largest object CopyObject copies in one request.
	maxCopySize = 5 << 30
	// metaSHA256 is the user metadata name holding the object's SHA-256.
	metaSHA256 = "sha256"
)

// Config configures a Store. Only Bucket is required.
type Config struct {
	// Bucket is the bucket's name. Required.
	Bucket string
	// Prefix is prepended, with a "/", to every key; it must itself be a valid
	// key (no leading or trailing "/"). Default: none.
	Prefix string
	// Endpoint is the base URL of an S3-compatible service, such as
	// "http://127.0.0.1:9000". Default: AWS's endpoint for the region.
	Endpoint string
	// Region is the bucket's region. Default: the AWS chain's region
	// (AWS_REGION, AWS_DEFAULT_REGION, the shared config), else "us-east-1".
	Region string
	// PathStyle puts the bucket in the URL path instead of the host name, as
	// most self-hosted services need. Default false.
	PathStyle bool
	// CreateBucket creates the bucket in New if it does not exist. Default
	// false: a missing bucket is an error of New.
	CreateBucket bool
	// PartSize is the size of the parts of a multipart upload, and the size up to
	// which an object goes up in one request. Default DefaultPartSize (8 MiB);
	// at least MinPartSize (5 MiB).
	PartSize int64
	// Concurrency is the number of parts of one upload sent at once. Peak
	// memory of a Put is about (Concurrency+2) × PartSize. Default
	// DefaultConcurrency (2).
	Concurrency int
	// PresignTTL is the validity of URLs when URL is called with ttl <= 0.
	// Default DefaultPresignTTL (1 hour); at most MaxPresignTTL (7 days).
	PresignTTL time.Duration
	// AWSConfig, if set, is used instead of loading the default AWS chain, for
	// programs that configure credentials or the HTTP client themselves. Region
	// and the checksum settings above still apply. Default nil.
	AWSConfig *aws.Config
}

// ConfigFromURL reads a Config from a storage URL of the form
// s3://bucket/prefix?endpoint=URL&region=R&path_style=true&create_bucket=true&part_size=N&concurrency=N.
// Unknown options are an error, so a misspelt one is not silently ignored.
func ConfigFromURL(u *url.URL) (Config, error) {
	if !strings.EqualFold(u.Scheme, "s3") {
		return Config{}, fmt.Errorf("s3: URL scheme is %q, want s3", u.Scheme)
	}
	if u.User != nil {
		return Config{}, fmt.Errorf("s3: storage URL %q must not hold credentials; use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", u.Redacted())
	}
	if u.Opaque != "" {
		return Config{}, fmt.Errorf("s3: storage URL %q is not of the form s3://bucket/prefix", u.Redacted())
	}
	cfg := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	for name, values := range u.Query() {
		v := values[len(values)-1]
		var err error
		switch name {
		case "endpoint":
			cfg.Endpoint = v
		case "region":
			cfg.Region = v
		case "path_style":
			cfg.PathStyle, err = strconv.ParseBool(v)
		case "create_bucket":
			cfg.CreateBucket, err = strconv.ParseBool(v)
		case "part_size":
			cfg.PartSize, err = strconv.ParseInt(v, 10, 64)
		case "concurrency":
			cfg.Concurrency, err = strconv.Atoi(v)
		default:
			return Config{}, fmt.Errorf("s3: unknown option %q in storage URL (known: endpoint, region, path_style, create_bucket, part_size, concurrency)", name)
		}
		if err != nil {
			return Config{}, fmt.Errorf("s3: option %s=%q: %w", name, v, err)
		}
	}
	return cfg, nil
}

// Store is a storage.Store in an S3 bucket.
type Store struct {
	cfg      Config
	client   *awss3.Client
	presign  *awss3.PresignClient
	uploader *manager.Uploader
}

var _ storage.Store = (*Store)(nil)

// New validates cfg, builds the S3 client and checks the bucket, creating it if
// cfg.CreateBucket is set.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: Config.Bucket is required (s3://bucket/prefix)")
	}
	if cfg.Prefix != "" {
		if err := storage.ValidateKey(cfg.Prefix); err != nil {
			return nil, fmt.Errorf("s3: Config.Prefix: %w", err)
		}
	}
	if cfg.Endpoint != "" {
		eu, err := url.Parse(cfg.Endpoint)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
			return nil, fmt.Errorf("s3: Config.Endpoint %q is not an http or https URL", cfg.Endpoint)
		}
	}
	switch {
	case cfg.PartSize == 0:
		cfg.PartSize = DefaultPartSize
	case cfg.PartSize < MinPartSize:
		return nil, fmt.Errorf("s3: Config.PartSize %d is smaller than the minimum %d", cfg.PartSize, MinPartSize)
	}
	switch {
	case cfg.Concurrency == 0:
		cfg.Concurrency = DefaultConcurrency
	case cfg.Concurrency < 0:
		return nil, fmt.Errorf("s3: Config.Concurrency %d is negative", cfg.Concurrency)
	}
	switch {
	case cfg.PresignTTL == 0:
		cfg.PresignTTL = DefaultPresignTTL
	case cfg.PresignTTL < 0 || cfg.PresignTTL > MaxPresignTTL:
		return nil, fmt.Errorf("s3: Config.PresignTTL %v is not between 0 and %v", cfg.PresignTTL, MaxPresignTTL)
	}

	var awsCfg aws.Config
	if cfg.AWSConfig != nil {
		awsCfg = cfg.AWSConfig.Copy()
	} else {
		var err error
		awsCfg, err = config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
		}
	}
	if cfg.Region != "" {
		awsCfg.Region = cfg.Region
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	cfg.Region = awsCfg.Region
	// Third-party services do not all implement the flexible checksums that
	// the SDK sends by default; S3 itself does not need them.
	awsCfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	awsCfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired

	client := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	s := &Store{
		cfg:     cfg,
		client:  client,
		presign: awss3.NewPresignClient(client),
		uploader: manager.NewUploader(client, func(u *manager.Uploader) {
			u.PartSize = cfg.PartSize
			u.Concurrency = cfg.Concurrency
			u.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		}),
	}
	if cfg.CreateBucket {
		if err := s.createBucket(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// createBucket creates the bucket unless it exists. Two processes creating it
// at once both succeed.
func (s *Store) createBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &s.cfg.Bucket})
	if err == nil {
		return nil
	}
	if !isBucketNotFound(err) {
		return fmt.Errorf("s3: check bucket %q: %w", s.cfg.Bucket, err)
	}
	in := &awss3.CreateBucketInput{Bucket: &s.cfg.Bucket}
	if s.cfg.Region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(s.cfg.Region),
		}
	}
	_, err = s.client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("s3: create bucket %q: %w", s.cfg.Bucket, err)
	}
	return nil
}

// Client returns the underlying S3 client, for operations this package does not
// cover.
func (s *Store) Client() *awss3.Client { return s.client }

// String returns "s3://bucket/prefix", with the endpoint when one is set.
// Credentials are never part of it.
func (s *Store) String() string {
	u := url.URL{Scheme: "s3", Host: s.cfg.Bucket}
	if s.cfg.Prefix != "" {
		u.Path = "/" + s.cfg.Prefix
	}
	if s.cfg.Endpoint != "" {
		u.RawQuery = url.Values{"endpoint": {s.cfg.Endpoint}}.Encode()
	}
	return u.String()
}

// objectKey returns the S3 key for key, after validating it.
func (s *Store) objectKey(key string) (string, error) {
	if err := storage.ValidateKey(key); err != nil {
		return "", err
	}
	if s.cfg.Prefix == "" {
		return key, nil
	}
	return s.cfg.Prefix + "/" + key, nil
}

// Locate implements storage.Locator: the bucket, and the key with the prefix.
func (s *Store) Locate(key string) storage.Location {
	k := key
	if s.cfg.Prefix != "" {
		k = s.cfg.Prefix + "/" + key
	}
	return storage.Location{Bucket: s.cfg.Bucket, Key: k}
}

// Unlocate implements storage.Locator.
func (s *Store) Unlocate(loc storage.Location) (string, bool) {
	if loc.Bucket != s.cfg.Bucket {
		return "", false
	}
	if s.cfg.Prefix == "" {
		return loc.Key, true
	}
	key, ok := strings.CutPrefix(loc.Key, s.cfg.Prefix+"/")
	return key, ok && key != ""
}

// Put implements storage.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Object, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return storage.Object{}, err
	}
	if valErr := opts.Validate(); valErr != nil {
		return storage.Object{}, valErr
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return storage.Object{}, ctxErr
	}
	ct := opts.ContentType
	if ct == "" {
		ct = storage.TypeByKey(key)
	}
	dr := digest.NewReader(ctx, r, opts.Size)

	// Read the first part: if that is all, one PutObject stores the content
	// and its checksum together.
	// One buffer of exactly the part size (or the declared size plus one byte, to see
	// the end): growing a bytes.Buffer would allocate twice the part.
	n0 := s.cfg.PartSize
	if opts.Size > 0 && opts.Size < n0 {
		n0 = opts.Size + 1
	}
	buf := make([]byte, n0)
	n, err := io.ReadFull(dr, buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return storage.Object{}, fmt.Errorf("s3: put %q: %w", key, err)
	}
	first := bytes.NewBuffer(buf[:n])
	if err != nil { // the whole content is in the buffer
		md := withSHA256(opts.Metadata, dr.SHA256())
		out, putErr := s.client.PutObject(ctx, &awss3.PutObjectInput{
			Bucket:        &s.cfg.Bucket,
			Key:           &okey,
			Body:          bytes.NewReader(first.Bytes()),
			ContentLength: aws.Int64(int64(first.Len())),
			ContentType:   &ct,
			Metadata:      md,
		})
		if putErr != nil {
			return storage.Object{}, fmt.Errorf("s3: put %q: %w", key, putErr)
		}
		return storage.Object{
			Key:         key,
			Size:        dr.Size(),
			ContentType: ct,
			SHA256:      dr.SHA256(),
			ETag:        unquote(aws.ToString(out.ETag)),
			ModTime:     time.Now(),
			Metadata:    userMetadata(md),
		}, nil
	}

	// More to come: a multipart upload of the first part and the rest.
	body := io.MultiReader(first, dr)
	var perCall []func(*manager.Uploader)
	if opts.Size > s.cfg.PartSize*int64(manager.MaxUploadParts) {
		// S3 allows 10,000 parts: grow them to fit a large declared size.
		partSize := (opts.Size + int64(manager.MaxUploadParts) - 1) / int64(manager.MaxUploadParts)
		perCall = append(perCall, func(u *manager.Uploader) { u.PartSize = partSize })
	}
	out, err := s.uploader.Upload(ctx, &awss3.PutObjectInput{
		Bucket:      &s.cfg.Bucket,
		Key:         &okey,
		Body:        body,
		ContentType: &ct,
		Metadata:    maps.Clone(opts.Metadata),
	}, perCall...)
	if err != nil {
		return storage.Object{}, fmt.Errorf("s3: put %q: %w", key, err)
	}
	obj := storage.Object{
		Key:         key,
		Size:        dr.Size(),
		ContentType: ct,
		SHA256:      dr.SHA256(),
		ETag:        unquote(aws.ToString(out.ETag)),
		ModTime:     time.Now(),
		Metadata:    userMetadata(opts.Metadata),
	}
	if obj.Size > maxCopySize {
		return obj, nil
	}
	// Label the object with its SHA-256, unless another writer replaced it in
	// the meantime.
	md := withSHA256(opts.Metadata, obj.SHA256)
	cp, err := s.client.CopyObject(ctx, &awss3.CopyObjectInput{
		Bucket:            &s.cfg.Bucket,
		Key:               &okey,
		CopySource:        aws.String(copySource(s.cfg.Bucket, okey)),
		CopySourceIfMatch: out.ETag,
		MetadataDirective: types.MetadataDirectiveReplace,
		ContentType:       &ct,
		Metadata:          md,
	})
	switch {
	case err == nil:
		if cp.CopyObjectResult != nil {
			if e := aws.ToString(cp.CopyObjectResult.ETag); e != "" {
				obj.ETag = unquote(e)
			}
			if cp.CopyObjectResult.LastModified != nil {
				obj.ModTime = *cp.CopyObjectResult.LastModified
			}
		}
	case isPreconditionFailed(err):
		// Overwritten by a later Put: ours was stored and replaced, as if the
		// other Put had come after it.
	default:
		return storage.Object{}, fmt.Errorf("s3: put %q: store the sha256 metadata: %w", key, err)
	}
	return obj, nil
}

// copySource is the x-amz-copy-source value for bucket and key: URL-encoded,
// with the slashes kept.
func copySource(bucket, key string) string {
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return bucket + "/" + strings.Join(segs, "/")
}

// withSHA256 returns the user metadata plus the checksum.
func withSHA256(md map[string]string, sum string) map[string]string {
	out := make(map[string]string, len(md)+1)
	maps.Copy(out, md)
	out[metaSHA256] = sum
	return out
}

// userMetadata returns the metadata without the checksum, nil if empty.
func userMetadata(md map[string]string) map[string]string {
	var out map[string]string
	for k, v := range md {
		k = strings.ToLower(k)
		if k == metaSHA256 {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(md))
		}
		out[k] = v
	}
	return out
}

func unquote(etag string) string { return strings.Trim(etag, `"`) }

// objectFrom builds an Object from the fields S3 returns for HeadObject and
// GetObject.
func objectFrom(key string, size *int64, contentType, etag *string, modTime *time.Time, md map[string]string) storage.Object {
	o := storage.Object{
		Key:         key,
		Size:        aws.ToInt64(size),
		ContentType: aws.ToString(contentType),
		ETag:        unquote(aws.ToString(etag)),
		Metadata:    userMetadata(md),
	}
	if modTime != nil {
		o.ModTime = *modTime
	}
	for k, v := range md {
		if strings.EqualFold(k, metaSHA256) && isHexSHA256(v) {
			o.SHA256 = strings.ToLower(v)
		}
	}
	return o
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// Get implements storage.Store. The reader is the response body.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, storage.Object, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return nil, storage.Object{}, err
	}
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &okey})
	if err != nil {
		if isNotFound(err) {
			return nil, storage.Object{}, fmt.Errorf("%w: %q", storage.ErrNotFound, key)
		}
		return nil, storage.Object{}, fmt.Errorf("s3: get %q: %w", key, err)
	}
	return out.Body, objectFrom(key, out.ContentLength, out.ContentType, out.ETag, out.LastModified, out.Metadata), nil
}

// Stat implements storage.Store.
func (s *Store) Stat(ctx context.Context, key string) (storage.Object, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return storage.Object{}, err
	}
	out, err := s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &okey})
	if err != nil {
		if isNotFound(err) {
			return storage.Object{}, fmt.Errorf("%w: %q", storage.ErrNotFound, key)
		}
		return storage.Object{}, fmt.Errorf("s3: stat %q: %w", key, err)
	}
	return objectFrom(key, out.ContentLength, out.ContentType, out.ETag, out.LastModified, out.Metadata), nil
}

// Delete implements storage.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	okey, err := s.objectKey(key)
	if err != nil {
		return err
	}
	_, err = s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &okey})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("s3: delete %q: %w", key, err)
	}
	return nil
}

// URL implements storage.Store: a presigned GET URL valid for ttl (at most
// MaxPresignTTL), or Config.PresignTTL if ttl <= 0.
func (s *Store) URL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return "", err
	}
	if ttl <= 0 {
		ttl = s.cfg.PresignTTL
	}
	if ttl > MaxPresignTTL {
		return "", fmt.Errorf("s3: URL ttl %v is longer than the maximum %v", ttl, MaxPresignTTL)
	}
	req, err := s.presign.PresignGetObject(ctx, &awss3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &okey}, awss3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("s3: presign %q: %w", key, err)
	}
	return req.URL, nil
}

// Ping implements storage.Store with HeadBucket: the service answers, the
// credentials are accepted and the bucket exists.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &s.cfg.Bucket})
	if err != nil {
		if isBucketNotFound(err) {
			return fmt.Errorf("s3: bucket %q does not exist: %w", s.cfg.Bucket, err)
		}
		return fmt.Errorf("s3: ping bucket %q: %w", s.cfg.Bucket, err)
	}
	return nil
}

// isNotFound reports whether err says that the object does not exist. A
// missing bucket is reported as NotFound only by HEAD requests, which carry no
// error code: the others report NoSuchBucket, which is not an object's absence.
func isNotFound(err error) bool {
	var noBucket *types.NoSuchBucket
	if errors.As(err, &noBucket) {
		return false
	}
	var (
		noKey    *types.NoSuchKey
		notFound *types.NotFound
	)
	if errors.As(err, &noKey) || errors.As(err, &notFound) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		case "NoSuchBucket":
			return false
		}
	}
	// HEAD responses have no body, hence no error code: only the status.
	var respErr *awshttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusNotFound
}

// isBucketNotFound reports whether err says that the bucket does not exist.
func isBucketNotFound(err error) bool {
	var noBucket *types.NoSuchBucket
	var apiErr smithy.APIError
	if errors.As(err, &noBucket) || errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchBucket" {
		return true
	}
	var respErr *awshttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusNotFound
}

// isPreconditionFailed reports whether a conditional request was refused.
func isPreconditionFailed(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "PreconditionFailed" {
		return true
	}
	var respErr *awshttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusPreconditionFailed
}
