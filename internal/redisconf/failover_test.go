package redisconf_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/redistest"
)

// failoverRig is a topology whose primary can be killed.
type failoverRig interface {
	kill() (time.Time, error)
	waitPromoted(ctx context.Context) (time.Time, string, error)
}

// slotKey is the key whose slot's primary the cluster tests kill: asynq's
// default queue lives in the {default} slot.
const slotKey = "{default}"

type clusterRig struct{ c *redistest.Cluster }

func (r clusterRig) kill() (time.Time, error) { return r.c.KillPrimaryFor(slotKey) }
func (r clusterRig) waitPromoted(ctx context.Context) (time.Time, string, error) {
	return r.c.WaitPromoted(ctx, slotKey)
}

type sentinelRig struct{ x *redistest.Sentinel }

func (r sentinelRig) kill() (time.Time, error) { return r.x.KillPrimary() }
func (r sentinelRig) waitPromoted(ctx context.Context) (time.Time, string, error) {
	return r.x.WaitPromoted(ctx)
}

// failover is what a run of writers saw across a primary's death.
type failover struct {
	promotion     time.Duration // from the SIGKILL to the promotion
	firstRecovery time.Duration // from the promotion to the first write that succeeded
	allRecovered  time.Duration // from the promotion until every writer had written again
}

func (f failover) String() string {
	return fmt.Sprintf("promoted %s after the kill; first write %s after the promotion, every writer %s after it",
		f.promotion.Round(time.Millisecond), f.firstRecovery.Round(time.Millisecond), f.allRecovered.Round(time.Millisecond))
}

// write is one write of a writer of runFailover.
type write func(ctx context.Context, client redis.UniversalClient, key string, n int) error

// set writes with SET.
func set(ctx context.Context, client redis.UniversalClient, key string, n int) error {
	return client.Set(ctx, key, n, 0).Err()
}

// multi writes with a MULTI/EXEC transaction of two commands, which go-redis
// sends as a pipeline.
func multi(ctx context.Context, client redis.UniversalClient, key string, n int) error {
	_, err := client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, key, n, 0)
		p.Incr(ctx, key+":count")
		return nil
	})
	return err
}

// mixed writes with SET for even writers and MULTI/EXEC for odd ones.
func mixed(i int) write {
	if i%2 == 0 {
		return set
	}
	return multi
}

// runFailover runs writers goroutines that write keys of slotKey's slot
// through client with writeOf(i), kills the primary, and measures how long
// after the promotion the writes succeed again. Each write has a one-second
// timeout and the writers pause 5ms between writes; the whole run is
// bounded by limit.
func runFailover(t *testing.T, rig failoverRig, client redis.UniversalClient, writers int, writeOf func(i int) write, limit time.Duration) failover {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for i := range writers {
		require.NoError(t, writeOf(i)(ctx, client, fmt.Sprintf("%s:%d", slotKey, i), 0))
	}

	var (
		mu       sync.Mutex
		killedAt time.Time             // zero until the kill
		firstOK  = map[int]time.Time{} // each writer's first success after the kill
		lastErr  error
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			key, write := fmt.Sprintf("%s:%d", slotKey, i), writeOf(i)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				began := time.Now()
				attempt, cancel := context.WithTimeout(ctx, time.Second)
				err := write(attempt, client, key, n)
				cancel()
				now := time.Now()
				mu.Lock()
				if err != nil {
					lastErr = err
				} else if !killedAt.IsZero() && began.After(killedAt) && firstOK[i].IsZero() {
					firstOK[i] = now
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond) // pace of the writers, bounded by ctx
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()

	mu.Lock() // no write may count as after the kill before it happened
	k, err := rig.kill()
	killedAt = k
	mu.Unlock()
	require.NoError(t, err)
	promotedAt, addr, err := rig.waitPromoted(ctx)
	require.NoError(t, err)
	t.Logf("new primary %s", addr)

	for {
		mu.Lock()
		done := len(firstOK) == writers
		var first, last time.Time
		for _, at := range firstOK {
			if first.IsZero() || at.Before(first) {
				first = at
			}
			if at.After(last) {
				last = at
			}
		}
		errSeen := lastErr
		mu.Unlock()
		if done {
			return failover{
				promotion:     promotedAt.Sub(killedAt),
				firstRecovery: max(0, first.Sub(promotedAt)),
				allRecovered:  max(0, last.Sub(promotedAt)),
			}
		}
		require.NoError(t, ctx.Err(), "writers still failing; last error: %v", errSeen)
		time.Sleep(10 * time.Millisecond) // polling interval, bounded by ctx
	}
}

// TestClusterClientFollowsFailover: after the SIGKILL of the primary of
// asynq's {default} slot, writes through a NewClient cluster client succeed
// again soon after its replica's promotion (measured: well under a second),
// without a restart. A default go-redis cluster client takes up to its 60s
// reload interval (TestClusterBaselineDefaultOptions).
func TestClusterClientFollowsFailover(t *testing.T) {
	t.Parallel()
	c := redistest.NewCluster(t, redistest.ClusterOptions{Password: "cluster-pw"})
	cfg := redisconf.Config{URL: "redis://:cluster-pw@host.ignored:1/0", ClusterAddrs: c.Addrs()}
	client, err := cfg.NewClient(redisconf.ClientOptions{})
	require.NoError(t, err)
	defer client.Close()
	// The nodes take the password from REDIS_URL, whose host is ignored.
	without, err := redisconf.Config{ClusterAddrs: c.Addrs()}.NewClient(redisconf.ClientOptions{})
	require.NoError(t, err)
	defer without.Close()
	require.ErrorContains(t, without.Ping(context.Background()).Err(), "NOAUTH")

	f := runFailover(t, clusterRig{c}, client, 8, mixed, time.Minute)
	t.Logf("NewClient cluster client: %s", f)
	require.Less(t, f.allRecovered, 10*time.Second)
}

// TestClusterClientFollowsFailoverInPipelines is TestClusterClientFollowsFailover
// with every writer using MULTI/EXEC, so only the pipeline hook sees the
// failures.
func TestClusterClientFollowsFailoverInPipelines(t *testing.T) {
	t.Parallel()
	c := redistest.NewCluster(t, redistest.ClusterOptions{})
	client, err := redisconf.Config{ClusterAddrs: c.Addrs()}.NewClient(redisconf.ClientOptions{})
	require.NoError(t, err)
	defer client.Close()
	f := runFailover(t, clusterRig{c}, client, 4, func(int) write { return multi }, time.Minute)
	t.Logf("NewClient cluster client, MULTI/EXEC only: %s", f)
	require.Less(t, f.allRecovered, 10*time.Second)
}

// TestClusterBaselineDefaultOptions measures, on demand, what a go-redis
// cluster client with default options does in the same failover.
func TestClusterBaselineDefaultOptions(t *testing.T) {
	if os.Getenv("MEETOPS_MEASURE_BASELINE") != "1" {
		t.Skip("measures go-redis' default cluster client, which takes up to a minute to follow a failover; set MEETOPS_MEASURE_BASELINE=1 to run it")
	}
	t.Parallel()
	c := redistest.NewCluster(t, redistest.ClusterOptions{Password: "cluster-pw"})
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Password: "cluster-pw"})
	defer client.Close()
	f := runFailover(t, clusterRig{c}, client, 8, mixed, 2*time.Minute)
	t.Logf("default go-redis cluster client: %s", f)
}

// TestSentinelClientFollowsFailover: after the SIGKILL of the primary,
// writes through a NewClient failover client succeed again soon after the
// sentinels promoted the replica.
func TestSentinelClientFollowsFailover(t *testing.T) {
	t.Parallel()
	x := redistest.NewSentinel(t, redistest.SentinelOptions{Password: "data-pw", SentinelPassword: "sentinel-pw"})
	cfg := redisconf.Config{URL: "redis://:data-pw@host.ignored:1/0", SentinelAddrs: x.SentinelAddrs(),
		SentinelMaster: x.MasterName(), SentinelPassword: "sentinel-pw"}
	client, err := cfg.NewClient(redisconf.ClientOptions{})
	require.NoError(t, err)
	defer client.Close()
	f := runFailover(t, sentinelRig{x}, client, 8, mixed, time.Minute)
	t.Logf("NewClient failover client: %s", f)
	require.Less(t, f.allRecovered, 10*time.Second)
}

// TestSentinelBaselineDefaultOptions measures a go-redis failover client
// with default options in the same failover: it asks a sentinel for the
// primary on every dial, so it follows as fast (NewClient adds nothing).
func TestSentinelBaselineDefaultOptions(t *testing.T) {
	t.Parallel()
	x := redistest.NewSentinel(t, redistest.SentinelOptions{Password: "data-pw", SentinelPassword: "sentinel-pw"})
	client := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: x.MasterName(), SentinelAddrs: x.SentinelAddrs(),
		Password: "data-pw", SentinelPassword: "sentinel-pw"})
	defer client.Close()
	f := runFailover(t, sentinelRig{x}, client, 8, mixed, time.Minute)
	t.Logf("default go-redis failover client: %s", f)
	require.Less(t, f.allRecovered, 30*time.Second)
}
