package netguard_test

import (
	"context"
	"fmt"

	"github.com/comfyq/comfyq/internal/netguard"
)

func ExamplePolicy_CheckURL() {
	ctx := context.Background()
	var p netguard.Policy // the default: public http and https URLs only
	for _, u := range []string{
		"https://8.8.8.8/image.png",
		"http://169.254.169.254/latest/meta-data/",
		"http://[::ffff:127.0.0.1]:8188/prompt",
		"http://2130706433/",
		"file:///etc/passwd",
	} {
		fmt.Println(p.CheckURL(ctx, u))
	}

	p.AllowPrivate = true // COMFYQ_ALLOW_PRIVATE_URLS=true
	fmt.Println(p.CheckURL(ctx, "http://127.0.0.1:8188/prompt"))
	// Output:
	// <nil>
	// netguard: 169.254.169.254 is a cloud metadata address; set COMFYQ_ALLOW_PRIVATE_URLS=true to allow
	// netguard: ::ffff:127.0.0.1 is a loopback address; set COMFYQ_ALLOW_PRIVATE_URLS=true to allow
	// netguard: 2130706433 resolves to loopback address 127.0.0.1; set COMFYQ_ALLOW_PRIVATE_URLS=true to allow
	// netguard: invalid URL: scheme "file" not allowed (want http or https)
	// <nil>
}
