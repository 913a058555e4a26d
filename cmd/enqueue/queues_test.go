package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/tasks"
)

// runWorker runs a real asynq server serving queues on the bundle's
// database until the test ends, and returns once its record says it runs
// (asynq writes it on the server's first heartbeat, in a goroutine). Its
// handler does nothing.
func (b *testBundle) runWorker(t *testing.T, queues map[string]int) {
	t.Helper()
	srv := asynq.NewServerFromRedisClient(b.rdb, asynq.Config{Concurrency: 1, Queues: queues, LogLevel: asynq.FatalLevel, ShutdownTimeout: time.Second})
	require.NoError(t, srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })))
	t.Cleanup(srv.Shutdown)
	require.Eventually(t, func() bool {
		servers, err := b.insp.Servers()
		return err == nil && len(servers) == 1 && servers[0].Status == "active"
	}, 10*time.Second, 10*time.Millisecond, "the server's record")
}

// requireNoTask fails unless asynq has no task with key in queue.
func (b *testBundle) requireNoTask(t *testing.T, queue, key string) {
	t.Helper()
	_, err := b.insp.GetTaskInfo(queue, key)
	require.Error(t, err, "no task %s in %s", key, queue)
}

// With a worker serving critical and default: an operation for another
// queue is enqueued with a warning on stderr naming the served queues
// (stdout unchanged, so -o json stays JSON); --require-served-queue
// refuses it, exit 5, nothing enqueued, and lets a served one through
// without a word; status of the waiting task says so; bulk warns once for
// all its unserved queues, or refuses the whole input before enqueueing
// any line.
func TestUnservedQueuesGolden(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.runWorker(t, map[string]int{"critical": 6, "default": 3})
	var results []result
	step := func(code int, args ...string) result {
		t.Helper()
		r := b.run(t, args...)
		requireCode(t, r, code)
		results = append(results, r)
		return r
	}

	dismiss := []string{"dismiss", "--app-id", "demo-app", "--room-id", "room-001", "--queue", "nosuchqueue"}
	step(exitOK, dismiss...)
	step(exitOK, append(dismiss, "-o", "json")...)
	refused := meetops.Disable{AppID: "demo-app-2"}
	r := step(exitUnserved, "disable", "--app-id", refused.AppID, "--queue", "nosuchqueue", "--require-served-queue")
	require.Empty(t, r.stdout)
	b.requireNoTask(t, "nosuchqueue", tasks.Key(refused))
	r = step(exitOK, "disable", "--app-id", refused.AppID, "--queue", "critical", "--in", "1h", "--require-served-queue")
	require.Empty(t, r.stderr, "a served queue: no warning")
	step(exitOK, "status", tasks.Key(meetops.Dismiss{AppID: "demo-app", RoomID: "room-001"}))

	const file = "testdata/bulk/unserved.jsonl"
	batches, err := b.client.Batches(b.ctx, 10)
	require.NoError(t, err)
	r = step(exitUnserved, "bulk", file, "--require-served-queue")
	require.Empty(t, r.stdout)
	for _, key := range []string{tasks.Key(meetops.Cancel{ConferenceID: "900000101"}), tasks.Key(meetops.Disable{AppID: "demo-app-7"})} {
		b.requireNoTask(t, "critical", key)
		b.requireNoTask(t, "low", key)
	}
	after, err := b.client.Batches(b.ctx, 10)
	require.NoError(t, err)
	require.Len(t, after, len(batches), "no batch made")
	step(exitOK, "bulk", file)
	step(exitOK, "bulk", file, "-o", "json")
	golden(t, "unserved", results...)
}

// However many lines name an unserved queue, bulk warns once, on stderr.
func TestBulkWarnsOncePerRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var in strings.Builder
	for i := range 300 {
		fmt.Fprintf(&in, `{"op":"disable","app_id":"app-%d","queue":"q%d"}`+"\n", i, i%3)
	}
	path := filepath.Join(t.TempDir(), "many.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(in.String()), 0o600))
	r := b.run(t, "bulk", path, "--batch", "7")
	requireCode(t, r, exitOK)
	require.Equal(t, `enqueue: warning: no running worker serves queues "q0", "q1", "q2" (no worker is running); their tasks wait until workers serving them start`+"\n", r.stderr)
	require.Contains(t, r.stdout, "300/300  300")
}
