package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/tasks"
)

// Every subcommand runs on Redis Cluster with only REDIS_CLUSTER_ADDRS set,
// and on Sentinel with only REDIS_SENTINEL_ADDRS and REDIS_SENTINEL_MASTER
// (or the same as flags), also waiting for the replicas: one-off
// operations and their duplicates, bulk and its rerun, status, and the
// dead letters (list, show, requeue, purge). Before, every command on a
// cluster failed with MOVED.
func TestEveryCommandOnClusterAndSentinel(t *testing.T) {
	t.Parallel()
	cluster, sentinel := redistest.SharedCluster(t), redistest.SharedSentinel(t)
	for _, tc := range []struct {
		name  string
		env   map[string]string
		flags []string
		cfg   redisconf.Config
	}{
		{name: "cluster", env: map[string]string{"REDIS_CLUSTER_ADDRS": joinAddrs(cluster.Addrs())},
			cfg: redisconf.Config{ClusterAddrs: cluster.Addrs()}},
		{name: "sentinel", flags: []string{"--redis-sentinel-addrs", joinAddrs(sentinel.SentinelAddrs()),
			"--redis-sentinel-master", sentinel.MasterName(), "--redis-ack-replicas", "1"},
			cfg: redisconf.Config{SentinelAddrs: sentinel.SentinelAddrs(), SentinelMaster: sentinel.MasterName()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inv := invocation{env: tc.env}
			run := func(code int, args ...string) result {
				t.Helper()
				r := runEnqueue(t, inv, append(append([]string{}, tc.flags...), args...)...)
				requireCode(t, r, code)
				return r
			}
			r := run(exitOK, "dismiss", "--app-id", "topo-app", "--room-id", "r1", "-o", "json")
			var info meetops.Info
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &info))
			require.Equal(t, meetops.StatePending, info.State)
			r = run(exitOK, "dismiss", "--app-id", "topo-app", "--room-id", "r1", "-o", "json")
			require.Contains(t, r.stdout, `"duplicate":true`)
			run(exitKeyReused, "disable", "--app-id", "x", "--key", info.Key)
			r = run(exitOK, "status", info.Key)
			require.Contains(t, r.stdout, "pending")

			r = run(exitOK, "bulk", "testdata/bulk/ops.jsonl", "-o", "json")
			require.Contains(t, r.stdout, `"enqueued":7`)
			r = run(exitOK, "bulk", "testdata/bulk/ops.jsonl", "-o", "json")
			require.Contains(t, r.stdout, `"duplicates":7`, "a rerun enqueues nothing")

			// A dead letter, archived by asynq and kept by meetops.
			rdb, err := tc.cfg.NewClient(redisconf.ClientOptions{})
			require.NoError(t, err)
			t.Cleanup(func() { _ = rdb.Close() })
			ctx := context.Background()
			insp := asynq.NewInspectorFromRedisClient(rdb)
			kill := func() {
				require.NoError(t, insp.ArchiveTask("default", info.Key))
				require.NoError(t, deadletter.New(rdb, deadletter.Options{}).Add(ctx, deadletter.Record{Key: info.Key,
					Type: tasks.TypeDismiss, Queue: "default", Reason: "http_4xx", Payload: []byte(`{"app_id":"topo-app","room_id":"r1"}`),
					Result: []byte(`{"outcome":"dead_letter","reason":"http_4xx","status":404,"attempts":1}`)}))
			}
			kill()
			r = run(exitOK, "dead", "list")
			require.Contains(t, r.stdout, info.Key)
			run(exitOK, "dead", "show", info.Key)
			r = run(exitOK, "dead", "requeue", info.Key)
			require.Contains(t, r.stdout, "requeued 1 dead letter")
			kill()
			r = run(exitOK, "dead", "purge", "--all", "--yes")
			require.Contains(t, r.stdout, "purged 1 dead letter")
			run(exitOK, "dead", "list")
		})
	}
}

func joinAddrs(addrs []string) string {
	out := ""
	for i, a := range addrs {
		if i > 0 {
			out += ","
		}
		out += a
	}
	return out
}
