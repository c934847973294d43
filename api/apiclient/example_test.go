package apiclient_test

import (
	"context"
	"fmt"
	"log"

	"github.com/comfyq/comfyq/api/apiclient"
	"github.com/comfyq/comfyq/job"
)

// A program submits a workflow to a comfyq API server and waits for its outputs.
func ExampleClient() {
	ctx := context.Background()
	c, err := apiclient.New("http://127.0.0.1:8080", "my-api-key-0123456789", nil)
	if err != nil {
		log.Fatal(err)
	}
	j, err := c.Enqueue(ctx, job.Spec{
		Workflow:       []byte(`{"1": {"class_type": "EmptyImage", "inputs": {}}}`),
		IdempotencyKey: "order-17",
	})
	if err != nil {
		log.Fatal(err)
	}
	j, err = c.Wait(ctx, j.ID)
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range j.Outputs {
		fmt.Println(o.URL)
	}
}

// A template turns a workflow into an endpoint with typed parameters.
func ExampleClient_EnqueueTemplate() {
	ctx := context.Background()
	c, err := apiclient.New("http://127.0.0.1:8080", "my-api-key-0123456789", nil)
	if err != nil {
		log.Fatal(err)
	}
	acc, err := c.EnqueueTemplate(ctx, "txt2img", apiclient.TemplateJobRequest{
		Params: map[string]any{"prompt": "a red fox in the snow", "seed": 7},
	}, "")
	if err != nil {
		log.Fatal(err) // a *job.SpecError lists every bad parameter
	}
	fmt.Println(acc.StatusURL)
}
