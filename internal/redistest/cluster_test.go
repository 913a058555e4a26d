package redistest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/redistest"
)

// keyOn returns a key whose slot primary is served by node.
func keyOn(t *testing.T, c *redistest.Cluster, node *redistest.Server) string {
	t.Helper()
	for i := range 1000 {
		key := fmt.Sprintf("key-%d", i)
		p, err := c.PrimaryFor(key)
		require.NoError(t, err)
		if p == node {
			return key
		}
	}
	t.Fatalf("no key found for %s", node.Addr)
	return ""
}

// TestSharedClusterIsARealCluster writes a key to each primary through a
// cluster client, and shows the cluster refuses a command whose keys are in
// different slots, which no single server would.
func TestSharedClusterIsARealCluster(t *testing.T) {
	c := redistest.SharedCluster(t)
	ctx := context.Background()
	require.NoError(t, c.Flush(ctx))
	cc := c.Client(t)
	primaries := c.Nodes()[:3]
	keys := make([]string, len(primaries))
	for i, p := range primaries {
		keys[i] = keyOn(t, c, p)
		require.NoError(t, cc.Set(ctx, keys[i], p.Addr, 0).Err())
	}
	slots := map[int]bool{}
	for i, p := range primaries {
		// The key lives on its primary and nowhere else: the node itself
		// has it, another primary redirects.
		direct := redis.NewClient(p.Options(0))
		defer direct.Close()
		v, err := direct.Get(ctx, keys[i]).Result()
		require.NoError(t, err, "GET %s on the node serving its slot", keys[i])
		require.Equal(t, p.Addr, v)
		other := redis.NewClient(primaries[(i+1)%len(primaries)].Options(0))
		defer other.Close()
		require.ErrorContains(t, other.Get(ctx, keys[i]).Err(), "MOVED")
		slot, err := c.Slot(ctx, keys[i])
		require.NoError(t, err)
		slots[slot] = true
	}
	require.Len(t, slots, 3)

	// Keys of different slots in one command: CROSSSLOT, both through the
	// cluster client (a script is routed by its first key) and on a node.
	err := cc.Eval(ctx, "return redis.call('MSET', KEYS[1], 'x', KEYS[2], 'y')", []string{keys[0], keys[1]}).Err()
	require.ErrorContains(t, err, "CROSSSLOT")
	direct := redis.NewClient(primaries[0].Options(0))
	defer direct.Close()
	require.ErrorContains(t, direct.Do(ctx, "MSET", keys[0], "x", keys[1], "y").Err(), "CROSSSLOT")
	// One hash tag, one slot: allowed.
	require.NoError(t, cc.Eval(ctx, "return redis.call('MSET', KEYS[1], 'x', KEYS[2], 'y')", []string{"{t}a", "{t}b"}).Err())

	// The shared cluster is not to be broken by one test.
	_, err = c.KillPrimaryFor(keys[0])
	require.ErrorContains(t, err, "NewCluster")

	require.NoError(t, c.Flush(ctx))
	n, err := cc.DBSize(ctx).Result()
	require.NoError(t, err)
	require.Zero(t, n, "Flush empties every primary")
}

// TestClusterFailover kills the primary of a key's slot and shows its
// replica serving the slot through a go-redis cluster client.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := redistest.NewCluster(t, redistest.ClusterOptions{Password: "cluster-pw"})
	t.Logf("cluster of 3 primaries + 3 replicas ready in %s", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc := c.Client(t)
	const key = "{default}:survivor"
	require.NoError(t, cc.Set(ctx, key, "before", 0).Err())
	old, err := c.PrimaryFor(key)
	require.NoError(t, err)
	// The write is on the replica before the crash.
	oldClient := redis.NewClient(old.Options(0))
	defer oldClient.Close()
	n, err := oldClient.Do(ctx, "WAIT", 1, 5000).Int()
	require.NoError(t, err)
	require.Equal(t, 1, n)

	killedAt, err := c.KillPrimaryFor(key)
	require.NoError(t, err)
	promotedAt, addr, err := c.WaitPromoted(ctx, key)
	require.NoError(t, err)
	require.NotEqual(t, old.Addr, addr)
	now, err := c.PrimaryFor(key)
	require.NoError(t, err)
	require.Equal(t, addr, now.Addr)
	t.Logf("replica %s promoted %s after SIGKILL of %s", addr, promotedAt.Sub(killedAt).Round(time.Millisecond), old.Addr)

	// go-redis reloads its slot map on a timer (60s by default), not when
	// a node refuses connections; ask for it after every failure (the
	// redisconf clients do so on their own), since a node that has not yet
	// heard of the promotion may answer the first reload.
	var okAt time.Time
	for {
		cc.ReloadState(ctx)
		attempt, cancel := context.WithTimeout(ctx, time.Second)
		err := cc.Set(attempt, key, "after", 0).Err()
		cancel()
		if err == nil {
			okAt = time.Now()
			break
		}
		require.NoError(t, ctx.Err(), "last error: %v", err)
		time.Sleep(10 * time.Millisecond) // polling interval, bounded by ctx
	}
	t.Logf("first SET through the cluster client %s after the promotion", okAt.Sub(promotedAt).Round(time.Millisecond))
	v, err := cc.Get(ctx, key).Result()
	require.NoError(t, err)
	require.Equal(t, "after", v)
	require.NoError(t, c.Flush(ctx), "Flush skips the killed node")

	// Restarted, the old primary rejoins as the new one's replica, so a
	// write can be acknowledged by a replica again.
	syncedAt, err := c.RestartKilled(ctx)
	require.NoError(t, err)
	t.Logf("old primary back as a replica in sync %s after the promotion", syncedAt.Sub(promotedAt).Round(time.Millisecond))
	role, err := oldClient.Do(ctx, "ROLE").Slice()
	require.NoError(t, err)
	require.Equal(t, "slave", role[0])
	require.NoError(t, cc.Set(ctx, key, "replicated", 0).Err())
	newClient := redis.NewClient(now.Options(0))
	defer newClient.Close()
	n, err = newClient.Do(ctx, "WAIT", 1, 5000).Int()
	require.NoError(t, err)
	require.Equal(t, 1, n, "the restarted node acknowledges writes to the new primary")
	v, err = oldClient.Do(ctx, "GET", key).Text()
	require.ErrorContains(t, err, "MOVED", "the restarted node serves no slot")
	require.Empty(t, v)
}

// TestTopologiesNeedTheRealServer: without redis-server there is no
// fallback, and the error says why.
func TestTopologiesNeedTheRealServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("MEETOPS_REQUIRE_REDIS_SERVER", "")
	_, err := redistest.StartCluster(redistest.ClusterOptions{})
	require.ErrorContains(t, err, "redis-server not found")
	_, err = redistest.StartSentinel(redistest.SentinelOptions{})
	require.ErrorContains(t, err, "redis-server not found")
	t.Setenv("MEETOPS_REQUIRE_REDIS_SERVER", "1")
	_, err = redistest.StartCluster(redistest.ClusterOptions{})
	require.ErrorContains(t, err, "MEETOPS_REQUIRE_REDIS_SERVER=1")
}
