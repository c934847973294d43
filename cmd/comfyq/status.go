package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/producer"
)

func init() {
	register(&command{
		name:    "status",
		summary: "show a job's status, outputs and error",
		usage:   "ID [--watch] [--json]",
		help: `Prints a job's record, from Redis (--redis) or an API server (--api URL
--api-key KEY). --watch follows it to its end with a progress bar. --json prints the
Job JSON (as GET /v1/jobs/{id}).`,
		flags: statusFlags,
	})
	register(&command{
		name:    "cancel",
		summary: "cancel a job",
		usage:   "ID",
		help: `Cancels a job: a queued job never runs; a running one is interrupted on its node
(only that prompt) and ends canceled. A job that already ended is left as it is.`,
		flags: cancelFlags,
	})
}

func statusFlags(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	redisURL := envString(fs, "redis", "COMFYQ_REDIS_URL", "", "Redis URL")
	apiURL, apiKey := apiClientFlags(fs, "API key for --api")
	watch := fs.Bool("watch", false, "follow the job until it ends")
	asJSON := fs.Bool("json", false, "print the Job JSON")
	return func(ctx context.Context, args []string) error {
		args, err := interspersed(fs, args) // "status ID --watch", as documented
		if err != nil {
			return err
		}
		id, err := oneID(args)
		if err != nil {
			return err
		}
		p, err := openJobs(*apiURL, *apiKey, *redisURL, producer.Config{})
		if err != nil {
			return err
		}
		defer p.Close()
		if *watch {
			return waitAndReport(ctx, p, id, *asJSON)
		}
		j, err := p.Get(ctx, id)
		if err != nil {
			return notFound(id, err)
		}
		if *asJSON {
			return printJSON(stdout(ctx), j)
		}
		printJob(stdout(ctx), j)
		return nil
	}
}

func cancelFlags(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	redisURL := envString(fs, "redis", "COMFYQ_REDIS_URL", "", "Redis URL")
	apiURL, apiKey := apiClientFlags(fs, "API key for --api")
	asJSON := fs.Bool("json", false, "print the Job JSON")
	return func(ctx context.Context, args []string) error {
		args, err := interspersed(fs, args) // "status ID --watch", as documented
		if err != nil {
			return err
		}
		id, err := oneID(args)
		if err != nil {
			return err
		}
		p, err := openJobs(*apiURL, *apiKey, *redisURL, producer.Config{})
		if err != nil {
			return err
		}
		defer p.Close()
		j, err := p.Cancel(ctx, id)
		switch {
		case err == nil:
		case j != nil && j.Status.Terminal():
			fmt.Fprintf(stderr(ctx), "job %s already ended: %s\n", id, j.Status)
		default:
			return notFound(id, err)
		}
		if *asJSON {
			return printJSON(stdout(ctx), j)
		}
		if j.Status == job.StatusCanceled {
			fmt.Fprintf(stdout(ctx), "job %s canceled\n", id)
		} else if !j.Status.Terminal() {
			fmt.Fprintf(stdout(ctx), "job %s: cancel requested; its worker interrupts it\n", id)
		}
		return nil
	}
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
