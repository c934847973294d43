package template

import (
	"bytes"
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
)

// Redis keys: the template JSON (with its version) under KeyPrefix+name, and the
// names in the sorted set IndexKey (all scores 0, so members sort by name).
const (
	KeyPrefix = jobstore.KeyPrefix + "template:"
	IndexKey  = jobstore.KeyPrefix + "templates"
)

// StoreConfig configures a Store.
type StoreConfig struct {
	// ObjectInfo returns the ComfyUI node's /object_info; it converts UI-format
	// workflows and types parameters (bounds, choices, tooltips). Default nil: UI-format
	// workflows are refused with a clear error and parameter types are inferred from the
	// workflow's values. When it fails, registration fails with ErrObjectInfo.
	ObjectInfo func(ctx context.Context) (comfy.ObjectInfo, error)
	// Now returns the current time (default time.Now); tests may fix it.
	Now func() time.Time
}

// Store keeps templates in Redis. It implements job.TemplateResolver.
type Store struct {
	rdb redis.UniversalClient
	cfg StoreConfig
}

var _ job.TemplateResolver = (*Store)(nil)

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient, cfg StoreConfig) *Store {
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
// same name at once. A refused definition returns a *job.SpecError with code
// invalid_template or invalid_workflow and stores nothing.
func (s *Store) Put(ctx context.Context, def Definition) (*Template, error) {
	return s.put(ctx, def, false)
}

// Create registers a new template, or returns ErrExists when the name is taken.
func (s *Store) Create(ctx context.Context, def Definition) (*Template, error) {
	return s.put(ctx, def, true)
}

func (s *Store) put(ctx context.Context, def Definition, create bool) (*Template, error) {
	t, err := s.Compile(ctx, def)
	if err != nil {
		return nil, err
	}
	k := key(t.Name)
	// Optimistic: another registration of the name in between makes Watch fail; try again.
	put := func(tx *redis.Tx) error {
		now := s.cfg.Now().UTC()
		t.Version, t.CreatedAt, t.UpdatedAt = 1, now, now
		prev, err := tx.Get(ctx, k).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return err
		case create:
			return ErrExists
		default:
			var old struct {
				Version   int       `json:"version"`
				CreatedAt time.Time `json:"created_at"`
			}
			if err := json.Unmarshal(prev, &old); err != nil {
				return fmt.Errorf("template: decode stored %s: %w", t.Name, err)
			}
			t.Version, t.CreatedAt = old.Version+1, old.CreatedAt
		}
		data, err := json.Marshal(t)
		if err != nil {
			return fmt.Errorf("template: encode %s: %w", t.Name, err)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, k, data, 0)
			p.ZAdd(ctx, IndexKey, redis.Z{Score: 0, Member: t.Name})
			return nil
		})
		return err
	}
	err = retry.Do(ctx, watchRetry, func(ctx context.Context) error { return s.rdb.Watch(ctx, put, k) })
	switch {
	case errors.Is(err, ErrExists):
		return nil, fmt.Errorf("%w: %q", ErrExists, t.Name)
	case errors.Is(err, redis.TxFailedErr):
		return nil, fmt.Errorf("template: put %s: too many concurrent registrations, try again", t.Name)
	case err != nil:
		return nil, fmt.Errorf("template: put %s: %w", t.Name, err)
	}
	return t, nil
}

// Compile checks a definition and builds the template it registers, without storing
// it (Version and times are zero): the workflow parsed or converted from the UI format,
// and its parameters resolved or discovered. Errors are as for Put.
func (s *Store) Compile(ctx context.Context, def Definition) (*Template, error) {
	if !ValidName(def.Name) {
		return nil, &job.SpecError{Code: CodeInvalidTemplate, Field: "name",
			Message: fmt.Sprintf("template name %q must match ^[a-z0-9][a-z0-9_-]{0,63}$", def.Name)}
	}
	raw := bytes.TrimSpace(def.Workflow)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, &job.SpecError{Code: CodeInvalidWorkflow, Field: "workflow", Message: "a workflow is required"}
	}
	var info comfy.ObjectInfo
	if s.cfg.ObjectInfo != nil {
		var err error
		if info, err = s.cfg.ObjectInfo(ctx); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrObjectInfo, err)
		}
	}
	var wf comfy.Workflow
	if comfy.IsUIFormat(raw) {
		if info == nil {
			return nil, &job.SpecError{Code: CodeInvalidWorkflow, Field: "workflow",
				Message: "this is a UI-format workflow and no object_info is available to convert it: save it with \"Export (API)\" in ComfyUI, or configure an object_info source"}
		}
		var err error
		if wf, err = comfy.ConvertUI(raw, info, nil); err != nil {
			return nil, &job.SpecError{Code: CodeInvalidWorkflow, Field: "workflow", Message: err.Error()}
		}
	} else {
		var err error
		if wf, err = comfy.ParseWorkflow(raw); err != nil {
			return nil, workflowError(err)
		}
	}
	if err := wf.Validate(); err != nil {
		return nil, workflowError(err)
	}
	return compile(def, wf, info)
}

func workflowError(err error) error {
	se := &job.SpecError{Code: CodeInvalidWorkflow, Field: "workflow", Message: err.Error()}
	var we *comfy.WorkflowError
	if errors.As(err, &we) {
		se.Details = we.Problems
	}
	return se
}

// Get returns the template called name, or ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (*Template, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	data, err := s.rdb.Get(ctx, key(name)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("template: get %s: %w", name, err)
	}
	return decodeTemplate(name, data)
}

func decodeTemplate(name string, data []byte) (*Template, error) {
	var t Template
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("template: decode %s: %w", name, err)
	}
	return &t, nil
}

// List returns every template, sorted by name.
func (s *Store) List(ctx context.Context) ([]*Template, error) {
	names, err := s.rdb.ZRange(ctx, IndexKey, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("template: list: %w", err)
	}
	if len(names) == 0 {
		return []*Template{}, nil
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
		return nil, fmt.Errorf("template: list: %w", err)
	}
	out := make([]*Template, 0, len(names))
	for i, cmd := range cmds {
		data, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue // deleted between the two reads
		}
		if err != nil {
			return nil, fmt.Errorf("template: list: %w", err)
		}
		t, err := decodeTemplate(names[i], data)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Delete removes the template called name, or returns ErrNotFound. Jobs already
// submitted from it are unaffected: they carry their own workflow.
func (s *Store) Delete(ctx context.Context, name string) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	var del *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.Del(ctx, key(name))
		p.ZRem(ctx, IndexKey, name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("template: delete %s: %w", name, err)
	}
	if del.Val() == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return nil
}

// Resolve applies params to the template called name: it implements
// job.TemplateResolver. An unknown name returns a *job.SpecError with code
// unknown_template that also matches errors.Is(err, ErrNotFound); bad parameters return
// Apply's invalid_params error.
func (s *Store) Resolve(ctx context.Context, name string, params map[string]any) (*job.Resolved, error) {
	t, err := s.Get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil, &notFoundError{name: name, SpecError: &job.SpecError{Code: CodeUnknownTemplate,
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
		return nil, fmt.Errorf("template: encode %s: %w", name, err)
	}
	return &job.Resolved{Workflow: data, Version: t.Version, ImageTargets: t.ImageTargets()}, nil
}

// notFoundError is a *job.SpecError (for callers that turn it into a 4xx answer)
// that is also ErrNotFound.
type notFoundError struct {
	*job.SpecError
	name string
}

func (e *notFoundError) Unwrap() []error { return []error{e.SpecError, ErrNotFound} }

func (e *notFoundError) Error() string { return fmt.Sprintf("%v: %q", ErrNotFound, e.name) }
