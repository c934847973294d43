// Package file is the storage backend that keeps objects as files under a
// directory, for a single machine, a shared volume or development.
//
// An object's key is its path below the root directory. Next to the data, in a
// parallel tree under the root's ".comfyq-meta" directory, a small JSON file per
// object keeps what a file system does not: the SHA-256, the content type and the
// user metadata. The metadata records the data file's size and modification time,
// so a data file replaced behind the store's back (or by a crash between the two
// renames of a Put) is reported with no SHA-256 rather than a wrong one.
//
// Put writes to a temporary file in the object's directory, syncs it and renames
// it into place, so readers see the old object or the new one, never a partial
// one. Every path is resolved with os.Root: no key, symbolic link or ".." can
// reach a file outside the root directory.
//
// The backend registers the "file" URL scheme with package storage:
//
//	file:///var/lib/comfyq/outputs?base_url=https://cdn.example.com/outputs/
//
// base_url, if given, is where the directory is served over HTTP; URL returns it
// joined with the key. The directory itself is not served by this package.
//
// Limits: a key cannot be both an object and the directory of other objects
// ("a" and "a/b"), as S3 would allow; empty directories are left behind by Delete;
// and the temporary files of a Put interrupted by a crash stay until removed by
// hand (their names start with ".comfyq-tmp-").
package file

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/storage/internal/digest"
)

func init() {
	storage.Register("file", func(_ context.Context, u *url.URL) (storage.Store, error) {
		cfg, err := ConfigFromURL(u)
		if err != nil {
			return nil, err
		}
		return New(cfg)
	})
}

const (
	// MetaDir is the directory under the root that holds the metadata tree. No
	// key may start with it.
	MetaDir = ".comfyq-meta"
	// tmpPrefix starts the names of the temporary files of Put.
	tmpPrefix = ".comfyq-tmp-"
)

// Config configures a file Store.
type Config struct {
	// Dir is the root directory, an absolute path. Required. It is created, with
	// its parents, if it does not exist.
	Dir string
	// BaseURL is the absolute http or https URL at which Dir is served, such as
	// "https://cdn.example.com/outputs/". URL returns BaseURL joined with the
	// escaped key. Default: none, and URL fails with storage.ErrNoURL.
	BaseURL string
	// DirPerm is the permission of the directories the store creates. Default
	// 0o755 (less the umask).
	DirPerm fs.FileMode
	// FilePerm is the permission of the files the store creates. Default 0o644
	// (less the umask).
	FilePerm fs.FileMode
}

// ConfigFromURL reads a Config from a URL of the form
// file:///abs/dir[?base_url=URL]. Unknown query parameters are an error, so a
// misspelt option is not silently ignored.
func ConfigFromURL(u *url.URL) (Config, error) {
	if u.Scheme != "file" && !strings.EqualFold(u.Scheme, "file") {
		return Config{}, fmt.Errorf("file: URL scheme is %q, want file", u.Scheme)
	}
	if u.Host != "" && u.Host != "localhost" {
		return Config{}, fmt.Errorf("file: URL %q has a host %q; use file:///absolute/dir (three slashes)", u.Redacted(), u.Host)
	}
	if u.User != nil {
		return Config{}, fmt.Errorf("file: URL %q must not have user information", u.Redacted())
	}
	if u.Opaque != "" {
		return Config{}, fmt.Errorf("file: URL %q is not of the form file:///absolute/dir", u.Redacted())
	}
	cfg := Config{Dir: u.Path}
	for name, values := range u.Query() {
		switch name {
		case "base_url":
			cfg.BaseURL = values[len(values)-1]
		default:
			return Config{}, fmt.Errorf("file: unknown option %q in storage URL (known: base_url)", name)
		}
	}
	return cfg, nil
}

// Store is a storage.Store keeping objects as files below a directory.
type Store struct {
	dir      string
	baseURL  *url.URL // nil if none
	dirPerm  fs.FileMode
	filePerm fs.FileMode
}

var _ storage.Store = (*Store)(nil)

// New validates cfg, creates the root directory if needed and returns the Store.
func New(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("file: Config.Dir is required")
	}
	if !filepath.IsAbs(cfg.Dir) {
		return nil, fmt.Errorf("file: Config.Dir %q is not an absolute path", cfg.Dir)
	}
	s := &Store{dir: filepath.Clean(cfg.Dir), dirPerm: cfg.DirPerm, filePerm: cfg.FilePerm}
	if s.dirPerm == 0 {
		s.dirPerm = 0o755
	}
	if s.filePerm == 0 {
		s.filePerm = 0o644
	}
	if cfg.BaseURL != "" {
		bu, err := url.Parse(cfg.BaseURL)
		if err != nil {
			return nil, fmt.Errorf("file: Config.BaseURL: %w", err)
		}
		if (bu.Scheme != "http" && bu.Scheme != "https") || bu.Host == "" {
			return nil, fmt.Errorf("file: Config.BaseURL %q is not an absolute http or https URL", bu.Redacted())
		}
		if bu.RawQuery != "" || bu.Fragment != "" {
			return nil, fmt.Errorf("file: Config.BaseURL %q must not have a query or fragment", bu.Redacted())
		}
		s.baseURL = bu
	}
	if err := os.MkdirAll(s.dir, s.dirPerm); err != nil {
		return nil, fmt.Errorf("file: create root directory: %w", err)
	}
	return s, nil
}

// Dir returns the root directory.
func (s *Store) Dir() string { return s.dir }

// String returns "file:///dir", with the base URL if one is set.
func (s *Store) String() string {
	u := url.URL{Scheme: "file", Path: s.dir}
	if s.baseURL != nil {
		u.RawQuery = url.Values{"base_url": {s.baseURL.Redacted()}}.Encode()
	}
	return u.String()
}

// meta is the JSON kept in the metadata tree for each object.
type meta struct {
	SHA256      string            `json:"sha256"`
	Size        int64             `json:"size"`
	ContentType string            `json:"content_type"`
	ModTimeNS   int64             `json:"mod_time_ns"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

func checkKey(key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	if first, _, _ := strings.Cut(key, "/"); first == MetaDir {
		return fmt.Errorf("%w %q: %s is reserved by the file backend", storage.ErrInvalidKey, key, MetaDir)
	}
	return nil
}

func metaPath(key string) string { return MetaDir + "/" + key }

// openRoot opens the root for one operation. Opening it per call, rather than
// once, keeps the Store free of file descriptors and follows a root directory
// that was replaced.
func (s *Store) openRoot() (*os.Root, error) {
	r, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, fmt.Errorf("file: open root directory: %w", err)
	}
	return r, nil
}

// Put implements storage.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Object, error) {
	if err := checkKey(key); err != nil {
		return storage.Object{}, err
	}
	if err := opts.Validate(); err != nil {
		return storage.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Object{}, err
	}
	root, err := s.openRoot()
	if err != nil {
		return storage.Object{}, err
	}
	defer root.Close()

	// The data and its metadata are written in their directories opened once each
	// (os.Root below root), so that every later step names a file in it instead of
	// resolving the key's whole path again.
	dir, base := path.Dir(key), path.Base(key)
	droot, err := s.openDir(root, dir)
	if err != nil {
		return storage.Object{}, fmt.Errorf("file: put %q: %w", key, err)
	}
	defer droot.Close()
	dr := digest.NewReader(ctx, r, opts.Size)
	tmp, f, err := s.createTemp(droot)
	if err != nil {
		return storage.Object{}, fmt.Errorf("file: put %q: %w", key, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = droot.Remove(tmp)
		}
	}()
	fi, err := fill(f, func(f *os.File) error {
		_, copyErr := io.Copy(f, dr)
		return copyErr
	})
	if err != nil {
		f.Close()
		return storage.Object{}, fmt.Errorf("file: put %q: %w", key, err)
	}
	// The data file's fsync runs while the metadata file is written and synced (it
	// needs the data's digest, not its sync); Put waits for both before any rename.
	dataSynced := make(chan error, 1)
	go func() { dataSynced <- syncAndClose(f) }()
	waitData := func() error {
		if dataSynced == nil {
			return nil
		}
		syncErr := <-dataSynced
		dataSynced = nil
		return syncErr
	}
	defer func() { _ = waitData() }()

	ct := opts.ContentType
	if ct == "" {
		ct = storage.TypeByKey(key)
	}
	m := meta{
		SHA256:      dr.SHA256(),
		Size:        dr.Size(),
		ContentType: ct,
		ModTimeNS:   fi.ModTime().UnixNano(),
		Metadata:    maps.Clone(opts.Metadata),
	}
	if len(m.Metadata) == 0 {
		m.Metadata = nil
	}
	mjson, err := json.Marshal(m)
	if err != nil {
		return storage.Object{}, fmt.Errorf("file: put %q: encode metadata: %w", key, err)
	}
	mroot, err := s.openDir(root, path.Dir(metaPath(key)))
	if err != nil {
		return storage.Object{}, fmt.Errorf("file: put %q: metadata directory: %w", key, err)
	}
	defer mroot.Close()
	mtmp, _, err := s.writeTemp(mroot, func(f *os.File) error {
		_, writeErr := f.Write(mjson)
		return writeErr
	})
	if err != nil {
		return storage.Object{}, fmt.Errorf("file: put %q: metadata: %w", key, err)
	}
	defer func() {
		if !committed {
			_ = mroot.Remove(mtmp)
		}
	}()
	if err := waitData(); err != nil {
		return storage.Object{}, fmt.Errorf("file: put %q: %w", key, err)
	}

	// Last chance to give up before the object becomes visible.
	if err := ctx.Err(); err != nil {
		return storage.Object{}, err
	}
	if err := droot.Rename(tmp, base); err != nil {
		return storage.Object{}, fmt.Errorf("file: put %q: %w", key, err)
	}
	committed = true
	// The data is in place: from here on a failure leaves metadata that does
	// not match, which Stat reports as an unknown SHA-256, and the Put fails.
	if err := mroot.Rename(mtmp, base); err != nil {
		_ = mroot.Remove(mtmp)
		return storage.Object{}, fmt.Errorf("file: put %q: metadata: %w", key, err)
	}
	// Both renames made durable, the two directories synced at once; Put returns
	// after both.
	metaDirSynced := make(chan error, 1)
	go func() { metaDirSynced <- syncDir(mroot) }()
	dirErr := syncDir(droot)
	metaDirErr := <-metaDirSynced
	if dirErr != nil {
		return storage.Object{}, fmt.Errorf("file: put %q: %w", key, dirErr)
	}
	if metaDirErr != nil {
		return storage.Object{}, fmt.Errorf("file: put %q: %w", key, metaDirErr)
	}
	return storage.Object{
		Key:         key,
		Size:        m.Size,
		ContentType: m.ContentType,
		SHA256:      m.SHA256,
		ETag:        m.SHA256,
		ModTime:     fi.ModTime(),
		Metadata:    maps.Clone(m.Metadata),
	}, nil
}

// writeTemp creates a new temporary file in dir, fills it with write, syncs and
// closes it. On error nothing is left behind.
func (s *Store) writeTemp(dir *os.Root, write func(*os.File) error) (string, fs.FileInfo, error) {
	name, f, err := s.createTemp(dir)
	if err != nil {
		return "", nil, err
	}
	fi, err := fill(f, write)
	if err == nil {
		err = syncAndClose(f)
	} else {
		f.Close()
	}
	if err != nil {
		_ = dir.Remove(name)
		return "", nil, err
	}
	return name, fi, nil
}

// createTemp creates a new temporary file in dir and returns its name there.
func (s *Store) createTemp(dir *os.Root) (string, *os.File, error) {
	var (
		name string
		f    *os.File
		err  error
	)
	for range 10 {
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		name = tmpPrefix + hex.EncodeToString(rnd[:])
		f, err = dir.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, s.filePerm)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return "", nil, err
	}
	return name, f, nil
}

// openDir creates directory dir below root, with its parents, and opens it.
func (s *Store) openDir(root *os.Root, dir string) (*os.Root, error) {
	if err := root.MkdirAll(dir, s.dirPerm); err != nil {
		return nil, err
	}
	return root.OpenRoot(dir)
}

// fill writes f with write and returns its information; f stays open.
func fill(f *os.File, write func(*os.File) error) (fs.FileInfo, error) {
	if err := write(f); err != nil {
		return nil, err
	}
	return f.Stat()
}

// syncAndClose makes f's contents durable and closes it.
func syncAndClose(f *os.File) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes a rename in dir durable.
func syncDir(dir *os.Root) error {
	d, err := dir.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		// Some file systems cannot sync a directory; the rename stands anyway.
		return err
	}
	return nil
}

// notFound reports whether err means that no object has the key: the file or a
// directory on its path is missing, or a path component is a file.
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// escapingLink explains a failure to open key that comes from a symbolic link on its
// path (os.Root refuses a link leading out of the root, or a loop): it returns an
// error matching storage.ErrInvalidKey, since no other try can make such a key an
// object, or nil when no component of the path is a link.
func escapingLink(root *os.Root, key string) error {
	parts := strings.Split(key, "/")
	for i := range parts {
		fi, err := root.Lstat(strings.Join(parts[:i+1], "/"))
		if err != nil {
			return nil
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w %q: a symbolic link on its path leads out of the store", storage.ErrInvalidKey, key)
		}
	}
	return nil
}

// object builds the Object for the data file described by fi, with the
// metadata if it still matches the file.
func object(root *os.Root, key string, fi fs.FileInfo) storage.Object {
	o := storage.Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}
	var m meta
	if b, err := root.ReadFile(metaPath(key)); err == nil && json.Unmarshal(b, &m) == nil &&
		m.Size == fi.Size() && m.ModTimeNS == fi.ModTime().UnixNano() {
		o.SHA256, o.ETag, o.ContentType, o.Metadata = m.SHA256, m.SHA256, m.ContentType, m.Metadata
	}
	if o.ContentType == "" {
		o.ContentType = storage.TypeByKey(key)
	}
	return o
}

// Get implements storage.Store. The returned reader is the open file.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, storage.Object, error) {
	if err := checkKey(key); err != nil {
		return nil, storage.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, storage.Object{}, err
	}
	root, err := s.openRoot()
	if err != nil {
		return nil, storage.Object{}, err
	}
	defer root.Close()
	f, err := root.Open(key)
	if err != nil {
		if notFound(err) {
			return nil, storage.Object{}, fmt.Errorf("%w: %q", storage.ErrNotFound, key)
		}
		if linkErr := escapingLink(root, key); linkErr != nil {
			return nil, storage.Object{}, linkErr
		}
		return nil, storage.Object{}, fmt.Errorf("file: get %q: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, storage.Object{}, fmt.Errorf("file: get %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, storage.Object{}, fmt.Errorf("%w: %q (not a regular file)", storage.ErrNotFound, key)
	}
	return f, object(root, key, fi), nil
}

// Stat implements storage.Store.
func (s *Store) Stat(ctx context.Context, key string) (storage.Object, error) {
	if err := checkKey(key); err != nil {
		return storage.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Object{}, err
	}
	root, err := s.openRoot()
	if err != nil {
		return storage.Object{}, err
	}
	defer root.Close()
	fi, err := root.Stat(key)
	if err != nil {
		if notFound(err) {
			return storage.Object{}, fmt.Errorf("%w: %q", storage.ErrNotFound, key)
		}
		if linkErr := escapingLink(root, key); linkErr != nil {
			return storage.Object{}, linkErr
		}
		return storage.Object{}, fmt.Errorf("file: stat %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return storage.Object{}, fmt.Errorf("%w: %q (not a regular file)", storage.ErrNotFound, key)
	}
	return object(root, key, fi), nil
}

// Delete implements storage.Store. A directory at key is left alone: it is not
// an object.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	root, err := s.openRoot()
	if err != nil {
		return err
	}
	defer root.Close()
	fi, err := root.Lstat(key)
	if err != nil {
		if notFound(err) {
			return nil
		}
		return fmt.Errorf("file: delete %q: %w", key, err)
	}
	if fi.IsDir() {
		return nil
	}
	if err := root.Remove(key); err != nil && !notFound(err) {
		return fmt.Errorf("file: delete %q: %w", key, err)
	}
	if err := root.Remove(metaPath(key)); err != nil && !notFound(err) {
		return fmt.Errorf("file: delete %q: metadata: %w", key, err)
	}
	return nil
}

// URL implements storage.Store: the base URL joined with the escaped key. ttl
// is ignored; the object is served as long as the server serves it.
func (s *Store) URL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if s.baseURL == nil {
		return "", fmt.Errorf("%w: file store %s has no base_url", storage.ErrNoURL, s.dir)
	}
	u := *s.baseURL
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + key
	u.RawPath = ""
	return u.String(), nil
}

// Ping implements storage.Store: the root must be a directory the store can
// open.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	root, err := s.openRoot()
	if err != nil {
		return err
	}
	defer root.Close()
	fi, err := root.Stat(".")
	if err != nil {
		return fmt.Errorf("file: ping: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("file: ping: %s is not a directory", s.dir)
	}
	return nil
}
