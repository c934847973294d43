// Package templatestore keeps templates (package template) in Redis: a Store registers,
// lists and deletes them, and resolves template submissions for the producer (it
// implements job.TemplateResolver).
//
// A template is one JSON string under comfyq:template:<name> (with its version and
// times), and the names are in the sorted set comfyq:templates. Registrations use an
// optimistic transaction (WATCH) on the template's key, so that every registration under
// a name bumps its version by one however many replicas register it at once.
//
// It is a package of its own so that users of the template types (the HTTP API's Go
// client among them) do not link a Redis client.
package templatestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/internal/retry"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/jobstore"
	"github.com/comfyq/comfyq/template"
)

// Redis keys: the template JSON (with its version) under KeyPrefix+name, and the
// names in the sorted set IndexKey (all scores 0, so members sort by name).
const (
	KeyPrefix = jobstore.KeyPrefix + "template:"
	IndexKey  = jobstore.KeyPrefix + "templates"
)

// Config configures a Store.
type Config struct {
	// ObjectInfo returns the ComfyUI node's /object_info; it converts UI-format
	// workflows and types parameters (bounds, choices, tooltips). Default nil: UI-format
	// workflows are refused with a clear error and parameter types are inferred from the
	// workflow's values. When it fails, registration fails with template.ErrObjectInfo.
	// See template.Compile.
	ObjectInfo func(ctx context.Context) (comfy.ObjectInfo, error)
	// Now returns the current time (default time.Now); tests may fix it.
	Now func() time.Time
}

// Store keeps templates in Redis. It implements job.TemplateResolver.
type Store struct {
	rdb redis.UniversalClient
	cfg Config
}

var _ job.TemplateResolver = (*Store)(nil)

// New returns a Store on rdb.
func New(rdb redis.UniversalClient, cfg Config) *Store {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{rdb: rdb, cfg: cfg}
}

func key(name string) string { return KeyPrefix + name }

// watchRetry retries a registration's optimistic transaction at once, 50 times at most.
var watchRetry = retry.Policy{
	MaxAttempts: 50,
	Retryable:   func(err error) bool { return errors.Is(err, redis.TxFailedErr) },
}

// Put registers a template, creating it or replacing it: the version is the previous
// version plus one (1 when new), assigned atomically however many replicas register the
// same name at once. The definition is compiled by template.Compile with the configured
// ObjectInfo. A refused definition returns a *job.SpecError with code
// invalid_template or invalid_workflow and stores nothing.
func (s *Store) Put(ctx context.Context, def template.Definition) (*template.Template, error) {
	return s.put(ctx, def, false)
}

// Create registers a new template, or returns template.ErrExists when the name is taken.
func (s *Store) Create(ctx context.Context, def template.Definition) (*template.Template, error) {
	return s.put(ctx, def, true)
}

func (s *Store) put(ctx context.Context, def template.Definition, create bool) (*template.Template, error) {
	t, err := template.Compile(ctx, def, s.cfg.ObjectInfo)
	if err != nil {
		return nil, err
	}
	k := key(t.Name)
	// Optimistic: another registration of the name in between makes Watch fail; try again.
	err = retry.Do(ctx, watchRetry, func(ctx context.Context) error {
		return s.rdb.Watch(ctx, func(tx *redis.Tx) error { return s.write(ctx, tx, t, create) }, k)
	})
	switch {
	case errors.Is(err, template.ErrExists):
		return nil, fmt.Errorf("%w: %q", template.ErrExists, t.Name)
	case errors.Is(err, redis.TxFailedErr):
		return nil, fmt.Errorf("templatestore: put %s: too many concurrent registrations, try again", t.Name)
	case err != nil:
		return nil, fmt.Errorf("templatestore: put %s: %w", t.Name, err)
	}
	return t, nil
}

// write stores t in the transaction tx watching its key: version 1 when the name is new,
// else the stored version plus one (template.ErrExists when create).
func (s *Store) write(ctx context.Context, tx *redis.Tx, t *template.Template, create bool) error {
	k := key(t.Name)
	now := s.cfg.Now().UTC()
	t.Version, t.CreatedAt, t.UpdatedAt = 1, now, now
	prev, err := tx.Get(ctx, k).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return err
	case create:
		return template.ErrExists
	default:
		var old struct {
			Version   int       `json:"version"`
			CreatedAt time.Time `json:"created_at"`
		}
		if err = json.Unmarshal(prev, &old); err != nil {
			return fmt.Errorf("templatestore: decode stored %s: %w", t.Name, err)
		}
		t.Version, t.CreatedAt = old.Version+1, old.CreatedAt
	}
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("templatestore: encode %s: %w", t.Name, err)
	}
	_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, k, data, 0)
		p.ZAdd(ctx, IndexKey, redis.Z{Score: 0, Member: t.Name})
		return nil
	})
	return err
}

// Get returns the template called name, or template.ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (*template.Template, error) {
	if !template.ValidName(name) {
		return nil, fmt.Errorf("%w: %q", template.ErrNotFound, name)
	}
	data, err := s.rdb.Get(ctx, key(name)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: %q", template.ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("templatestore: get %s: %w", name, err)
	}
	return decodeTemplate(name, data)
}

func decodeTemplate(name string, data []byte) (*template.Template, error) {
	var t template.Template
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("templatestore: decode %s: %w", name, err)
	}
	return &t, nil
}

// List returns every template, sorted by name.
func (s *Store) List(ctx context.Context) ([]*template.Template, error) {
	names, err := s.rdb.ZRange(ctx, IndexKey, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("templatestore: list: %w", err)
	}
	if len(names) == 0 {
		return []*template.Template{}, nil
	}
	// One GET per key in a pipeline rather than MGET: the keys may live on different
	// cluster slots.
	cmds := make([]*redis.StringCmd, len(names))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, name := range names {
			cmds[i] = p.Get(ctx, key(name))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("templatestore: list: %w", err)
	}
	out := make([]*template.Template, 0, len(names))
	for i, cmd := range cmds {
		data, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue // deleted between the two reads
		}
		if err != nil {
			return nil, fmt.Errorf("templatestore: list: %w", err)
		}
		t, err := decodeTemplate(names[i], data)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Delete removes the template called name, or returns template.ErrNotFound. Jobs
// already submitted from it are unaffected: they carry their own workflow.
func (s *Store) Delete(ctx context.Context, name string) error {
	if !template.ValidName(name) {
		return fmt.Errorf("%w: %q", template.ErrNotFound, name)
	}
	var del *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.Del(ctx, key(name))
		p.ZRem(ctx, IndexKey, name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("templatestore: delete %s: %w", name, err)
	}
	if del.Val() == 0 {
		return fmt.Errorf("%w: %q", template.ErrNotFound, name)
	}
	return nil
}

// Resolve applies params to the template called name: it implements
// job.TemplateResolver. An unknown name returns a *job.SpecError with code
// unknown_template that also matches errors.Is(err, template.ErrNotFound); bad
// parameters return Template.Apply's invalid_params error.
func (s *Store) Resolve(ctx context.Context, name string, params map[string]any) (*job.Resolved, error) {
	t, err := s.Get(ctx, name)
	if errors.Is(err, template.ErrNotFound) {
		return nil, &notFoundError{name: name, SpecError: &job.SpecError{Code: template.CodeUnknownTemplate,
			Field: "template", Message: fmt.Sprintf("template %q not found", name)}}
	}
	if err != nil {
		return nil, err
	}
	wf, err := t.Apply(params)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(wf)
	if err != nil {
		return nil, fmt.Errorf("templatestore: encode %s: %w", name, err)
	}
	return &job.Resolved{Workflow: data, Version: t.Version, ImageTargets: t.ImageTargets()}, nil
}

// notFoundError is a *job.SpecError (for callers that turn it into a 4xx answer)
// that is also template.ErrNotFound.
type notFoundError struct {
	*job.SpecError
	name string
}

func (e *notFoundError) Unwrap() []error { return []error{e.SpecError, template.ErrNotFound} }

func (e *notFoundError) Error() string { return fmt.Sprintf("%v: %q", template.ErrNotFound, e.name) }
