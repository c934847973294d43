package producer_test

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/producer"
)

func TestOpenRedisPoolSizesThePool(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url  string
		size int
	}{
		{"redis://127.0.0.1:6390/0", 144},
		{"redis://127.0.0.1:6390/0", 0}, // go-redis's default
		{"redis-sentinel://127.0.0.1:26390?master=mymaster", 77},
	} {
		rdb, err := producer.OpenRedisPool(c.url, c.size)
		require.NoError(t, err)
		var got int
		switch r := rdb.(type) {
		case *redis.Client: // sentinel URLs make a failover *redis.Client too
			got = r.Options().PoolSize
		default:
			t.Fatalf("%s: unexpected client %T", c.url, rdb)
		}
		if c.size == 0 {
			require.Positive(t, got, "%s: the default pool", c.url)
		} else {
			require.Equal(t, c.size, got, c.url)
		}
		require.NoError(t, rdb.Close())
	}
	_, err := producer.OpenRedisPool("", 10)
	require.ErrorContains(t, err, "no Redis URL")
}
