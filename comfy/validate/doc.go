// Package validate checks an API-format prompt before it is queued, as a ComfyUI node
// would check it on POST /prompt, so that work the node would refuse is refused at the
// door instead of after a queue slot and a node's time.
//
//	err := validate.Prompt(wf, info, validate.Options{})
//	var ve *comfy.ValidationError  // ComfyUI's {"error", "node_errors"} shape
//	var le *validate.LimitError    // a size limit (nodes, strings, nesting)
//
// # What is checked
//
// Always, from the prompt alone: its size (Limits), that every node has a class_type,
// that every link names a node that exists with a non-negative output slot and a
// string node id, and that no node depends on itself (self-loops and longer cycles).
//
// With the node classes a ComfyUI node reports (GET /object_info), ComfyUI's own
// checks from execution.py validate_prompt and validate_inputs: every class is known,
// at least one node is an output node, and for every node an output depends on:
// required inputs are present, a link's output slot exists on its source class and
// its type fits the input (validate_node_input: "*", unions "A,B", match types), INT
// and FLOAT values convert and lie within min and max, and a choice (COMBO) value is
// one of its choices.
//
// # Where it differs from ComfyUI
//
//   - Every problem is reported at once, also those ComfyUI reports one at a time
//     (several unknown classes, a cycle next to a missing input).
//   - A prompt with any error is refused, even when some of its outputs would still
//     run on ComfyUI (which drops the broken outputs and runs the rest).
//   - A choice list that is empty (a model folder the node reported empty, as in a
//     saved object_info of a machine without models) is not checked: the names are
//     unknown, not absent. Uploadable choices (image_upload, video_upload,
//     audio_upload, file_upload: LoadImage's image) and remote choices are not checked
//     either: ComfyUI checks those in the node's own VALIDATE_INPUTS against the files
//     on the node. Inputs the caller provides later (Options.Provided: an uploaded
//     image the worker wires in) count as present and their values are not checked.
//   - step is not checked: ComfyUI's server does not check it either (its frontend
//     rounds), so a value off the step runs on the node.
//   - A node's own VALIDATE_INPUTS (custom Python checks) cannot be run here; ComfyUI
//     skips the min/max and choice checks of the inputs such a function takes, and
//     this package cannot know which those are beyond the upload widgets above.
package validate
