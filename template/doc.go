// Package template turns a ComfyUI workflow into an endpoint: a named API-format
// workflow plus typed parameters, registered once and submitted many times as
// {"template": "txt2img", "params": {"prompt": "a red fox", "seed": 7}}.
//
// # Registering
//
// A Definition names a workflow in API format, or in UI format (what ComfyUI's "Save"
// writes), which is converted with object_info on registration. Compile checks it and
// builds the Template; package templatestore compiles and keeps templates in Redis:
//
//	store := templatestore.New(rdb, templatestore.Config{ObjectInfo: node.ObjectInfo})
//	t, err := store.Put(ctx, template.Definition{Name: "txt2img", Workflow: data})
//
// A store's Put creates or replaces a template; every registration under a name bumps
// its Version by one, atomically, so a job records which version it ran
// (job.Job.TemplateVersion). Create refuses a name that exists (ErrExists), Get and
// Delete an unknown one (ErrNotFound). A refused definition is a *job.SpecError with
// code invalid_template (name, parameters) or invalid_workflow (the workflow cannot be
// read, converted or has broken links; ComfyUI's problems are listed in Details).
//
// # Parameters by convention
//
// When a Definition declares no parameters, Discover finds them:
//
//  1. Titled nodes. A node titled "Input: <name>" (the prefix is Definition.TitlePrefix)
//     gives parameters from its constant inputs. When <name> is one of them (exactly,
//     else ignoring case), that input alone is the parameter <name>: "Input: color" on
//     EmptyImage gives color, and width, height and batch_size stay as the workflow has
//     them. Otherwise every constant input is a parameter: <name> when the node has one
//     such input, <name>_<input> when it has several ("Input: size" on
//     EmptyLatentImage gives size_width, size_height, size_batch_size). Inputs that are
//     links, lists, hidden or unknown to the class's object_info are left out. A
//     LoadImage titled "Input: photo" gives the image parameter photo. Several nodes
//     with the same title and type share one parameter (a prompt fed to an SDXL base
//     and refiner); a name two nodes want for different types is suffixed with the
//     node id. Template.ParamsMade (params_made in the registration response) lists
//     every name made up this way, with its node, input and title.
//  2. The sampler heuristic, when no node is titled. The first KSampler,
//     KSamplerAdvanced or SamplerCustom (in node id order) whose positive input reaches
//     a text encoder is the primary sampler. Its positive and negative links are
//     followed through pass-through conditioning nodes (ControlNetApply, LTXVConditioning,
//     …) to a *TextEncode* node: prompt and negative_prompt target its text. The
//     sampler's seed (or noise_seed), steps and cfg give seed, steps and cfg; the empty
//     latent it starts from (else the first EmptyLatentImage) gives width, height and
//     batch_size; every LoadImage-like node gives an image parameter, image or
//     image_<id> when there are several. The same input of another sampler joins a
//     parameter when its value equals the primary's: in API format, that is what one UI
//     widget feeding several samplers leaves behind.
//  3. Types, bounds, choices, defaults and descriptions come from object_info: INT is
//     integer with its min and max, FLOAT is number, STRING is string (multiline for
//     prompts), BOOLEAN is boolean, a combo is a string with its choices as enum, and a
//     combo with an upload button (LoadImage's image) is an image. The default is the
//     workflow's value, else object_info's; the description is the input's tooltip,
//     else "<class>.<input> of node <id> (<title>)". Without object_info types are
//     inferred from the workflow's values.
//
// Targets are always stored with node ids ("6.inputs.text"), never titles.
//
// # Explicit parameters
//
// Definition.Params declares the parameters instead. A target's node may be given by
// id, by unique title or by unique class ("KSampler.inputs.seed"); it is resolved to
// the node id on registration (an ambiguous or missing node is an error, and so is an
// input that is a link). Whatever a ParamSpec leaves out is filled as for discovered
// parameters.
//
// # Submitting
//
// Template.Apply, and templatestore.Store.Resolve which implements
// job.TemplateResolver, check every parameter at once: unknown names, wrong types, values out of range or not among
// the choices, missing required parameters. All problems come back in one
// *job.SpecError with code invalid_params, field "params" and Details a []Violation.
// Missing optional parameters take their defaults. Apply returns a copy; the template is
// never changed. Integers are exact: a seed of 18446744073709551615 (2^64-1, the
// KSampler maximum) is written as given, and bounds keep object_info's literal text.
//
// Image parameters are not given in params: a submission's images maps the parameter's
// name to a file ({"url"}, {"base64"} or {"key"}); Resolve returns each image
// parameter's targets so the worker can upload the file and wire its name in.
//
// # JSON Schema
//
// Template.JSONSchema is the JSON Schema (draft 2020-12, an OpenAPI 3.1 schema object)
// of the params object: each parameter's type, default, minimum, maximum, enum and
// description, the required ones, and additionalProperties false. ImagesSchema is the
// schema of the images object. Neither carries "$schema", so both embed as they are.
//
// # Dependencies
//
// This package holds the template types and their rules only: it links no Redis
// client, so the HTTP API's Go client (api/apiclient) can use its types. Storage is
// package templatestore.
package template
