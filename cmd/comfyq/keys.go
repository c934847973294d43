package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v3"

	"github.com/comfyq/comfyq/api/apiclient"
	"github.com/comfyq/comfyq/apikey"
	"github.com/comfyq/comfyq/keystore"
	"github.com/comfyq/comfyq/producer"
)

// keyBackend is where the managed keys are: Redis directly, or an API server.
type keyBackend interface {
	create(ctx context.Context, req apiclient.KeyRequest) (*apiclient.NewKey, error)
	list(ctx context.Context) ([]*apikey.Key, error)
	revoke(ctx context.Context, id string) (*apikey.Key, error)
}

type remoteKeys struct{ c *apiclient.Client }

func (r remoteKeys) create(ctx context.Context, req apiclient.KeyRequest) (*apiclient.NewKey, error) {
	return r.c.CreateKey(ctx, req)
}
func (r remoteKeys) list(ctx context.Context) ([]*apikey.Key, error) { return r.c.ListKeys(ctx) }
func (r remoteKeys) revoke(ctx context.Context, id string) (*apikey.Key, error) {
	return r.c.RevokeKey(ctx, id)
}

type localKeys struct{ s *keystore.Store }

func (l localKeys) create(ctx context.Context, req apiclient.KeyRequest) (*apiclient.NewKey, error) {
	k, secret, err := l.s.Create(ctx, apikey.Key{Name: req.Name, Tenant: req.Tenant, Role: req.Role, Queues: req.Queues, Quota: req.Quota})
	if err != nil {
		return nil, err
	}
	return &apiclient.NewKey{Key: k, Secret: secret}, nil
}
func (l localKeys) list(ctx context.Context) ([]*apikey.Key, error) { return l.s.List(ctx) }
func (l localKeys) revoke(ctx context.Context, id string) (*apikey.Key, error) {
	return l.s.Revoke(ctx, id)
}

func keysCommand(b base) *cli.Command {
	o := &keysOptions{base: b}
	return &cli.Command{
		Name:      "keys",
		Usage:     "create, list and revoke API keys of tenants, with their queues and quotas",
		ArgsUsage: "create --name NAME --tenant TENANT [--admin] [--queues Q,…] [--max-in-flight N] [--rate R] [--burst N] | list [--json] | revoke ID|NAME",
		Description: `Manages the API keys kept in Redis, directly (--redis URL) or through an API
server (--api URL with an admin --api-key).

Every key belongs to a tenant. A user key sees, cancels and downloads only the jobs of
its tenant (another tenant's job answers 404, as a job that does not exist); an admin
key (--admin) sees every tenant's and manages templates and keys. Keys of one tenant
share its jobs.

  create     makes a key and prints its secret ONCE: store it now, nothing can show it
             again (Redis keeps only its SHA-256). Options:
               --name NAME          a label for the key (required)
               --tenant TENANT      its tenant (required): 1-64 letters, digits, '_', '-', '.'
               --admin              an admin key
               --queues Q,…         the only queues it may submit to (default: any;
                                    internal comfyq_* queues are refused for every key)
               --max-in-flight N    at most N of its jobs not yet ended (429 beyond)
               --rate R             at most R submissions per second, sustained (429
                                    with Retry-After beyond)
               --burst N            submissions allowed at once (default: R rounded up)
  list       the keys: id, name, tenant, role, queues, quotas, the secret's first characters
  revoke ID|NAME  deletes a key (by its ID, or its name when one key has it): its
             secret stops working at once

Keys given to 'comfyq api' by COMFYQ_API_KEYS / COMFYQ_ADMIN_KEYS keep working beside
these; each is its own tenant, or the tenant its TENANT: prefix names
(COMFYQ_API_KEYS=acme:SECRET1,acme:SECRET2). They are listed by the API, not stored.

Examples:

  comfyq keys create --name checkout --tenant acme --queues default --max-in-flight 100 --rate 5 --redis redis://127.0.0.1:6379/0
  comfyq keys list --api http://127.0.0.1:8080 --api-key ADMIN_KEY
  comfyq keys revoke key_3f2b9c1e8a4d4f7e --redis redis://127.0.0.1:6379/0`,
		Flags: flagList([]cli.Flag{
			stringFlag(&o.RedisURL, "redis", "COMFYQ_REDIS_URL", "", "Redis URL (instead of --api)"),
		}, apiClientFlags(&o.APIURL, &o.APIKey, "an admin API key for --api"), []cli.Flag{
			stringFlag(&o.Name, "name", "", "", "create: the key's name"),
			stringFlag(&o.Tenant, "tenant", "", "", "create: the key's tenant"),
			boolFlag(&o.Admin, "admin", "", false, "create: an admin key (every tenant, templates, keys)"),
			listFlag(&o.Queues, "queues", "", "create: a queue the key may submit to (default: any); comma-separated or repeated"),
			intFlag(&o.Quota.MaxInFlight, "max-in-flight", "", 0, "create: at most this many of the key's jobs not yet ended (0: no limit)"),
			floatFlag(&o.Quota.Rate, "rate", 0, "create: submissions per second, sustained (0: no limit)"),
			intFlag(&o.Quota.Burst, "burst", "", 0, "create: submissions at once (default: --rate rounded up)"),
			boolFlag(&o.JSON, "json", "", false, "print JSON"),
		}),
		Action: action(o, &o.args),
	}
}

// keysOptions are the flags and arguments of comfyq keys.
type keysOptions struct {
	base
	RedisURL, APIURL, APIKey string
	Name, Tenant             string
	Admin, JSON              bool
	Queues                   []string
	Quota                    apikey.Quota
	args                     []string
}

func (o *keysOptions) Validate() error {
	if len(o.args) == 0 {
		return usagef("want a subcommand: create, list or revoke")
	}
	sub, rest := o.args[0], o.args[1:]
	switch sub {
	case "create":
		if len(rest) != 0 {
			return usagef("keys create takes no arguments: --name NAME --tenant TENANT")
		}
		var queues []string
		for _, q := range o.Queues {
			for _, p := range strings.Split(q, ",") {
				if p = strings.TrimSpace(p); p != "" {
					queues = append(queues, p)
				}
			}
		}
		o.Queues = queues
		k := apikey.Key{Name: o.Name, Tenant: o.Tenant, Role: o.role(), Queues: o.Queues, Quota: o.Quota}
		if err := k.Validate(); err != nil {
			return usagef("keys create: %s", strings.TrimPrefix(err.Error(), "apikey: invalid key: "))
		}
	case "list", "ls":
		if len(rest) != 0 {
			return usagef("keys list takes no arguments")
		}
	case "revoke", "rm":
		if len(rest) != 1 {
			return usagef("keys revoke: want exactly one key ID or name (see comfyq keys list)")
		}
	default:
		return usagef("unknown subcommand %q (want create, list or revoke)", sub)
	}
	return nil
}

func (o *keysOptions) role() string {
	if o.Admin {
		return apikey.RoleAdmin
	}
	return apikey.RoleUser
}

func (o *keysOptions) open() (keyBackend, func(), error) {
	if o.APIURL != "" {
		c, err := apiclient.New(o.APIURL, o.APIKey, nil)
		if err != nil {
			return nil, nil, err
		}
		return remoteKeys{c}, func() {}, nil
	}
	if o.RedisURL == "" {
		return nil, nil, usagef("give --redis URL (or COMFYQ_REDIS_URL), or --api URL (or COMFYQ_API_URL) with an admin --api-key")
	}
	rdb, err := producer.OpenRedis(o.RedisURL)
	if err != nil {
		return nil, nil, err
	}
	return localKeys{keystore.New(rdb)}, func() { closeRedis(rdb) }, nil
}

func closeRedis(rdb redis.UniversalClient) { _ = rdb.Close() }

func (o *keysOptions) Run(ctx context.Context) error {
	backend, closeFn, err := o.open()
	if err != nil {
		return err
	}
	defer closeFn()
	sub, rest := o.args[0], o.args[1:]
	switch sub {
	case "create":
		nk, err := backend.create(ctx, apiclient.KeyRequest{Name: o.Name, Tenant: o.Tenant, Role: o.role(), Queues: o.Queues, Quota: o.Quota})
		if err != nil {
			return describeAPIError(err)
		}
		if o.JSON {
			return printJSON(o.Out, nk)
		}
		fmt.Fprintf(o.Out, "key %s (%s) of tenant %s, role %s\n", nk.Key.ID, nk.Key.Name, nk.Key.Tenant, nk.Key.Role)
		fmt.Fprintf(o.Out, "secret: %s\n", nk.Secret)
		fmt.Fprintln(o.Err, "The secret is shown this once; only its SHA-256 is kept. Send it as \"Authorization: Bearer SECRET\".")
		return nil
	case "list", "ls":
		keys, err := backend.list(ctx)
		if err != nil {
			return describeAPIError(err)
		}
		if o.JSON {
			return printJSON(o.Out, apiclient.KeyList{Keys: keys})
		}
		tw := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tTENANT\tROLE\tQUEUES\tMAX IN FLIGHT\tRATE/S\tBURST\tSECRET")
		for _, k := range keys {
			queues := strings.Join(k.Queues, ",")
			if queues == "" {
				queues = "any"
			}
			hint := k.Hint + "…"
			if k.Static {
				hint = "(flag or environment)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Tenant, k.Role, queues,
				limit(float64(k.Quota.MaxInFlight)), limit(k.Quota.Rate), limit(float64(k.Quota.Burst)), hint)
		}
		return tw.Flush()
	default: // revoke
		id, err := keyIDFor(ctx, backend, rest[0])
		if err != nil {
			return err
		}
		k, err := backend.revoke(ctx, id)
		if err != nil {
			if errors.Is(err, keystore.ErrNotFound) {
				return fmt.Errorf("no managed key %q (see comfyq keys list)", rest[0])
			}
			return describeAPIError(err)
		}
		fmt.Fprintf(o.Out, "revoked key %s (%s) of tenant %s\n", k.ID, k.Name, k.Tenant)
		return nil
	}
}

// keyIDFor returns the id of the managed key that arg names: an id as it is, or the
// name of exactly one managed key.
func keyIDFor(ctx context.Context, backend keyBackend, arg string) (string, error) {
	if strings.HasPrefix(arg, "key_") {
		return arg, nil
	}
	keys, err := backend.list(ctx)
	if err != nil {
		return "", describeAPIError(err)
	}
	var ids []string
	for _, k := range keys {
		if !k.Static && k.Name == arg {
			ids = append(ids, k.ID)
		}
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("no managed key named %q (see comfyq keys list)", arg)
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("%d managed keys are named %q (%s): revoke one by its ID", len(ids), arg, strings.Join(ids, ", "))
}

func limit(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%g", v)
}
