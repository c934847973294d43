package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/comfyq/comfyq/comfy"
)

func workflowCommand(b base) *cli.Command {
	o := &workflowOptions{base: b}
	return &cli.Command{
		Name:      "workflow",
		Usage:     "convert a UI-format workflow to the API format",
		ArgsUsage: "convert UI.json --object-info URL|FILE [-o out.json]",
		Description: `convert turns a workflow saved with ComfyUI's "Save" (nodes, links,
widgets_values) into the API format POST /prompt takes, as the frontend's "Queue"
does: widget values matched to inputs through object_info (--object-info: a saved
object_info JSON file, or a ComfyUI URL), control_after_generate and upload values
skipped, muted and bypassed nodes, reroutes, primitive nodes, group nodes and
subgraphs resolved. UI.json may be - for standard input. The result goes to
standard output, or to -o FILE.

Example:

  comfyq workflow convert my-graph.json --object-info http://127.0.0.1:8188 -o my-graph.api.json`,
		Flags: []cli.Flag{
			stringFlag(&o.ObjectInfo, "object-info", "COMFYQ_OBJECT_INFO", "", "object_info JSON file or ComfyUI URL (required)"),
			stringFlag(&o.Output, "o", "", "", "write the API-format workflow to this file (default: standard output)"),
			boolFlag(&o.Strict, "strict", "", false, "fail on node types object_info does not know (default: skip them, as the frontend does)"),
		},
		Action: action(o, &o.args),
	}
}

// workflowOptions are the flags and arguments of comfyq workflow.
type workflowOptions struct {
	base
	ObjectInfo, Output string
	Strict             bool
	args               []string
}

func (o *workflowOptions) Validate() error {
	if len(o.args) == 0 || o.args[0] != "convert" {
		return usagef("want: workflow convert UI.json --object-info URL|FILE")
	}
	if len(o.args) != 2 {
		return usagef("workflow convert: want exactly one UI.json")
	}
	return required("object-info", "COMFYQ_OBJECT_INFO", o.ObjectInfo)
}

func (o *workflowOptions) Run(ctx context.Context) error {
	pos := o.args
	data, err := readFileOrStdin(pos[1])
	if err != nil {
		return err
	}
	if !comfy.IsUIFormat(data) {
		if _, parseErr := comfy.ParseWorkflow(data); parseErr == nil {
			return fmt.Errorf("%s is already an API-format workflow", pos[1])
		}
		return fmt.Errorf("%s is not a UI-format workflow (no \"nodes\" list)", pos[1])
	}
	info, err := objectInfoSource(o.ObjectInfo)(ctx)
	if err != nil {
		return fmt.Errorf("object_info: %w", err)
	}
	wf, err := comfy.ConvertUI(data, info, &comfy.ConvertOptions{Strict: o.Strict})
	if err != nil {
		return err
	}
	enc, err := json.MarshalIndent(wf, "", "  ")
	if err != nil {
		return err
	}
	enc = append(enc, '\n')
	if o.Output == "" {
		_, err = o.Out.Write(enc)
		return err
	}
	if err := os.WriteFile(o.Output, enc, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(o.Err, "%s: %d nodes\n", o.Output, len(wf))
	return nil
}
