package redistest_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestURLGivesIsolatedDatabases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := redistest.Client(t), redistest.Client(t)
	require.NoError(t, a.Set(ctx, "k", "a", 0).Err())
	n, err := b.Exists(ctx, "k").Result()
	require.NoError(t, err)
	require.Zero(t, n, "a second test's database must not see the first one's keys")
}

func TestRestartKeepsAOFData(t *testing.T) {
	t.Parallel()
	redistest.RequireReal(t)
	s := redistest.New(t, redistest.Options{AppendFsyncAlways: true})
	ctx := context.Background()
	c := redis.NewClient(s.Options(0))
	defer c.Close()
	require.NoError(t, c.Set(ctx, "survivor", "yes", 0).Err())
	s.Kill() // a crash: only appendfsync always keeps the write
	require.Error(t, c.Ping(ctx).Err())
	require.NoError(t, s.StartAgain())
	v, err := c.Get(ctx, "survivor").Result()
	require.NoError(t, err)
	require.Equal(t, "yes", v)
	require.NoError(t, s.Restart())
	v, err = c.Get(ctx, "survivor").Result()
	require.NoError(t, err)
	require.Equal(t, "yes", v)
}

func TestPasswordIsRequired(t *testing.T) {
	t.Parallel()
	s := redistest.New(t, redistest.Options{Password: "s3cret-pw"})
	ctx := context.Background()
	good := redis.NewClient(s.Options(0))
	defer good.Close()
	require.NoError(t, good.Ping(ctx).Err())
	bad := redis.NewClient(&redis.Options{Addr: s.Addr, Password: "wrong"})
	defer bad.Close()
	require.Error(t, bad.Ping(ctx).Err())
}
