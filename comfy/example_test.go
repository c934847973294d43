package comfy_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/comfyq/comfyq/comfy"
	"github.com/comfyq/comfyq/comfy/comfysim"
)

// startSim starts a simulated ComfyUI node for the examples; a real program uses the
// node's URL, such as http://127.0.0.1:8188.
func startSim() (url string, stop func()) {
	sim, err := comfysim.New(comfysim.Options{})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	return srv.URL, func() {
		srv.Close()
		_ = sim.Close()
	}
}

func ExampleClient_Run() {
	url, stop := startSim()
	defer stop()

	c, err := comfy.New(comfy.Config{BaseURL: url})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	wf, err := comfy.ParseWorkflow([]byte(`{
	  "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
	  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "example"}}}`))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Choose the prompt id: a UUID (uuid.NewString() in a real program).
	h, err := c.Run(ctx, comfy.PromptRequest{Prompt: wf, PromptID: "0b0f5a5e-3c1f-4f43-9d2b-6a5f1d3c2e10"}, comfy.FollowOptions{})
	var execErr *comfy.ExecutionError
	switch {
	case errors.As(err, &execErr):
		log.Fatalf("node %s failed: %v", execErr.NodeID, err)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(h.Status.StatusStr)
	for _, f := range h.Files() {
		fmt.Println(f.NodeID, f.Key, f.Filename, f.Type)
	}
	// Output:
	// success
	// 2 images example_00001_.png output
}

func ExampleClient_QueuePrompt() {
	url, stop := startSim()
	defer stop()
	c, err := comfy.New(comfy.Config{BaseURL: url})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	wf, _ := comfy.ParseWorkflow([]byte(`{"1": {"class_type": "NoSuchNode", "inputs": {}}}`))
	_, err = c.QueuePrompt(context.Background(), comfy.PromptRequest{Prompt: wf})
	var ve *comfy.ValidationError
	if errors.As(err, &ve) {
		fmt.Println(ve.Err.Type)
		fmt.Println(err)
	}
	// Output:
	// invalid_prompt
	// comfy: prompt rejected: invalid_prompt: Cannot execute because node NoSuchNode does not exist. (Node ID '#1')
}

func ExampleClient_Subscribe() {
	url, stop := startSim()
	defer stop()
	c, err := comfy.New(comfy.Config{BaseURL: url})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	const id = "5d1e6c0a-2b7e-4b8e-9a51-0c4f3e2d1a99"
	sub := c.Subscribe(id) // before queueing: messages can beat the POST answer
	defer sub.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	wf, _ := comfy.ParseWorkflow([]byte(`{
	  "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 255}},
	  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "sub"}}}`))
	if _, err := c.QueuePrompt(ctx, comfy.PromptRequest{Prompt: wf, PromptID: id}); err != nil {
		log.Fatal(err)
	}
	for ev := range sub.C {
		v, err := ev.Decode()
		if err != nil {
			log.Fatal(err)
		}
		switch e := v.(type) {
		case *comfy.Executing:
			if e.Done() {
				fmt.Println("done")
				return
			}
			fmt.Println("executing", *e.Node)
		case *comfy.Executed:
			fmt.Println("executed", e.Node, e.Output.Files()[0].Filename)
		case *comfy.ExecutionSuccess:
			fmt.Println("success")
		}
	}
	// Output:
	// executing 1
	// executing 2
	// executed 2 sub_00001_.png
	// success
	// done
}

func ExampleWorkflow_Set() {
	wf, err := comfy.ParseWorkflow([]byte(`{
	  "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "model": ["4", 0]}},
	  "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ""}, "_meta": {"title": "Input: prompt"}}}`))
	if err != nil {
		log.Fatal(err)
	}
	_ = wf.Set("3.inputs.seed", uint64(18446744073709551615)) // by node id
	_ = wf.Set("KSampler.inputs.steps", 30)                   // by unique class
	_ = wf.Set("Input: prompt.inputs.text", "a red fox")      // by unique title
	out, _ := json.Marshal(wf["3"].Inputs)
	fmt.Println(string(out))
	fmt.Println(wf["6"].Inputs["text"])
	// Output:
	// {"model":["4",0],"seed":18446744073709551615,"steps":30}
	// a red fox
}

func ExampleDecodeBinaryFrame() {
	// A type 3 (TEXT) frame: [u32 type][u32 len(node id)][node id][text].
	frame := binary.BigEndian.AppendUint32(nil, 3)
	frame = binary.BigEndian.AppendUint32(frame, 2)
	frame = append(frame, "12step 4/20"...)
	f, err := comfy.DecodeBinaryFrame(frame)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f.Type, f.NodeID, f.Text)
	// Output:
	// 3 12 step 4/20
}

func ExampleNodeOutput_Files() {
	var out comfy.NodeOutput
	_ = json.Unmarshal([]byte(`{
	  "images": [{"filename": "clip_00001_.webp", "subfolder": "", "type": "output"}],
	  "animated": [true],
	  "gifs": [{"filename": "v_00001.mp4", "subfolder": "", "type": "output", "format": "video/h264-mp4"}],
	  "text": ["a caption"]}`), &out)
	for _, f := range out.Files() {
		fmt.Printf("%s %s animated=%t format=%q\n", f.Key, f.Filename, f.Animated, f.Format)
	}
	fmt.Println(out.Text())
	// Output:
	// gifs v_00001.mp4 animated=false format="video/h264-mp4"
	// images clip_00001_.webp animated=true format=""
	// [a caption]
}
