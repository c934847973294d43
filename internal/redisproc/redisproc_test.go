package redisproc_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/redisproc"
)

func TestStartAndClose(t *testing.T) {
	t.Parallel()
	s, err := redisproc.Start(t.Context(), redisproc.Options{})
	require.NoError(t, err)
	require.True(t, redisproc.Ping(s.Addr()))
	require.Equal(t, "redis://"+s.Addr()+"/0", s.URL())
	require.FileExists(t, s.LogFile())
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "closing twice is safe")
	require.False(t, redisproc.Ping(s.Addr()))
	_, err = os.Stat(s.Dir())
	require.ErrorIs(t, err, os.ErrNotExist, "Close removes the directory Start made")
}

func TestGivenDirIsKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := redisproc.Start(t.Context(), redisproc.Options{Dir: dir, AppendOnly: true})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.DirExists(t, dir)
	require.Equal(t, dir, s.Dir())
}

func TestBadAppendFsync(t *testing.T) {
	t.Parallel()
	_, err := redisproc.Start(t.Context(), redisproc.Options{AppendOnly: true, AppendFsync: "sometimes"})
	require.ErrorContains(t, err, "sometimes")
}
