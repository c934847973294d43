package main

import (
	"github.com/urfave/cli/v3"

	"github.com/comfyq/comfyq/internal/seal"
)

// sealOptions is the seal key the API and the workers share: it encrypts the
// partner-node API keys of Comfy API v2 jobs in their queue tasks.
type sealOptions struct {
	Key string
	key []byte
}

func (o *sealOptions) flag() cli.Flag {
	return &cli.StringFlag{Name: "seal-key", Sources: sources("COMFYQ_SEAL_KEY"), Destination: &o.Key,
		Usage: "32 random bytes as hex (openssl rand -hex 32), the same on the API and the workers: seals partner-node API keys (extra_data.api_key_comfy_org) in the queue"}
}

func (o *sealOptions) Validate() error {
	if o.Key == "" {
		return nil
	}
	k, err := seal.ParseKey(o.Key)
	if err != nil {
		return usagef("--seal-key / COMFYQ_SEAL_KEY: %v", err)
	}
	o.key = k
	return nil
}
