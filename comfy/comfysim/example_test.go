package comfysim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/comfyq/comfyq/comfy/comfysim"
)

// A simulated node behind an ordinary HTTP server: queue §10's workflow and
// read its output from history.
func ExampleNew() {
	sim, err := comfysim.New(comfysim.DefaultOptions())
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()

	body := `{"prompt_id": "example", "prompt": {
		"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
		"2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "test"}}}}`
	resp, err := http.Post(srv.URL+"/prompt", "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()

	for {
		resp, err := http.Get(srv.URL + "/history/example")
		if err != nil {
			panic(err)
		}
		var h map[string]struct {
			Outputs map[string]struct {
				Images []struct {
					Filename string `json:"filename"`
				} `json:"images"`
			} `json:"outputs"`
		}
		err = json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if err != nil {
			panic(err)
		}
		if e, ok := h["example"]; ok {
			fmt.Println(e.Outputs["2"].Images[0].Filename)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Output: test_00001_.png
}
