package seal_test

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/seal"
)

func newSealer(t *testing.T) *seal.Sealer {
	t.Helper()
	key := make([]byte, seal.KeySize)
	_, _ = rand.Read(key)
	s, err := seal.New(key)
	require.NoError(t, err)
	return s
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	s := newSealer(t)
	sealed, err := s.Seal([]byte("comfyui-secret-key"), "job-1")
	require.NoError(t, err)
	require.NotContains(t, sealed, "comfyui-secret-key")
	plain, err := s.Open(sealed, "job-1")
	require.NoError(t, err)
	require.Equal(t, "comfyui-secret-key", string(plain))

	_, err = s.Open(sealed, "job-2")
	require.ErrorIs(t, err, seal.ErrOpen, "bound to its context")
	_, err = newSealer(t).Open(sealed, "job-1")
	require.ErrorIs(t, err, seal.ErrOpen, "another key does not open it")
	_, err = s.Open(sealed[:len(sealed)-2]+"AA", "job-1")
	require.ErrorIs(t, err, seal.ErrOpen, "damaged")
	_, err = s.Open("%%%", "job-1")
	require.ErrorIs(t, err, seal.ErrOpen)

	again, err := s.Seal([]byte("comfyui-secret-key"), "job-1")
	require.NoError(t, err)
	require.NotEqual(t, sealed, again, "a fresh nonce each time")
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	raw := make([]byte, seal.KeySize)
	_, _ = rand.Read(raw)
	k, err := seal.ParseKey(hex.EncodeToString(raw))
	require.NoError(t, err)
	require.Equal(t, raw, k)
	_, err = seal.ParseKey("short")
	require.ErrorContains(t, err, "openssl rand -hex 32")
	_, err = seal.ParseKey(strings.Repeat("ab", 16))
	require.Error(t, err)
	_, err = seal.New(raw[:16])
	require.Error(t, err)
}
