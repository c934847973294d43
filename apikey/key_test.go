package apikey_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/apikey"
)

func TestParseStatic(t *testing.T) {
	t.Parallel()
	k, digest, err := apikey.ParseStatic("acme:0123456789abcdef0123", apikey.RoleUser, 1)
	require.NoError(t, err)
	require.Equal(t, "acme", k.Tenant)
	require.Equal(t, apikey.Digest("0123456789abcdef0123"), digest, "the prefix is not part of the secret")
	require.True(t, k.Static)

	k, digest, err = apikey.ParseStatic("0123456789abcdef0123", apikey.RoleAdmin, 2)
	require.NoError(t, err)
	require.Equal(t, "key-"+digest[:8], k.Tenant, "its own tenant")
	require.True(t, k.Admin())

	// A colon whose left side is no tenant name, or whose right side is too short,
	// stays part of the key.
	_, _, err = apikey.ParseStatic("not a tenant:0123456789abcdef", apikey.RoleUser, 3)
	require.Error(t, err, "spaces are refused in keys")
	k, digest, err = apikey.ParseStatic("abc:short-secret", apikey.RoleUser, 4)
	require.NoError(t, err)
	require.Equal(t, apikey.Digest("abc:short-secret"), digest)
	require.True(t, strings.HasPrefix(k.Tenant, "key-"))

	_, _, err = apikey.ParseStatic("short", apikey.RoleUser, 5)
	require.ErrorContains(t, err, "shorter than 16")
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := apikey.Key{Name: "app", Tenant: "acme", Role: apikey.RoleUser, Queues: []string{"default"},
		Quota: apikey.Quota{MaxInFlight: 10, Rate: 2.5}}
	require.NoError(t, ok.Validate())
	require.Equal(t, 3, ok.Quota.BucketSize(), "rate rounded up")
	require.True(t, ok.AllowsQueue("default"))
	require.False(t, ok.AllowsQueue("high"))

	for name, k := range map[string]apikey.Key{
		"no name":        {Tenant: "acme", Role: apikey.RoleUser},
		"bad tenant":     {Name: "x", Tenant: "-acme", Role: apikey.RoleUser},
		"bad role":       {Name: "x", Tenant: "acme", Role: "root"},
		"reserved queue": {Name: "x", Tenant: "acme", Role: apikey.RoleUser, Queues: []string{"comfyq_webhooks"}},
		"burst no rate":  {Name: "x", Tenant: "acme", Role: apikey.RoleUser, Quota: apikey.Quota{Burst: 3}},
		"negative":       {Name: "x", Tenant: "acme", Role: apikey.RoleUser, Quota: apikey.Quota{MaxInFlight: -1}},
	} {
		err := k.Validate()
		require.True(t, errors.Is(err, apikey.ErrInvalid), "%s: %v", name, err)
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	a, err := apikey.NewSecret()
	require.NoError(t, err)
	b, err := apikey.NewSecret()
	require.NoError(t, err)
	require.NotEqual(t, a, b)
	require.Len(t, a, len(apikey.SecretPrefix)+43)
	require.Len(t, apikey.Digest(a), 64)
}
