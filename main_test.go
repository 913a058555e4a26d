package meetops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/ledger"
	"github.com/meetops/meetops/internal/redistest"
)

// testServer is the package's private redis-server. TestMain starts it
// itself rather than through redistest.Main because the Examples, which
// have no *testing.T, need it too (exampleRedisURL).
var testServer *redistest.Server

func TestMain(m *testing.M) {
	s, err := redistest.Start(redistest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testServer = s
	code := redistest.Run(m) // also the shared Cluster and Sentinel, if a test starts them
	s.Close()
	os.Exit(code)
}

// exampleRedisURL returns the URL of an empty database of the test server
// for one Example. Examples run one at a time after the tests, whose
// databases are flushed by then; a database an earlier Example filled is
// skipped.
func exampleRedisURL() string {
	for db := 0; db < 16; db++ {
		c := redis.NewClient(testServer.Options(db))
		n, err := c.DBSize(context.Background()).Result()
		_ = c.Close()
		if err == nil && n == 0 {
			return testServer.URL(db)
		}
	}
	panic("no empty database for the example")
}

// testBundle is what most tests need: a client on an empty database and
// direct access to what it writes.
type testBundle struct {
	ctx    context.Context
	url    string
	rdb    *redis.Client
	client *meetops.Client
	insp   *asynq.Inspector
	dead   *deadletter.Store
	ledger *ledger.Ledger
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	url := testServer.URL(testServer.DB(t))
	client, err := meetops.NewClient(url)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })
	ro, err := redis.ParseURL(url)
	require.NoError(t, err)
	rdb := redis.NewClient(ro)
	t.Cleanup(func() { _ = rdb.Close() })
	return &testBundle{
		ctx:    context.Background(),
		url:    url,
		rdb:    rdb,
		client: client,
		insp:   asynq.NewInspectorFromRedisClient(rdb),
		dead:   deadletter.New(rdb, deadletter.Options{}),
		ledger: ledger.New(rdb, ledger.Options{}),
	}
}

// deadAt is the fixed time test dead letters died at.
var deadAt = time.Date(2030, 1, 6, 9, 30, 0, 0, time.UTC)

// addDeadLetter records op under key as a dead letter in meetops' store,
// the way the worker does, with an upstream 4xx answer.
func (b *testBundle) addDeadLetter(t *testing.T, key string, op meetops.Op, reason string) {
	t.Helper()
	payload, err := json.Marshal(op)
	require.NoError(t, err)
	result := fmt.Sprintf(`{"outcome":"dead_letter","reason":%q,"status":404,"error_code":"RTC.00001003","error_msg":"room not found","request_id":"req-1","attempts":1}`, reason)
	require.NoError(t, b.dead.Add(b.ctx, deadletter.Record{Key: key, Type: op.TaskType(), Queue: "default",
		Reason: reason, Payload: payload, Result: json.RawMessage(result), DeadAt: deadAt}))
}

// archive enqueues op and archives the asynq task, as asynq does to a dead
// letter, and records it in the store; it returns the key.
func (b *testBundle) archive(t *testing.T, op meetops.Op, opts ...meetops.Option) string {
	t.Helper()
	info, err := b.client.Enqueue(b.ctx, op, opts...)
	require.NoError(t, err)
	require.NoError(t, b.insp.ArchiveTask(info.Queue, info.Key))
	b.addDeadLetter(t, info.Key, op, meetops.ReasonHTTP4xx)
	return info.Key
}

// taskInfo returns asynq's view of key in the default queue.
func (b *testBundle) taskInfo(t *testing.T, key string) *asynq.TaskInfo {
	t.Helper()
	ti, err := b.insp.GetTaskInfo("default", key)
	require.NoError(t, err)
	return ti
}

// runServer runs an asynq server with handler on the bundle's database
// until the test ends, serving the default queue.
func (b *testBundle) runServer(t *testing.T, handler asynq.HandlerFunc) {
	t.Helper()
	opt, err := asynq.ParseRedisURI(b.url)
	require.NoError(t, err)
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency:    1,
		Queues:         map[string]int{"default": 1},
		LogLevel:       asynq.FatalLevel,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
	})
	require.NoError(t, srv.Start(handler))
	t.Cleanup(srv.Shutdown)
	// Running once its record is written (the first heartbeat, in a
	// goroutine of its own): from then on the clients see the queue served.
	require.Eventually(t, func() bool {
		servers, err := b.insp.Servers()
		return err == nil && len(servers) == 1 && servers[0].Status == "active"
	}, 10*time.Second, 10*time.Millisecond, "the server's record")
}

// waitState waits until asynq reports key in state (the server moves the
// task in its own goroutines; there is no event to wait for).
func (b *testBundle) waitState(t *testing.T, key, state string) {
	t.Helper()
	require.Eventually(t, func() bool {
		ti, err := b.insp.GetTaskInfo("default", key)
		return err == nil && ti.State.String() == state
	}, 10*time.Second, 10*time.Millisecond, "task %s never reached %s", key, state)
}
