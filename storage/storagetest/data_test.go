package storagetest_test

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/storage/storagetest"
)

func TestReaderIsDeterministic(t *testing.T) {
	t.Parallel()
	want := storagetest.Bytes(42, 100_003)
	require.Len(t, want, 100_003)
	// Read in odd-sized pieces: the bytes must not depend on the read sizes.
	got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(storagetest.NewReader(42, 100_003), 1000)))
	require.NoError(t, err)
	require.Equal(t, want[:1000], got)
	got, err = io.ReadAll(iotest.HalfReader(storagetest.NewReader(42, 100_003)))
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.NotEqual(t, want[:64], storagetest.Bytes(43, 64), "seeds give different content")
	require.NoError(t, iotest.TestReader(storagetest.NewReader(7, 5000), storagetest.Bytes(7, 5000)))
}

func TestCompare(t *testing.T) {
	t.Parallel()
	n, err := storagetest.Compare(storagetest.NewReader(1, 300_000), storagetest.NewReader(1, 300_000))
	require.NoError(t, err)
	require.Equal(t, int64(300_000), n)

	b := storagetest.Bytes(1, 300_000)
	b[200_000] ^= 1
	n, err = storagetest.Compare(bytes.NewReader(b), storagetest.NewReader(1, 300_000))
	require.Error(t, err)
	require.Equal(t, int64(200_000), n)

	_, err = storagetest.Compare(storagetest.NewReader(1, 65536), storagetest.NewReader(1, 65537))
	require.ErrorContains(t, err, "length differs")
	_, err = storagetest.Compare(storagetest.NewReader(1, 65536), storagetest.NewReader(1, 65536*2))
	require.ErrorContains(t, err, "length differs")
}
