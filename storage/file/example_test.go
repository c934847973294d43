package file_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/comfyq/comfyq/storage"
	_ "github.com/comfyq/comfyq/storage/file" // registers file://
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "comfyq-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	store, err := storage.Open(ctx, "file://"+dir+"?base_url=http://127.0.0.1:8080/files/")
	if err != nil {
		panic(err)
	}
	key, err := storage.JoinKey("jobs", "0193", "9", storage.SanitizeName("ComfyUI_00001_.png"))
	if err != nil {
		panic(err)
	}
	obj, err := store.Put(ctx, key, strings.NewReader("not really a PNG"), storage.PutOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(obj.Key, obj.Size, obj.ContentType, obj.SHA256[:16])

	rc, _, err := store.Get(ctx, key)
	if err != nil {
		panic(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	fmt.Println(string(b))

	u, _ := store.URL(ctx, key, 0)
	fmt.Println(u)
	// Output:
	// jobs/0193/9/ComfyUI_00001_.png 16 image/png 9d243875ccf8e0cf
	// not really a PNG
	// http://127.0.0.1:8080/files/jobs/0193/9/ComfyUI_00001_.png
}
