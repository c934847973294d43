package digest_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/storage/internal/digest"
)

func TestReader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, size := range []int64{-1, 0, 3} {
		r := digest.NewReader(ctx, strings.NewReader("abc"), size)
		b, err := io.ReadAll(r)
		require.NoError(t, err, "size %d", size)
		require.Equal(t, "abc", string(b))
		require.Equal(t, int64(3), r.Size())
		require.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", r.SHA256())
	}

	_, err := io.ReadAll(digest.NewReader(ctx, strings.NewReader("abc"), 4))
	require.ErrorIs(t, err, storage.ErrSizeMismatch)
	r := digest.NewReader(ctx, strings.NewReader(strings.Repeat("x", 1<<20)), 2)
	_, err = io.ReadAll(r)
	require.ErrorIs(t, err, storage.ErrSizeMismatch)
	require.LessOrEqual(t, r.Size(), int64(3), "read far past the declared size")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = io.ReadAll(digest.NewReader(cctx, strings.NewReader("abc"), -1))
	require.ErrorIs(t, err, context.Canceled)
}
