package templatestore_test

import (
	"context"
	"fmt"
	"os"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/template"
	"github.com/comfyq/comfyq/templatestore"
)

// A Store registers templates in Redis and resolves template submissions for the
// producer library.
func ExampleStore() {
	ctx := context.Background()
	rdb, err := producer.OpenRedis("redis://127.0.0.1:6379/0")
	if err != nil {
		panic(err)
	}
	defer rdb.Close()
	node, err := comfy.New(comfy.Config{BaseURL: "http://127.0.0.1:8188"})
	if err != nil {
		panic(err)
	}
	store := templatestore.New(rdb, templatestore.Config{
		// Read object_info from a ComfyUI node for types, bounds and choices.
		ObjectInfo: node.ObjectInfo,
	})
	workflow, err := os.ReadFile("txt2img.json") // API or UI format
	if err != nil {
		panic(err)
	}
	t, err := store.Put(ctx, template.Definition{Name: "txt2img", Workflow: workflow})
	if err != nil {
		panic(err)
	}
	fmt.Println(t.Name, "version", t.Version)

	p, err := producer.New(producer.Config{Redis: rdb, Templates: store})
	if err != nil {
		panic(err)
	}
	j, err := p.Enqueue(ctx, job.Spec{Template: "txt2img", Params: map[string]any{"prompt": "a red fox", "seed": 7}})
	if err != nil {
		panic(err)
	}
	fmt.Println(j.ID)
}
