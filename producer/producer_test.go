package producer_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/validate"
	"github.com/comfyq/comfyq/fairshare"
	"github.com/comfyq/comfyq/internal/fixtures"
	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/producer"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(fixtures.Path(name))
	require.NoError(t, err)
	return data
}

func setup(t *testing.T, cfg producer.Config) (*producer.Client, *asynq.Inspector) {
	t.Helper()
	rdb, err := producer.OpenRedis(testenv.NewRedis(t))
	require.NoError(t, err)
	t.Cleanup(func() { rdb.Close() })
	cfg.Redis = rdb
	p, err := producer.New(cfg)
	require.NoError(t, err)
	return p, asynq.NewInspectorFromRedisClient(rdb)
}

func payloadOf(t *testing.T, insp *asynq.Inspector, j *job.Job) *job.Payload {
	t.Helper()
	info, err := insp.GetTaskInfo(j.Queue, j.ID)
	require.NoError(t, err)
	require.Equal(t, job.TypeJob, info.Type)
	p, err := job.DecodePayload(info.Payload)
	require.NoError(t, err)
	return p
}

func TestEnqueueWritesRecordAndTask(t *testing.T) {
	t.Parallel()
	p, insp := setup(t, producer.Config{})
	ctx := context.Background()
	wf := `{"1":{"class_type":"EmptyImage","inputs":{"width":8,"height":8,"batch_size":1,"color":0}},
	        "2":{"class_type":"SaveImage","inputs":{"images":["1",0],"filename_prefix":"x"}},
	        "3":{"class_type":"KSampler","inputs":{"seed":18446744073709551615}}}`
	j, err := p.Enqueue(ctx, job.Spec{Workflow: json.RawMessage(wf), Queue: "high",
		Set: map[string]any{"1.inputs.width": 16, "SaveImage.inputs.filename_prefix": "renamed"}})
	require.NoError(t, err)
	require.True(t, job.ValidID(j.ID))
	require.Equal(t, "high", j.Queue)

	got, err := p.Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusQueued, got.Status)

	payload := payloadOf(t, insp, j)
	require.Equal(t, j.ID, payload.JobID)
	prompt, err := comfy.ParseWorkflow(payload.Prompt)
	require.NoError(t, err)
	require.Equal(t, json.Number("16"), prompt["1"].Inputs["width"])
	require.Equal(t, "renamed", prompt["2"].Inputs["filename_prefix"])
	require.Equal(t, json.Number("18446744073709551615"), prompt["3"].Inputs["seed"], "seeds keep every digit")
}

func TestEnqueueRefusesBadInput(t *testing.T) {
	t.Parallel()
	p, _ := setup(t, producer.Config{})
	ctx := context.Background()
	good := json.RawMessage(`{"1":{"class_type":"EmptyImage","inputs":{}}}`)
	for name, spec := range map[string]job.Spec{
		"set unknown node": {Workflow: good, Set: map[string]any{"9.inputs.x": 1}},
		"set bad path":     {Workflow: good, Set: map[string]any{"1.width": 1}},
		"image bad target": {Workflow: good, Images: map[string]job.ImageSource{"7.inputs.image": {URL: "https://example.com/a.png"}}},
		"template":         {Template: "nope"},
		"ui without info":  {Workflow: fixture(t, "workflows/default_graph.ui.json")},
		"reserved queue":   {Workflow: good, Queue: "comfyq_webhooks"},
		"bad tenant":       {Workflow: good, Tenant: "not a tenant"},
	} {
		_, err := p.Enqueue(ctx, spec)
		var se *job.SpecError
		require.ErrorAs(t, err, &se, name)
	}
	jobs, _, err := p.List(ctx, job.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, jobs)
}

func TestEnqueueConvertsUIFormat(t *testing.T) {
	t.Parallel()
	info, err := comfy.ParseObjectInfo(fixture(t, fixtures.ObjectInfo))
	require.NoError(t, err)
	p, insp := setup(t, producer.Config{ObjectInfo: func(context.Context) (comfy.ObjectInfo, error) { return info, nil }})
	ui := fixture(t, "workflows/default_embedding.ui.json")
	j, err := p.Enqueue(context.Background(), job.Spec{Workflow: ui})
	require.NoError(t, err)
	payload := payloadOf(t, insp, j)
	prompt, err := comfy.ParseWorkflow(payload.Prompt)
	require.NoError(t, err)
	want, err := comfy.ParseWorkflow(fixture(t, "workflows/default_embedding.api.json"))
	require.NoError(t, err)
	require.Equal(t, len(want), len(prompt))
	for id, n := range want {
		require.Equal(t, n.ClassType, prompt[id].ClassType, "node %s", id)
	}
	require.JSONEq(t, string(ui), string(payload.ExtraPNGInfo["workflow"]), "the UI graph goes into the PNG metadata")
}

// An idempotent re-submission whose first submission died between the record and the
// task enqueues the task again, under the existing job's own id.
func TestIdempotentResubmitEnqueuesExistingJob(t *testing.T) {
	t.Parallel()
	p, insp := setup(t, producer.Config{})
	ctx := context.Background()
	wf := `{"1":{"class_type":"EmptyImage","inputs":{"width":8,"height":8,"batch_size":1,"color":0}},
	        "2":{"class_type":"SaveImage","inputs":{"images":["1",0],"filename_prefix":"x"}}}`
	first, err := p.Enqueue(ctx, job.Spec{Workflow: json.RawMessage(wf), IdempotencyKey: "order-9"})
	require.NoError(t, err)
	// The task is lost (the first submitter died before enqueueing it).
	require.NoError(t, insp.DeleteTask(first.Queue, first.ID))

	again, err := p.Enqueue(ctx, job.Spec{Workflow: json.RawMessage(wf), IdempotencyKey: "order-9"})
	require.NoError(t, err)
	require.Equal(t, first.ID, again.ID)
	require.Equal(t, first.ID, payloadOf(t, insp, first).JobID, "the task names the existing job")
}

// The Go library refuses what the API refuses: the prompt is validated as it will
// reach the node (set applied), against object_info when it has one, and nothing is
// stored.
func TestEnqueueValidatesThePrompt(t *testing.T) {
	t.Parallel()
	info, err := comfy.ParseObjectInfo(fixtures.ReadObjectInfo(t))
	require.NoError(t, err)
	p, insp := setup(t, producer.Config{
		ObjectInfo: func(context.Context) (comfy.ObjectInfo, error) { return info, nil },
		Limits:     validate.Limits{MaxImages: 1},
	})
	ctx := context.Background()
	wf := json.RawMessage(`{"1":{"class_type":"EmptyImage","inputs":{"width":8,"height":8,"batch_size":1,"color":0}},
	        "2":{"class_type":"SaveImage","inputs":{"images":["1",0],"filename_prefix":"x"}}}`)
	refused := func(spec job.Spec, code job.Code, field string) *job.SpecError {
		t.Helper()
		_, enqErr := p.Enqueue(ctx, spec)
		var se *job.SpecError
		require.ErrorAs(t, enqErr, &se)
		require.Equal(t, code, se.Code, "%v", enqErr)
		require.Equal(t, field, se.Field)
		return se
	}
	se := refused(job.Spec{Workflow: wf, Set: map[string]any{"2.inputs.images": comfy.Link{NodeID: "2"}}}, job.CodeInvalidWorkflow, "workflow")
	ve, ok := se.Details.(*comfy.ValidationError)
	require.True(t, ok, "details: %T", se.Details)
	require.Equal(t, "dependency_cycle", ve.NodeErrors["2"].Errors[len(ve.NodeErrors["2"].Errors)-1].Type)
	se = refused(job.Spec{Workflow: wf, Set: map[string]any{"1.inputs.width": 1_000_000_000}}, job.CodeInvalidWorkflow, "workflow")
	require.Contains(t, se.Message, "Value 1000000000 bigger than max of 16384")
	se = refused(job.Spec{Workflow: wf, Images: map[string]job.ImageSource{"1.inputs.a": {URL: "https://example.com/a.png"}, "1.inputs.b": {URL: "https://example.com/b.png"}}}, job.CodeTooLarge, "images")
	require.Contains(t, se.Message, "at most 1")

	// Same key, same submission: the same job; another body: refused.
	j1, err := p.Enqueue(ctx, job.Spec{Workflow: wf, IdempotencyKey: "k"})
	require.NoError(t, err)
	j2, err := p.Enqueue(ctx, job.Spec{Workflow: wf, IdempotencyKey: "k", Queue: job.DefaultQueue})
	require.NoError(t, err)
	require.Equal(t, j1.ID, j2.ID)
	se = refused(job.Spec{Workflow: wf, IdempotencyKey: "k", Queue: "high"}, job.CodeIdempotencyKeyReuse, "idempotency_key")
	require.Contains(t, se.Message, j1.ID)

	qs, err := insp.Queues()
	require.NoError(t, err)
	tasks := 0
	for _, q := range qs {
		qi, err := insp.GetQueueInfo(q)
		require.NoError(t, err)
		tasks += qi.Size
	}
	require.Equal(t, 1, tasks, "only the accepted submission is enqueued")
}

// TestFairShareParksATenantsBurst enqueues more jobs of one tenant than its window: the
// window's tasks are pending, the rest wait scheduled, and a job of another tenant goes
// straight into the queue; canceling a pending job lets the next parked one in.
func TestFairShareParksATenantsBurst(t *testing.T) {
	t.Parallel()
	p, insp := setup(t, producer.Config{})
	ctx := context.Background()
	wf := json.RawMessage(`{"1":{"class_type":"EmptyImage","inputs":{}},"2":{"class_type":"SaveImage","inputs":{"images":["1",0]}}}`)
	var burst []*job.Job
	for i := 0; i < fairshare.DefaultWindow+3; i++ {
		j, err := p.Enqueue(ctx, job.Spec{Workflow: wf, Tenant: "heavy"})
		require.NoError(t, err)
		require.Equal(t, "heavy", j.Tenant)
		burst = append(burst, j)
	}
	other, err := p.Enqueue(ctx, job.Spec{Workflow: wf, Tenant: "light"})
	require.NoError(t, err)
	state := func(id string) asynq.TaskState {
		info, infoErr := insp.GetTaskInfo("default", id)
		require.NoError(t, infoErr)
		return info.State
	}
	for i, j := range burst {
		want := asynq.TaskStatePending
		if i >= fairshare.DefaultWindow {
			want = asynq.TaskStateScheduled
		}
		require.Equal(t, want, state(j.ID), "burst job %d", i)
	}
	require.Equal(t, asynq.TaskStatePending, state(other.ID), "another tenant is not held back")

	_, err = p.Cancel(ctx, burst[0].ID)
	require.NoError(t, err)
	require.Equal(t, asynq.TaskStatePending, state(burst[fairshare.DefaultWindow].ID), "the next parked job took the place")
	require.Equal(t, asynq.TaskStateScheduled, state(burst[fairshare.DefaultWindow+1].ID))

	// Without fair sharing, every job goes straight in.
	plain, insp2 := setup(t, producer.Config{NoFairShare: true})
	for i := 0; i < fairshare.DefaultWindow+2; i++ {
		j, err := plain.Enqueue(ctx, job.Spec{Workflow: wf, Tenant: "heavy"})
		require.NoError(t, err)
		info, infoErr := insp2.GetTaskInfo("default", j.ID)
		require.NoError(t, infoErr)
		require.Equal(t, asynq.TaskStatePending, info.State)
	}
}
