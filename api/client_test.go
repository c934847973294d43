package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/api/apiclient"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/template"
)

func TestClient(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx := b.ctx
	c := b.client(t, userKey)
	admin := b.client(t, adminKey)

	acc, err := c.Submit(ctx, job.Spec{Workflow: jsonRaw(imageWorkflow), Metadata: map[string]any{"k": "v"}}, "idem-1")
	require.NoError(t, err)
	again, err := c.Submit(ctx, job.Spec{Workflow: jsonRaw(imageWorkflow), Metadata: map[string]any{"k": "v"}}, "idem-1")
	require.NoError(t, err)
	require.Equal(t, acc.ID, again.ID)
	// The same key with another body is refused.
	_, err = c.Submit(ctx, job.Spec{Workflow: jsonRaw(imageWorkflow)}, "idem-1")
	var reuse *job.SpecError
	require.ErrorAs(t, err, &reuse)
	require.Equal(t, job.CodeIdempotencyKeyReuse, reuse.Code)

	j, err := c.Get(ctx, acc.ID)
	require.NoError(t, err)
	require.Equal(t, "v", j.Metadata["k"])
	jobs, next, err := c.List(ctx, job.ListOptions{Limit: 10, Status: job.StatusQueued})
	require.NoError(t, err)
	require.Empty(t, next)
	require.Len(t, jobs, 1)

	// Refused submissions are *job.SpecError for errors.As, and *APIError.
	// Enqueue (job.Client's) sends the spec's idempotency key and returns the record.
	var jc job.Client = c
	same, err := jc.Enqueue(ctx, job.Spec{Workflow: jsonRaw(imageWorkflow), Metadata: map[string]any{"k": "v"}, IdempotencyKey: "idem-1"})
	require.NoError(t, err)
	require.Equal(t, acc.ID, same.ID)
	require.Equal(t, "v", same.Metadata["k"])

	_, err = c.Submit(ctx, job.Spec{Workflow: jsonRaw(`{"1": {"inputs": {}}}`)}, "")
	var se *job.SpecError
	require.ErrorAs(t, err, &se)
	require.Equal(t, job.CodeInvalidWorkflow, se.Code)
	var ae *apiclient.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 400, ae.Status)
	require.NotEmpty(t, ae.RequestID)

	_, err = c.Get(ctx, "01937c9e-8f3a-7b2c-9d1e-4f5a6b7c8d9e")
	require.ErrorIs(t, err, job.ErrNotFound)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "not_found", ae.Code)

	// Cancel, then cancel again: the job and job.ErrTerminal, as producer.Cancel.
	j, err = c.Cancel(ctx, acc.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusCanceled, j.Status)
	j, err = c.Cancel(ctx, acc.ID)
	require.ErrorIs(t, err, job.ErrTerminal)
	require.NotNil(t, j)
	require.Equal(t, job.StatusCanceled, j.Status)
	j, err = c.Wait(ctx, acc.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusCanceled, j.Status)

	// Templates: the user key reads, the admin key writes.
	def := template.Definition{Name: "sampler", Description: "a sampler", Workflow: jsonRaw(samplerWorkflow)}
	_, err = c.CreateTemplate(ctx, def)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 403, ae.Status)
	ti, err := admin.CreateTemplate(ctx, def)
	require.NoError(t, err)
	require.Equal(t, 1, ti.Version)
	require.NotEmpty(t, ti.ParamsSchema)
	_, err = admin.CreateTemplate(ctx, def)
	require.ErrorIs(t, err, template.ErrExists)
	ti, err = admin.PutTemplate(ctx, def)
	require.NoError(t, err)
	require.Equal(t, 2, ti.Version)
	ti, err = c.GetTemplate(ctx, "sampler")
	require.NoError(t, err)
	require.Equal(t, "a sampler", ti.Description)
	require.NotEmpty(t, ti.Workflow)
	list, err := c.ListTemplates(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)

	acc, err = c.EnqueueTemplate(ctx, "sampler", api.TemplateJobRequest{Params: map[string]any{"seed": 5}}, "")
	require.NoError(t, err)
	j, err = c.Get(ctx, acc.ID)
	require.NoError(t, err)
	require.Equal(t, "sampler", j.Template)
	require.Equal(t, 2, j.TemplateVersion)
	_, err = c.EnqueueTemplate(ctx, "sampler", api.TemplateJobRequest{Params: map[string]any{"nope": 1}}, "")
	require.ErrorAs(t, err, &se)
	require.Equal(t, job.CodeInvalidParams, se.Code)
	_, err = c.EnqueueTemplate(ctx, "missing", api.TemplateJobRequest{}, "")
	require.ErrorIs(t, err, template.ErrNotFound)

	require.NoError(t, admin.DeleteTemplate(ctx, "sampler"))
	require.ErrorIs(t, admin.DeleteTemplate(ctx, "sampler"), template.ErrNotFound)
	_, err = c.GetTemplate(ctx, "sampler")
	require.ErrorIs(t, err, template.ErrNotFound)

	// A wrong key is a 401 APIError.
	bad := b.client(t, "wrong-key-0123456789abcdef")
	_, _, err = bad.List(ctx, job.ListOptions{})
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 401, ae.Status)
	require.Equal(t, "unauthorized", ae.Code)

	_, err = apiclient.New("127.0.0.1:8080", "", nil)
	require.Error(t, err, "a URL without scheme")
}

// Watch reopens a stream that dropped (the server restarted) and still sees the end.
func TestClientWatchReconnects(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	acc := b.submit(t, map[string]any{"workflow": jsonRaw(imageWorkflow)})

	serve := func(ln net.Listener) (stop func()) {
		srv, err := api.New(api.Config{Redis: b.rdb, Storage: b.store, APIKeys: []string{userKey}, Logger: testLogger()})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, ln) }()
		return func() {
			cancel()
			require.NoError(t, <-done)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	stop := serve(ln)

	c, err := apiclient.New("http://"+addr, userKey, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	events, err := c.Watch(ctx, acc.ID)
	require.NoError(t, err)
	first := <-events
	require.Equal(t, job.StatusQueued, first.Job.Status)

	stop() // the stream ends with the server
	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err, "listen again on %s", addr)
	stop = serve(ln)
	defer stop()
	_, err = b.client(t, userKey).Cancel(ctx, acc.ID) // through the first bundle's server
	require.NoError(t, err)

	var last job.Event
	for ev := range events {
		last = ev
	}
	require.NotNil(t, last.Job)
	require.Equal(t, job.StatusCanceled, last.Job.Status)
}

func TestAPIErrorMatchesSpecErrorOnlyForSubmissions(t *testing.T) {
	t.Parallel()
	var se *job.SpecError
	err := error(&apiclient.APIError{Status: 404, Code: "not_found", Message: "x"})
	require.False(t, errors.As(err, &se))
	err = &apiclient.APIError{Status: 400, Code: "invalid_params", Message: "x", Field: "params", Details: []any{map[string]any{"param": "seed"}}}
	require.True(t, errors.As(err, &se))
	require.Equal(t, "params", se.Field)
	data, err := json.Marshal(se.Details)
	require.NoError(t, err)
	require.JSONEq(t, `[{"param":"seed"}]`, string(data))
}
