package asynqdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/asynqdb"
	"github.com/meetops/meetops/internal/redistest"
)

// orphan makes a pending task look like the active task of a worker that
// died: in asynq's active list with a lease that expired at leaseEnd. It
// spells asynq's key names itself, independently of the package, so that
// the test fails if the package's names drift from asynq's.
func orphan(t *testing.T, rdb *redis.Client, queue, id string, leaseEnd time.Time) {
	t.Helper()
	ctx := context.Background()
	tag := "{" + queue + "}"
	require.NoError(t, rdb.LRem(ctx, "asynq:"+tag+":pending", 0, id).Err())
	require.NoError(t, rdb.LPush(ctx, "asynq:"+tag+":active", id).Err())
	require.NoError(t, rdb.ZAdd(ctx, "asynq:"+tag+":lease", redis.Z{Score: float64(leaseEnd.Unix()), Member: id}).Err())
	require.NoError(t, rdb.HSet(ctx, "asynq:"+tag+":t:"+id, "state", "active").Err())
}

func TestRequeueOrphansMovesExpiredLeasesOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	for _, id := range []string{"dead", "alive"} {
		_, err := client.Enqueue(asynq.NewTask("t", []byte(id)), asynq.TaskID(id), asynq.Queue("q"))
		require.NoError(t, err)
	}
	orphan(t, rdb, "q", "dead", time.Now().Add(-10*time.Second))
	orphan(t, rdb, "q", "alive", time.Now().Add(20*time.Second))

	n, err := asynqdb.RequeueOrphans(ctx, rdb, "q", time.Now().Add(-5*time.Second), 3)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = asynqdb.RequeueOrphans(ctx, rdb, "other", time.Now(), 3)
	require.NoError(t, err)
	require.Zero(t, n, "a queue without tasks")
	dead, err := insp.GetTaskInfo("q", "dead")
	require.NoError(t, err)
	require.Equal(t, asynq.TaskStatePending, dead.State)
	require.Zero(t, dead.Retried, "a worker's death is not the task's failure")
	alive, err := insp.GetTaskInfo("q", "alive")
	require.NoError(t, err)
	require.Equal(t, asynq.TaskStateActive, alive.State, "a live lease is left alone")

	// The requeued task really runs.
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Queues: map[string]int{"q": 1},
		TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.FatalLevel})
	ran := make(chan string, 1)
	require.NoError(t, srv.Start(asynq.HandlerFunc(func(_ context.Context, t *asynq.Task) error {
		ran <- string(t.Payload())
		return nil
	})))
	defer srv.Shutdown()
	select {
	case got := <-ran:
		require.Equal(t, "dead", got)
	case <-time.After(10 * time.Second):
		t.Fatal("the recovered task never ran")
	}
}

// A task that kills every worker that runs it is recovered promptly a few
// times only; then asynq's recoverer (which counts retries) takes over.
func TestRequeueOrphansGivesUpOnAPoisonTask(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	_, err := asynq.NewClientFromRedisClient(rdb).Enqueue(asynq.NewTask("t", nil), asynq.TaskID("poison"), asynq.Queue("q"))
	require.NoError(t, err)
	const maxTimes = 3
	for i := range maxTimes + 2 {
		orphan(t, rdb, "q", "poison", time.Now().Add(-time.Minute))
		n, err := asynqdb.RequeueOrphans(ctx, rdb, "q", time.Now().Add(-time.Second), maxTimes)
		require.NoError(t, err)
		if i < maxTimes {
			require.Equal(t, 1, n, "recovery %d", i+1)
		} else {
			require.Zero(t, n, "recovery %d must be left to asynq", i+1)
		}
	}
}
