package redisconf_test

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/redistest"
)

func TestNewClientSingle(t *testing.T) {
	t.Parallel()
	redistest.RequireReal(t)
	s := redistest.New(t, redistest.Options{Password: "single-pw"})
	ctx := context.Background()
	u, err := url.Parse(s.URL(5))
	require.NoError(t, err)
	u.RawQuery = "pool_size=3"
	cfg := redisconf.Config{URL: u.String()}

	rdb, err := cfg.NewClient(redisconf.ClientOptions{})
	require.NoError(t, err)
	defer rdb.Close()
	c, ok := rdb.(*redis.Client)
	require.True(t, ok, "%T", rdb)
	require.Equal(t, 3, c.Options().PoolSize, "the URL's query counts")
	require.Equal(t, 5, c.Options().DB)
	require.NoError(t, rdb.Set(ctx, "k", "v", 0).Err())
	direct := redis.NewClient(s.Options(5))
	defer direct.Close()
	require.Equal(t, "v", direct.Get(ctx, "k").Val(), "written to the URL's database")

	rdb2, err := cfg.NewClient(redisconf.ClientOptions{PoolSize: 7, DialTimeout: time.Second, MaxRetries: -1, ClientName: "meetops-test"})
	require.NoError(t, err)
	defer rdb2.Close()
	o := rdb2.(*redis.Client).Options()
	require.Equal(t, 7, o.PoolSize, "a set ClientOptions field wins over the URL")
	require.Equal(t, time.Second, o.DialTimeout)
	name, err := rdb2.ClientGetName(ctx).Result()
	require.NoError(t, err)
	require.Equal(t, "meetops-test", name)

	u.User = url.UserPassword("", "wrong")
	bad, err := redisconf.Config{URL: u.String()}.NewClient(redisconf.ClientOptions{})
	require.NoError(t, err)
	defer bad.Close()
	require.ErrorContains(t, bad.Ping(ctx).Err(), "WRONGPASS")
}

func TestNewClientCluster(t *testing.T) {
	c := redistest.SharedCluster(t)
	ctx := context.Background()
	require.NoError(t, c.Flush(ctx))
	// REDIS_URL's host is ignored: only its credentials and TLS count.
	cfg := redisconf.Config{URL: "redis://host.invalid:1/0", ClusterAddrs: c.Addrs()}
	rdb, err := cfg.NewClient(redisconf.ClientOptions{PoolSize: 4})
	require.NoError(t, err)
	defer rdb.Close()
	cc, ok := rdb.(*redis.ClusterClient)
	require.True(t, ok, "%T", rdb)
	require.Equal(t, 4, cc.Options().PoolSize)
	for i := range 100 { // keys spread over every primary
		require.NoError(t, rdb.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err())
	}
	var masters atomic.Int32 // ForEachMaster runs fn on every primary at once
	require.NoError(t, cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		if err == nil && n == 0 {
			err = fmt.Errorf("no key on %s", m.Options().Addr)
		}
		masters.Add(1)
		return err
	}))
	require.EqualValues(t, 3, masters.Load())
	require.NoError(t, c.Flush(ctx))
}

func TestNewClientSentinel(t *testing.T) {
	x := redistest.SharedSentinel(t)
	ctx := context.Background()
	require.NoError(t, x.Flush(ctx))
	cfg := redisconf.Config{URL: "redis://host.invalid:1/2", SentinelAddrs: x.SentinelAddrs(), SentinelMaster: x.MasterName()}
	rdb, err := cfg.NewClient(redisconf.ClientOptions{})
	require.NoError(t, err)
	defer rdb.Close()
	_, ok := rdb.(*redis.Client)
	require.True(t, ok, "%T", rdb)
	require.NoError(t, rdb.Set(ctx, "k", "v", 0).Err())
	p, err := x.Primary()
	require.NoError(t, err)
	direct := redis.NewClient(p.Options(2))
	defer direct.Close()
	require.Equal(t, "v", direct.Get(ctx, "k").Val(), "written to the primary, in the URL's database")

	wrong := cfg
	wrong.SentinelMaster = "nosuchmaster"
	bad, err := wrong.NewClient(redisconf.ClientOptions{DialTimeout: time.Second})
	require.NoError(t, err)
	defer bad.Close()
	require.Error(t, bad.Ping(ctx).Err())
	require.NoError(t, x.Flush(ctx))
}

func TestNewClientRejectsAnInvalidConfig(t *testing.T) {
	t.Parallel()
	_, err := redisconf.Config{ClusterAddrs: []string{"a:1"}, SentinelMaster: "m"}.NewClient(redisconf.ClientOptions{})
	require.ErrorContains(t, err, "REDIS_CLUSTER_ADDRS and REDIS_SENTINEL_MASTER")
}

// TestNewClientTLS: a single server is checked against REDIS_URL's host;
// cluster and sentinel nodes against the host each is dialled at.
func TestNewClientTLS(t *testing.T) {
	t.Parallel()
	single, err := redisconf.Config{URL: "rediss://:pw@redis.example:6380/0?skip_verify=true"}.NewClient(redisconf.ClientOptions{})
	require.NoError(t, err)
	defer single.Close()
	tc := single.(*redis.Client).Options().TLSConfig
	require.NotNil(t, tc)
	require.Equal(t, "redis.example", tc.ServerName)
	require.True(t, tc.InsecureSkipVerify)

	cluster, err := redisconf.Config{URL: "rediss://:pw@redis.example:6380/0", ClusterAddrs: []string{"10.0.0.1:7000"}}.NewClient(redisconf.ClientOptions{})
	require.NoError(t, err)
	defer cluster.Close()
	o := cluster.(*redis.ClusterClient).Options()
	require.NotNil(t, o.TLSConfig)
	require.Empty(t, o.TLSConfig.ServerName)
	require.Equal(t, "pw", o.Password)

	plain, err := redisconf.Config{ClusterAddrs: []string{"10.0.0.1:7000"}}.NewClient(redisconf.ClientOptions{})
	require.NoError(t, err)
	defer plain.Close()
	require.Nil(t, plain.(*redis.ClusterClient).Options().TLSConfig)
}
