package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/comfyq/comfyq/comfy"
)

func init() {
	register(&command{
		name:    "workflow",
		summary: "convert a UI-format workflow to the API format",
		usage:   "convert UI.json --object-info URL|FILE [-o out.json]",
		help: `convert turns a workflow saved with ComfyUI's "Save" (nodes, links,
widgets_values) into the API format POST /prompt takes, as the frontend's "Queue"
does: widget values matched to inputs through object_info (--object-info: a saved
object_info JSON file, or a ComfyUI URL), control_after_generate and upload values
skipped, muted and bypassed nodes, reroutes, primitive nodes, group nodes and
subgraphs resolved. UI.json may be - for standard input. The result goes to
standard output, or to -o FILE.`,
		flags: workflowFlags,
	})
}

func workflowFlags(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	objectInfo := envString(fs, "object-info", "COMFYQ_OBJECT_INFO", "", "object_info JSON file or ComfyUI URL (required)")
	out := fs.String("o", "", "write the API-format workflow to this file (default: standard output)")
	strict := fs.Bool("strict", false, "fail on node types object_info does not know (default: skip them, as the frontend does)")
	return func(ctx context.Context, args []string) error {
		pos, err := interspersed(fs, args)
		if err != nil {
			return err
		}
		if len(pos) == 0 || pos[0] != "convert" {
			return usagef("want: workflow convert UI.json --object-info URL|FILE")
		}
		if len(pos) != 2 {
			return usagef("workflow convert: want exactly one UI.json")
		}
		if err := required("object-info", "COMFYQ_OBJECT_INFO", *objectInfo); err != nil {
			return err
		}
		data, err := readFileOrStdin(pos[1])
		if err != nil {
			return err
		}
		if !comfy.IsUIFormat(data) {
			if _, err := comfy.ParseWorkflow(data); err == nil {
				return fmt.Errorf("%s is already an API-format workflow", pos[1])
			}
			return fmt.Errorf("%s is not a UI-format workflow (no \"nodes\" list)", pos[1])
		}
		info, err := objectInfoSource(*objectInfo)(ctx)
		if err != nil {
			return fmt.Errorf("object_info: %w", err)
		}
		wf, err := comfy.ConvertUI(data, info, &comfy.ConvertOptions{Strict: *strict})
		if err != nil {
			return err
		}
		enc, err := json.MarshalIndent(wf, "", "  ")
		if err != nil {
			return err
		}
		enc = append(enc, '\n')
		if *out == "" {
			_, err = stdout(ctx).Write(enc)
			return err
		}
		if err := os.WriteFile(*out, enc, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stderr(ctx), "%s: %d nodes\n", *out, len(wf))
		return nil
	}
}
