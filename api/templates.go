package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/comfyq/comfyq/api/apiclient"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/template"
)

// The API's wire types live in package apiclient, which a Go program imports without
// linking the server; these aliases keep the server's code and docs reading as before.
type (
	TemplateInfo       = apiclient.TemplateInfo
	TemplateList       = apiclient.TemplateList
	TemplateJobRequest = apiclient.TemplateJobRequest
)

func (s *Server) templateInfo(r *http.Request, t *template.Template, withWorkflow bool) TemplateInfo {
	if !withWorkflow {
		c := *t
		c.Workflow = nil
		t = &c
	}
	return TemplateInfo{
		Template:     t,
		ParamsSchema: t.JSONSchema(),
		ImagesSchema: t.ImagesSchema(),
		JobsURL:      s.baseURL(r) + "/v1/templates/" + url.PathEscape(t.Name) + "/jobs",
	}
}

func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.templates.List(r.Context())
	if err != nil {
		return err
	}
	out := TemplateList{Templates: make([]TemplateInfo, 0, len(ts))}
	for _, t := range ts {
		out.Templates = append(out.Templates, s.templateInfo(r, t, false))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request) error {
	t, err := s.templates.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.templateInfo(r, t, true))
	return nil
}

func (s *Server) createTemplate(w http.ResponseWriter, r *http.Request) error {
	var def template.Definition
	if err := decodeJSON(r, &def); err != nil {
		return err
	}
	t, err := s.templates.Create(r.Context(), def)
	if err != nil {
		return err
	}
	s.log.Info("template created", "template", t.Name, "version", t.Version, "params", len(t.Params))
	info := s.templateInfo(r, t, true)
	w.Header().Set("Location", s.baseURL(r)+"/v1/templates/"+url.PathEscape(t.Name))
	writeJSON(w, http.StatusCreated, info)
	return nil
}

func (s *Server) putTemplate(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var def template.Definition
	if err := decodeJSON(r, &def); err != nil {
		return err
	}
	if def.Name != "" && def.Name != name {
		return &job.SpecError{Code: CodeInvalidRequest, Field: "name", Message: "the body's name differs from the name in the path"}
	}
	def.Name = name
	t, err := s.templates.Put(r.Context(), def)
	if err != nil {
		return err
	}
	s.log.Info("template registered", "template", t.Name, "version", t.Version, "params", len(t.Params))
	status := http.StatusOK
	if t.Version == 1 {
		status = http.StatusCreated
		w.Header().Set("Location", s.baseURL(r)+"/v1/templates/"+url.PathEscape(t.Name))
	}
	writeJSON(w, status, s.templateInfo(r, t, true))
	return nil
}

func (s *Server) deleteTemplate(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := s.templates.Delete(r.Context(), name); err != nil {
		return err
	}
	s.log.Info("template deleted", "template", name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) createTemplateJob(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var req TemplateJobRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	err := s.submit(w, r, req.Spec(name))
	var se *job.SpecError
	if errors.Is(err, template.ErrNotFound) || (errors.As(err, &se) && se.Code == template.CodeUnknownTemplate) {
		return errorf(http.StatusNotFound, CodeNotFound, "no template %q", name)
	}
	return err
}

// templatesForDocs lists the templates for the OpenAPI document and /docs, bounded so
// that a slow Redis cannot hold the page.
func (s *Server) templatesForDocs(r *http.Request) ([]*template.Template, error) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	return s.templates.List(ctx)
}
