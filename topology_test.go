package meetops_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/asynqdb"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/tasks"
)

// topologies are the Redis deployments every producer call must work on,
// each as a RedisConfig; ack is how many replicas each has per primary.
func topologies(t *testing.T) map[string]struct {
	cfg meetops.RedisConfig
	ack int
} {
	t.Helper()
	cluster, sentinel := redistest.SharedCluster(t), redistest.SharedSentinel(t)
	return map[string]struct {
		cfg meetops.RedisConfig
		ack int
	}{
		"single":   {meetops.RedisConfig{URL: redistest.URL(t)}, 0},
		"cluster":  {meetops.RedisConfig{ClusterAddrs: cluster.Addrs()}, 1},
		"sentinel": {meetops.RedisConfig{SentinelAddrs: sentinel.SentinelAddrs(), SentinelMaster: sentinel.MasterName()}, 1},
	}
}

// Every producer call works the same on one Redis, on Redis Cluster and on
// Sentinel — enqueue and duplicates, key reuse, a batch over several
// queues (several cluster slots), status, and the dead letters (list,
// requeue, purge) — with and without waiting for the replicas. Nothing
// fails with CROSSSLOT, MOVED or ASK.
func TestEveryCallOnEveryTopology(t *testing.T) {
	t.Parallel()
	for name, top := range topologies(t) {
		for _, ack := range []int{0, top.ack} {
			t.Run(fmt.Sprintf("%s/ack=%d", name, ack), func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				cfg := top.cfg
				cfg.AckReplicas = ack
				c, err := meetops.NewClientFromConfig(cfg)
				require.NoError(t, err)
				t.Cleanup(func() { _ = c.Close() })
				require.NoError(t, c.Ping(ctx))
				// Queues of this subtest only: the cluster and the sentinel
				// setup are shared by the package's tests.
				q := func(s string) string { return fmt.Sprintf("%s-%s-a%d", s, name, ack) }

				op := meetops.Dismiss{AppID: "topo", RoomID: q("room")}
				info, err := c.Enqueue(ctx, op, meetops.WithQueue(q("one")))
				require.NoError(t, err)
				require.Equal(t, meetops.StatePending, info.State)
				info, err = c.Enqueue(ctx, op, meetops.WithQueue(q("one")))
				require.NoError(t, err)
				require.True(t, info.Duplicate)
				_, err = c.Enqueue(ctx, meetops.Disable{AppID: "other"}, meetops.WithKey(info.Key), meetops.WithQueue(q("one")))
				require.ErrorIs(t, err, meetops.ErrKeyReused)

				var reqs []meetops.Request
				for i := range 30 {
					reqs = append(reqs, meetops.Request{Op: meetops.Disable{AppID: fmt.Sprintf("%s-%d", q("app"), i)},
						Opts: []meetops.Option{meetops.WithQueue(q(fmt.Sprintf("batch%d", i%3)))}})
				}
				for i, r := range c.EnqueueBatch(ctx, reqs) {
					require.NoError(t, r.Err, "request %d", i)
				}
				st, err := c.Status(ctx, tasks.Key(reqs[7].Op))
				require.NoError(t, err)
				require.Equal(t, meetops.StatePending, st.State)

				// A dead letter: archived by asynq, recorded in the store.
				dead := meetops.Cancel{ConferenceID: q("conf")}
				dinfo, err := c.Enqueue(ctx, dead, meetops.WithQueue(q("dead")))
				require.NoError(t, err)
				rdb, err := cfg.NewClient(redisconf.ClientOptions{})
				require.NoError(t, err)
				t.Cleanup(func() { _ = rdb.Close() })
				require.NoError(t, asynq.NewInspectorFromRedisClient(rdb).ArchiveTask(q("dead"), dinfo.Key))
				require.NoError(t, deadletter.New(rdb, deadletter.Options{}).Add(ctx, deadletter.Record{Key: dinfo.Key, Type: tasks.TypeCancel,
					Queue: q("dead"), Reason: meetops.ReasonHTTP4xx, Payload: tasks.Canonical(dead), Result: []byte(`{"outcome":"dead_letter"}`)}))
				got, err := c.DeadLetter(ctx, dinfo.Key)
				require.NoError(t, err)
				require.Equal(t, q("dead"), got.Queue)
				res := c.Requeue(ctx, dinfo.Key)
				require.NoError(t, res[0].Err)
				require.Equal(t, meetops.StatePending, res[0].Info.State)
				require.NoError(t, asynq.NewInspectorFromRedisClient(rdb).ArchiveTask(q("dead"), dinfo.Key))
				require.NoError(t, deadletter.New(rdb, deadletter.Options{}).Add(ctx, deadletter.Record{Key: dinfo.Key, Type: tasks.TypeCancel,
					Queue: q("dead"), Reason: meetops.ReasonHTTP4xx, Payload: tasks.Canonical(dead), Result: []byte(`{}`)}))
				res = c.Purge(ctx, dinfo.Key)
				require.NoError(t, res[0].Err)
				_, err = c.DeadLetter(ctx, dinfo.Key)
				require.ErrorIs(t, err, meetops.ErrNotFound)
			})
		}
	}
}

// Waiting for replicas that do not exist fails the enqueue with
// ErrNotReplicated (the task is on the primary, and enqueueing it again
// is safe); the same call with the replicas there succeeds.
func TestAckReplicasWithoutReplicas(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := meetops.NewClientFromConfig(meetops.RedisConfig{URL: redistest.URL(t), AckReplicas: 1})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Enqueue(ctx, meetops.Disable{AppID: "lonely"})
	require.ErrorIs(t, err, meetops.ErrNotReplicated)
	require.ErrorIs(t, err, asynqdb.ErrNotReplicated)
	_, err = c.Enqueue(ctx, meetops.Disable{AppID: "lonely"})
	require.ErrorIs(t, err, meetops.ErrNotReplicated, "a duplicate is confirmed only once replicated")
}

// A half-set or double topology is an error naming the variables.
func TestNewClientFromConfigRejectsBadTopologies(t *testing.T) {
	t.Parallel()
	_, err := meetops.NewClientFromConfig(meetops.RedisConfig{ClusterAddrs: []string{"127.0.0.1:7000"}, SentinelMaster: "m"})
	require.ErrorContains(t, err, "REDIS_CLUSTER_ADDRS")
	_, err = meetops.NewClientFromConfig(meetops.RedisConfig{SentinelAddrs: []string{"127.0.0.1:26379"}})
	require.ErrorContains(t, err, "REDIS_SENTINEL_MASTER")
	cfg, err := meetops.RedisConfigFromEnv(func(k string) string {
		return map[string]string{"REDIS_CLUSTER_ADDRS": "a:1,b:2", "REDIS_ACK_REPLICAS": "1"}[k]
	})
	require.NoError(t, err)
	require.Equal(t, []string{"a:1", "b:2"}, cfg.ClusterAddrs)
	require.Equal(t, 1, cfg.AckReplicas)
}

// The served-queue check works alike on one Redis, on Redis Cluster (the
// server records live in other slots than the queues) and on Sentinel: a
// running asynq server's queues are served, with their weight; a task
// for another queue is enqueued with Unserved set, or refused with
// RequireServedQueue; once the server shut down its queue is unserved.
func TestServedQueuesOnEveryTopology(t *testing.T) {
	t.Parallel()
	for name, top := range topologies(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c, err := meetops.NewClientFromConfig(top.cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			// Queues of this test only: the deployments are shared.
			q := func(s string) string { return fmt.Sprintf("%s-served-%s", s, name) }
			rdb, err := top.cfg.NewClient(redisconf.ClientOptions{})
			require.NoError(t, err)
			t.Cleanup(func() { _ = rdb.Close() })
			srv := startServer(t, rdb, map[string]int{q("mine"): 7, q("also"): 2})
			mine := meetops.ServedQueue{Name: q("mine"), Weight: 7, Workers: 1}
			waitServed(t, c, "the server serves", func(qs []meetops.ServedQueue) bool { return has(qs, mine) })

			later := meetops.ProcessIn(time.Hour) // the server leaves them alone
			info, err := c.Enqueue(ctx, meetops.Disable{AppID: q("a")}, meetops.WithQueue(q("mine")), later, meetops.RequireServedQueue())
			require.NoError(t, err)
			require.False(t, info.Unserved)
			info, err = c.Enqueue(ctx, meetops.Disable{AppID: q("b")}, meetops.WithQueue(q("nobody")), later)
			require.NoError(t, err)
			require.True(t, info.Unserved)
			_, err = c.Enqueue(ctx, meetops.Disable{AppID: q("c")}, meetops.WithQueue(q("nobody")), later, meetops.RequireServedQueue())
			require.ErrorIs(t, err, meetops.ErrQueueUnserved)
			require.ErrorContains(t, err, fmt.Sprintf(`no running worker serves queue %q (running workers serve `, q("nobody")))
			require.ErrorContains(t, err, q("mine")+"=7")
			var reqs []meetops.Request
			for i := range 12 {
				reqs = append(reqs, meetops.Request{Op: meetops.Disable{AppID: fmt.Sprintf("%s-%d", q("batch"), i)},
					Opts: []meetops.Option{meetops.WithQueue([]string{q("mine"), q("also"), q("nobody")}[i%3]), later, meetops.RequireServedQueue()}})
			}
			for i, r := range c.EnqueueBatch(ctx, reqs) {
				if i%3 == 2 {
					require.ErrorIs(t, r.Err, meetops.ErrQueueUnserved, "request %d", i)
					continue
				}
				require.NoError(t, r.Err, "request %d", i)
				require.False(t, r.Info.Unserved)
			}
			st, err := c.Status(ctx, info.Key)
			require.NoError(t, err)
			require.True(t, st.Unserved)

			srv.Shutdown()
			served, err := c.ServedQueues(ctx)
			require.NoError(t, err)
			_, ok := named(served, q("mine"))
			require.False(t, ok, "a shut-down server serves nothing: %+v", served)
		})
	}
}
