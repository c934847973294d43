package storage_test

import (
	"fmt"

	"github.com/comfyq/comfyq/storage"
)

func ExampleSanitizeName() {
	fmt.Println(storage.SanitizeName("ComfyUI_00001_.png"))
	fmt.Println(storage.SanitizeName("../../etc/passwd"))
	fmt.Println(storage.SanitizeName(".."))
	// Output:
	// ComfyUI_00001_.png
	// _.._etc_passwd
	// file
}

func ExampleJoinKey() {
	key, err := storage.JoinKey("jobs", "01937c9e-8f3a-7b2c-9d1e-4f5a6b7c8d9e", "9", storage.SanitizeName("ComfyUI_00001_.png"))
	fmt.Println(key, err)

	_, err = storage.JoinKey("jobs", "..", "x.png")
	fmt.Println(err)
	// Output:
	// jobs/01937c9e-8f3a-7b2c-9d1e-4f5a6b7c8d9e/9/ComfyUI_00001_.png <nil>
	// storage: invalid key: part 1 "..": segment ".." not allowed
}
