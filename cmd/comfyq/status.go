package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/producer"
)

func statusCommand(b base) *cli.Command {
	o := &statusOptions{base: b}
	return &cli.Command{
		Name:      "status",
		Usage:     "show a job's status, outputs and error",
		ArgsUsage: "ID [--watch] [--json]",
		Description: `Prints a job's record, from Redis (--redis) or an API server (--api URL
--api-key KEY). --watch follows it to its end with a progress bar. --json prints the
Job JSON (as GET /v1/jobs/{id}).

Example:

  comfyq status --api http://127.0.0.1:8080 3f2b9c1e-8a4d-4f7e-9b1a-2c3d4e5f6a7b --watch`,
		Flags: flagList([]cli.Flag{
			stringFlag(&o.RedisURL, "redis", "COMFYQ_REDIS_URL", "", "Redis URL"),
		}, apiClientFlags(&o.APIURL, &o.APIKey, "API key for --api"), []cli.Flag{
			boolFlag(&o.Watch, "watch", "", false, "follow the job until it ends"),
			boolFlag(&o.JSON, "json", "", false, "print the Job JSON"),
		}),
		Action: action(o, &o.args),
	}
}

// statusOptions are the flags and the job id of comfyq status.
type statusOptions struct {
	base
	RedisURL, APIURL, APIKey string
	Watch, JSON              bool
	args                     []string
	id                       string
}

func (o *statusOptions) Validate() (err error) {
	o.id, err = oneID(o.args)
	return err
}

func (o *statusOptions) Run(ctx context.Context) error {
	p, err := openJobs(o.APIURL, o.APIKey, o.RedisURL, producer.Config{})
	if err != nil {
		return err
	}
	defer p.Close()
	if o.Watch {
		return waitAndReport(ctx, o.base, p, o.id, o.JSON)
	}
	j, err := p.Get(ctx, o.id)
	if err != nil {
		return notFound(o.id, err)
	}
	if o.JSON {
		return printJSON(o.Out, j)
	}
	printJob(o.Out, j)
	return nil
}

func cancelCommand(b base) *cli.Command {
	o := &cancelOptions{base: b}
	return &cli.Command{
		Name:      "cancel",
		Usage:     "cancel a job",
		ArgsUsage: "ID",
		Description: `Cancels a job: a queued job never runs; a running one is interrupted on its node
(only that prompt) and ends canceled. A job that already ended is left as it is.

Example:

  comfyq cancel --redis redis://127.0.0.1:6379/0 3f2b9c1e-8a4d-4f7e-9b1a-2c3d4e5f6a7b`,
		Flags: flagList([]cli.Flag{
			stringFlag(&o.RedisURL, "redis", "COMFYQ_REDIS_URL", "", "Redis URL"),
		}, apiClientFlags(&o.APIURL, &o.APIKey, "API key for --api"), []cli.Flag{
			boolFlag(&o.JSON, "json", "", false, "print the Job JSON"),
		}),
		Action: action(o, &o.args),
	}
}

// cancelOptions are the flags and the job id of comfyq cancel.
type cancelOptions struct {
	base
	RedisURL, APIURL, APIKey string
	JSON                     bool
	args                     []string
	id                       string
}

func (o *cancelOptions) Validate() (err error) {
	o.id, err = oneID(o.args)
	return err
}

func (o *cancelOptions) Run(ctx context.Context) error {
	id := o.id
	p, err := openJobs(o.APIURL, o.APIKey, o.RedisURL, producer.Config{})
	if err != nil {
		return err
	}
	defer p.Close()
	j, err := p.Cancel(ctx, id)
	switch {
	case err == nil:
	case j != nil && j.Status.Terminal():
		fmt.Fprintf(o.Err, "job %s already ended: %s\n", id, j.Status)
	default:
		return notFound(id, err)
	}
	if o.JSON {
		return printJSON(o.Out, j)
	}
	if j.Status == job.StatusCanceled {
		fmt.Fprintf(o.Out, "job %s canceled\n", id)
	} else if !j.Status.Terminal() {
		fmt.Fprintf(o.Out, "job %s: cancel requested; its worker interrupts it\n", id)
	}
	return nil
}

func oneID(args []string) (string, error) {
	if len(args) != 1 {
		return "", usagef("want exactly one job id")
	}
	if !job.ValidID(args[0]) {
		return "", usagef("%q is not a job id (a lowercase UUID)", args[0])
	}
	return args[0], nil
}

func notFound(id string, err error) error {
	if errors.Is(err, job.ErrNotFound) {
		return &exitError{code: 4, err: fmt.Errorf("job %s not found (wrong id, or expired after its retention)", id)}
	}
	return describeAPIError(err)
}
