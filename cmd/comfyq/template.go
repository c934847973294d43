package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/comfyq/comfyq/api"
	"github.com/comfyq/comfyq/api/apiclient"
	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/template"
	"github.com/comfyq/comfyq/templatestore"
)

// templateBackend is the template store, local (Redis) or remote (API).
type templateBackend interface {
	create(ctx context.Context, def template.Definition) (*api.TemplateInfo, error)
	put(ctx context.Context, def template.Definition) (*api.TemplateInfo, error)
	get(ctx context.Context, name string) (*api.TemplateInfo, error)
	list(ctx context.Context) ([]api.TemplateInfo, error)
	remove(ctx context.Context, name string) error
}

type remoteTemplates struct{ c *apiclient.Client }

func (r remoteTemplates) create(ctx context.Context, d template.Definition) (*api.TemplateInfo, error) {
	return r.c.CreateTemplate(ctx, d)
}
func (r remoteTemplates) put(ctx context.Context, d template.Definition) (*api.TemplateInfo, error) {
	return r.c.PutTemplate(ctx, d)
}
func (r remoteTemplates) get(ctx context.Context, name string) (*api.TemplateInfo, error) {
	return r.c.GetTemplate(ctx, name)
}
func (r remoteTemplates) list(ctx context.Context) ([]api.TemplateInfo, error) {
	return r.c.ListTemplates(ctx)
}
func (r remoteTemplates) remove(ctx context.Context, name string) error {
	return r.c.DeleteTemplate(ctx, name)
}

type localTemplates struct{ s *templatestore.Store }

func info(t *template.Template, err error) (*api.TemplateInfo, error) {
	if err != nil {
		return nil, err
	}
	return &api.TemplateInfo{Template: t, ParamsSchema: t.JSONSchema(), ImagesSchema: t.ImagesSchema()}, nil
}

func (l localTemplates) create(ctx context.Context, d template.Definition) (*api.TemplateInfo, error) {
	return info(l.s.Create(ctx, d))
}
func (l localTemplates) put(ctx context.Context, d template.Definition) (*api.TemplateInfo, error) {
	return info(l.s.Put(ctx, d))
}
func (l localTemplates) get(ctx context.Context, name string) (*api.TemplateInfo, error) {
	return info(l.s.Get(ctx, name))
}
func (l localTemplates) list(ctx context.Context) ([]api.TemplateInfo, error) {
	ts, err := l.s.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.TemplateInfo, 0, len(ts))
	for _, t := range ts {
		ti, _ := info(t, nil)
		out = append(out, *ti)
	}
	return out, nil
}
func (l localTemplates) remove(ctx context.Context, name string) error { return l.s.Delete(ctx, name) }

func templateCommand(b base) *cli.Command {
	o := &templateOptions{base: b}
	return &cli.Command{
		Name:      "template",
		Usage:     "register, list, show and remove templates (workflows as typed endpoints)",
		ArgsUsage: "add NAME --workflow FILE [--param NAME=TARGET[,TARGET]] [--param-from-titles] [--description TEXT] [--replace] | list | show NAME [--json] | rm NAME",
		Description: `Manages templates, through an API server (--api URL with an admin --api-key) or
in Redis directly (--redis URL).

  add NAME --workflow FILE   registers a workflow (API or UI format; a UI-format one
                             is converted with object_info: --object-info in --redis
                             mode, the server's in --api mode). Parameters are declared
                             with --param NAME=TARGET[,TARGET…] (TARGET is
                             NODE.inputs.INPUT, NODE an id, a unique title or a unique
                             class), or found by convention: nodes titled
                             "Input: NAME" (--title-prefix changes the prefix), else the
                             KSampler heuristic (prompt, negative_prompt, seed, steps, …).
                             --param-from-titles says so explicitly and fails when no
                             node has such a title. A name that exists is refused
                             unless --replace (which makes a new version).
  list                       names, versions and parameters
  show NAME                  one template; --json prints it with its JSON Schemas
  rm NAME                    deletes it

Examples:

  comfyq template add txt2img --workflow txt2img.ui.json --api http://127.0.0.1:8080 --api-key ADMIN_KEY
  comfyq template add portrait --workflow p.json --param seed=KSampler.inputs.seed --param prompt=6.inputs.text
  comfyq template list --redis redis://127.0.0.1:6379/0`,
		Flags: flagList([]cli.Flag{
			stringFlag(&o.RedisURL, "redis", "COMFYQ_REDIS_URL", "", "Redis URL (instead of --api)"),
		}, apiClientFlags(&o.APIURL, &o.APIKey, "API key for --api (an admin key to add or remove)"), []cli.Flag{
			stringFlag(&o.ObjectInfo, "object-info", "COMFYQ_OBJECT_INFO", "", "object_info file or ComfyUI URL (--redis mode), to convert UI-format workflows and type parameters"),
			stringFlag(&o.Workflow, "workflow", "", "", "add: workflow JSON file (API or UI format); - reads standard input"),
			stringFlag(&o.Description, "description", "", "", "add: what the template does"),
			listFlag(&o.Params, "param", "", "add: parameter NAME=TARGET[,TARGET…], e.g. seed=KSampler.inputs.seed"),
			boolFlag(&o.FromTitles, "param-from-titles", "", false, "add: take the parameters from nodes titled \"Input: NAME\" (the default without --param), and fail if there are none"),
			stringFlag(&o.TitlePrefix, "title-prefix", "", "", "add: the title prefix of input nodes (default \"Input: \")"),
			boolFlag(&o.Replace, "replace", "", false, "add: replace an existing template (a new version)"),
			boolFlag(&o.JSON, "json", "", false, "print JSON"),
		}),
		Action: action(o, &o.args),
	}
}

// templateOptions are the flags and arguments of comfyq template.
type templateOptions struct {
	base
	RedisURL, APIURL, APIKey, ObjectInfo string
	Workflow, Description, TitlePrefix   string
	Params                               []string
	FromTitles, Replace, JSON            bool
	args                                 []string
}

func (o *templateOptions) Validate() error {
	if len(o.args) == 0 {
		return usagef("want a subcommand: add, list, show or rm")
	}
	sub, rest := o.args[0], o.args[1:]
	switch sub {
	case "add":
		if len(rest) != 1 {
			return usagef("template add: want exactly one NAME")
		}
		if o.Workflow == "" {
			return usagef("template add: --workflow FILE is required")
		}
		if o.FromTitles && len(o.Params) > 0 {
			return usagef("template add: --param and --param-from-titles exclude each other")
		}
	case "list", "ls":
		if len(rest) != 0 {
			return usagef("template list takes no arguments")
		}
	case "show":
		if len(rest) != 1 {
			return usagef("template show: want exactly one NAME")
		}
	case "rm", "remove", "delete":
		if len(rest) != 1 {
			return usagef("template rm: want exactly one NAME")
		}
	default:
		return usagef("unknown subcommand %q (want add, list, show or rm)", sub)
	}
	return nil
}

func (o *templateOptions) Run(ctx context.Context) error {
	sub, rest := o.args[0], o.args[1:]
	backend, closeFn, err := openTemplates(o.APIURL, o.APIKey, o.RedisURL, o.ObjectInfo)
	if err != nil {
		return err
	}
	defer closeFn()
	w := o.Out
	switch sub {
	case "add":
		data, err := readFileOrStdin(o.Workflow)
		if err != nil {
			return err
		}
		def := template.Definition{Name: rest[0], Description: o.Description, Workflow: data, TitlePrefix: o.TitlePrefix}
		if def.Params, err = paramSpecs(o.Params); err != nil {
			return err
		}
		ti, err := addTemplate(ctx, backend, def, o.Replace, o.FromTitles)
		if err != nil {
			return templateError(err, rest[0])
		}
		if o.JSON {
			return printJSON(w, ti)
		}
		fmt.Fprintf(w, "template %s version %d\n", ti.Name, ti.Version)
		printParams(w, ti.Template)
		printMade(w, ti.Template)
		return nil
	case "list", "ls":
		ts, err := backend.list(ctx)
		if err != nil {
			return templateError(err, "")
		}
		sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
		if o.JSON {
			return printJSON(w, api.TemplateList{Templates: ts})
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tVERSION\tUPDATED\tPARAMETERS")
		for _, t := range ts {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", t.Name, t.Version, t.UpdatedAt.Format("2006-01-02 15:04"), paramNames(t.Template))
		}
		return tw.Flush()
	case "show":
		ti, err := backend.get(ctx, rest[0])
		if err != nil {
			return templateError(err, rest[0])
		}
		if o.JSON {
			return printJSON(w, ti)
		}
		fmt.Fprintf(w, "template     %s\nversion      %d\nupdated      %s\nnodes        %d\n", ti.Name, ti.Version,
			ti.UpdatedAt.Format("2006-01-02 15:04:05 MST"), len(ti.Workflow))
		if ti.Description != "" {
			fmt.Fprintf(w, "description  %s\n", ti.Description)
		}
		printParams(w, ti.Template)
		return nil
	case "rm", "remove", "delete":
		if err := backend.remove(ctx, rest[0]); err != nil {
			return templateError(err, rest[0])
		}
		fmt.Fprintf(w, "template %s removed\n", rest[0])
		return nil
	}
	return nil
}

func addTemplate(ctx context.Context, b templateBackend, def template.Definition, replace, fromTitles bool) (*api.TemplateInfo, error) {
	if fromTitles {
		// Check that the title convention finds parameters before registering anything:
		// registering would fall back to the sampler heuristic.
		prefix := def.TitlePrefix
		if prefix == "" {
			prefix = template.DefaultTitlePrefix
		}
		if !hasTitled(def.Workflow, prefix) {
			return nil, fmt.Errorf("--param-from-titles: no node of the workflow is titled %q followed by a name", prefix)
		}
	}
	if replace {
		return b.put(ctx, def)
	}
	return b.create(ctx, def)
}

// hasTitled reports whether any "title" in the workflow JSON (a UI node's title, an API
// node's _meta.title, in subgraphs too) starts with prefix.
func hasTitled(data []byte, prefix string) bool {
	var doc any
	if json.Unmarshal(data, &doc) != nil {
		return false
	}
	var walk func(v any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case map[string]any:
			if t, ok := x["title"].(string); ok && strings.HasPrefix(t, prefix) && len(t) > len(prefix) {
				return true
			}
			for _, c := range x {
				if walk(c) {
					return true
				}
			}
		case []any:
			for _, c := range x {
				if walk(c) {
					return true
				}
			}
		}
		return false
	}
	return walk(doc)
}

// paramSpecs parses --param NAME=TARGET[,TARGET…].
func paramSpecs(values []string) ([]template.ParamSpec, error) {
	var out []template.ParamSpec
	for _, v := range values {
		name, targets, ok := strings.Cut(v, "=")
		if !ok || name == "" || targets == "" {
			return nil, usagef("--param %q: want NAME=NODE.inputs.INPUT[,…]", v)
		}
		spec := template.ParamSpec{Name: name}
		for _, t := range strings.Split(targets, ",") {
			if t = strings.TrimSpace(t); t != "" {
				spec.Targets = append(spec.Targets, t)
			}
		}
		out = append(out, spec)
	}
	return out, nil
}

func openTemplates(apiURL, apiKey, redisURL, objectInfo string) (templateBackend, func(), error) {
	if apiURL != "" {
		c, err := apiclient.New(apiURL, apiKey, nil)
		if err != nil {
			return nil, nil, err
		}
		return remoteTemplates{c}, func() {}, nil
	}
	if redisURL == "" {
		return nil, nil, usagef("give --api URL (or COMFYQ_API_URL), or --redis URL (or COMFYQ_REDIS_URL)")
	}
	rdb, err := producer.OpenRedis(redisURL)
	if err != nil {
		return nil, nil, err
	}
	cfg := templatestore.Config{}
	if objectInfo != "" {
		cfg.ObjectInfo = cachedObjectInfo(objectInfo)
	}
	return localTemplates{templatestore.New(rdb, cfg)}, func() { rdb.Close() }, nil
}

func templateError(err error, name string) error {
	switch {
	case errors.Is(err, template.ErrNotFound):
		return &exitError{code: 4, err: fmt.Errorf("template %s not found", name)}
	case errors.Is(err, template.ErrExists):
		return &exitError{code: 2, err: fmt.Errorf("template %s exists; --replace makes a new version", name)}
	}
	return describeAPIError(describeSpecError(err))
}

func paramNames(t *template.Template) string {
	if t == nil || len(t.Params) == 0 {
		return "-"
	}
	names := make([]string, 0, len(t.Params))
	for _, p := range t.Params {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

func printParams(w io.Writer, t *template.Template) {
	if len(t.Params) == 0 {
		fmt.Fprintln(w, "parameters   none")
		return
	}
	fmt.Fprintln(w, "parameters:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tTYPE\tDEFAULT\tRANGE\tTARGETS")
	for _, p := range t.Params {
		def := "(required)"
		if !p.Required {
			def = shorten(fmt.Sprint(p.Default), 30)
		}
		rng := ""
		if lo, hi := p.ExactMinimum(), p.ExactMaximum(); lo != "" || hi != "" {
			rng = string(lo) + ".." + string(hi)
		}
		if len(p.Enum) > 0 {
			rng = fmt.Sprintf("%d choices", len(p.Enum))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", p.Name, p.Type, def, rng, strings.Join(p.Targets, ","))
	}
	tw.Flush()
}

// printMade says which parameter names discovery made up (template.MadeName), so that
// the user of "Input: size" learns to submit size_width.
func printMade(w io.Writer, t *template.Template) {
	if len(t.ParamsMade) == 0 {
		return
	}
	fmt.Fprintln(w, "names made (no title names these inputs by itself):")
	for _, m := range t.ParamsMade {
		fmt.Fprintf(w, "  %s  from input %s of node %s (%q)\n", m.Param, m.Input, m.Node, m.Title)
	}
}

func shorten(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
