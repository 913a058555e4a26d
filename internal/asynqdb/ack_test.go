package asynqdb_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/asynqdb"
	"github.com/meetops/meetops/internal/redistest"
)

// tasksIn returns n tasks in each of the queues.
func tasksIn(prefix string, n int, queues ...string) []asynqdb.Task {
	var ts []asynqdb.Task
	for _, q := range queues {
		for i := range n {
			ts = append(ts, asynqdb.Task{ID: fmt.Sprintf("%s-%s-%d", prefix, q, i), Type: "x", Payload: []byte("p"), Queue: q, Retry: 3, Retention: time.Hour})
		}
	}
	return ts
}

// With AckReplicas every write waits for its replicas: on a server without
// any, the tasks are written but reported not replicated (so a caller tries
// again, and a retry is a conflict with itself).
func TestAckWithoutReplicasIsNotReplicated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	w := asynqdb.New(rdb, asynqdb.Options{AckReplicas: 1, AckTimeout: 50 * time.Millisecond})
	ts := tasksIn("noack", 3, "q1")
	for _, err := range w.Write(ctx, ts) {
		require.ErrorIs(t, err, asynqdb.ErrNotReplicated)
		require.ErrorContains(t, err, "0 of 1 replicas")
	}
	n, err := rdb.LLen(ctx, asynqdb.PendingKey("q1")).Result()
	require.NoError(t, err)
	require.EqualValues(t, 3, n, "written on the primary all the same")
	for _, err := range w.Write(ctx, ts) {
		require.ErrorIs(t, err, asynqdb.ErrConflict, "writing again is safe")
	}
	require.ErrorIs(t, w.AckProbe(ctx, "q1"), asynqdb.ErrNotReplicated)
	require.NoError(t, asynqdb.New(rdb, asynqdb.Options{}).AckProbe(ctx, "q1"), "no-op without AckReplicas")
}

// On Redis Cluster the WAIT goes to the primary that holds each queue, on
// the connection that wrote its tasks; on Sentinel to the primary. Both
// have one replica each: every task is acknowledged, and asynq reads it.
func TestAckOnClusterAndSentinel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		rdb  func(t *testing.T) redis.UniversalClient
	}{
		{"cluster", func(t *testing.T) redis.UniversalClient { return redistest.SharedCluster(t).Client(t) }},
		{"sentinel", func(t *testing.T) redis.UniversalClient { return redistest.SharedSentinel(t).Client(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			rdb := tc.rdb(t)
			// Queues whose hash tags fall on different primaries of a cluster.
			queues := []string{"ack-" + tc.name + "-a", "ack-" + tc.name + "-b", "ack-" + tc.name + "-c", "ack-" + tc.name + "-d"}
			w := asynqdb.New(rdb, asynqdb.Options{AckReplicas: 1})
			ts := tasksIn("ack", 20, queues...)
			for i, err := range w.Write(ctx, ts) {
				require.NoError(t, err, "task %d", i)
			}
			require.NoError(t, w.AckProbe(ctx, queues[0]))
			insp := asynq.NewInspectorFromRedisClient(rdb)
			for _, q := range queues {
				info, err := insp.GetQueueInfo(q)
				require.NoError(t, err)
				require.Equal(t, 20, info.Pending, q)
			}
		})
	}
}
