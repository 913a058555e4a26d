package asynqdb_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/asynqdb"
	"github.com/meetops/meetops/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// asynqOptions are the asynq options that make asynq's Client.Enqueue
// write t.
func asynqOptions(t asynqdb.Task) []asynq.Option {
	opts := []asynq.Option{asynq.TaskID(t.ID), asynq.Queue(t.Queue), asynq.MaxRetry(t.Retry), asynq.Retention(t.Retention)}
	if t.Timeout != 0 {
		opts = append(opts, asynq.Timeout(t.Timeout))
	}
	if !t.ProcessAt.IsZero() {
		opts = append(opts, asynq.ProcessAt(t.ProcessAt))
	}
	return opts
}

// dump returns every key of the database and its value, with the
// pending_since timestamps (the clock at the write) replaced by "set".
func dump(t *testing.T, rdb *redis.Client) map[string]any {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	require.NoError(t, err)
	out := map[string]any{}
	for _, k := range keys {
		typ, err := rdb.Type(ctx, k).Result()
		require.NoError(t, err)
		var v any
		switch typ {
		case "hash":
			h, err := rdb.HGetAll(ctx, k).Result()
			require.NoError(t, err)
			if _, ok := h["pending_since"]; ok {
				h["pending_since"] = "set"
			}
			v = h
		case "list":
			v, err = rdb.LRange(ctx, k, 0, -1).Result()
		case "set":
			var m []string
			m, err = rdb.SMembers(ctx, k).Result()
			slices.Sort(m)
			v = m
		case "zset":
			v, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		default:
			t.Fatalf("unexpected %s key %s", typ, k)
		}
		require.NoError(t, err)
		out[k] = v
	}
	return out
}

// What Write stores is what asynq's Client.Enqueue stores, byte for byte:
// the same keys, the same encoded TaskMessage, the same state, lists, sets
// and scores.
func TestWriteStoresWhatAsynqStores(t *testing.T) {
	t.Parallel()
	at := time.Now().Add(time.Hour).Truncate(time.Second)
	ts := []asynqdb.Task{
		{ID: "dismiss:0123456789abcdef0123456789abcdef", Type: "rtc:room:dismiss", Payload: []byte(`{"app_id":"a","room_id":"r"}`),
			Queue: "default", Retry: 12, Timeout: 5 * time.Minute, Retention: 24 * time.Hour},
		{ID: "k-2", Type: "rtc:app:disable", Payload: []byte(`{"app_id":"b"}`), Queue: "critical", Retry: 0, Timeout: 90500 * time.Millisecond, Retention: time.Hour},
		{ID: "k-3", Type: "rtc:app:disable", Payload: []byte(`{"app_id":"c"}`), Queue: "critical", Retry: 300, Timeout: time.Minute, Retention: 0},
		{ID: "k-ü", Type: "t", Payload: nil, Queue: "q-ü", Retry: 1},
		{ID: "k-5", Type: "meeting:conference:cancel", Payload: []byte(`{"conference_id":"9"}`), Queue: "default", Retry: 3,
			Timeout: 5 * time.Minute, Retention: 48 * time.Hour, ProcessAt: at},
		{ID: "k-6", Type: "meeting:conference:cancel", Payload: []byte(`{"conference_id":"10"}`), Queue: "later", Retry: 3,
			Timeout: 5 * time.Minute, Retention: 48 * time.Hour, ProcessAt: at.Add(time.Minute)},
		{ID: "k-7", Type: "rtc:app:disable", Payload: []byte(`{"app_id":"o"}`), Queue: "default", Retry: 12,
			Timeout: 5 * time.Minute, Retention: 24 * time.Hour, Origin: "billing-service"},
		{ID: "k-8", Type: "rtc:app:disable", Payload: []byte(`{"app_id":"p"}`), Queue: "later", Retry: 12,
			Timeout: 5 * time.Minute, Retention: 24 * time.Hour, ProcessAt: at, Origin: strings.Repeat("ü", 64)},
	}
	ctx := context.Background()
	viaAsynq, viaWriter := redistest.Client(t), redistest.Client(t)
	c := asynq.NewClientFromRedisClient(viaAsynq)
	for _, task := range ts {
		var headers map[string]string
		if task.Origin != "" {
			headers = map[string]string{asynqdb.OriginHeader: task.Origin}
		}
		_, err := c.EnqueueContext(ctx, asynq.NewTaskWithHeaders(task.Type, task.Payload, headers, asynqOptions(task)...))
		require.NoError(t, err, task.ID)
	}
	for i, err := range asynqdb.New(viaWriter, asynqdb.Options{}).Write(ctx, ts) {
		require.NoError(t, err, ts[i].ID)
	}
	want := dump(t, viaAsynq)
	require.Len(t, want, 8+3+2+1, "tasks, pending lists, scheduled sets, asynq:queues")
	require.Equal(t, want, dump(t, viaWriter))
}

// asynq reads the tasks back: Inspector.GetTaskInfo decodes every field.
func TestWrittenTasksReadBackByAsynq(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	at := time.Now().Add(time.Hour).Truncate(time.Second)
	ts := []asynqdb.Task{
		{ID: "a", Type: "rtc:app:disable", Payload: []byte(`{"app_id":"a"}`), Queue: "default", Retry: 12, Timeout: 5 * time.Minute, Retention: 24 * time.Hour},
		{ID: "b", Type: "rtc:app:disable", Payload: []byte(`{"app_id":"b"}`), Queue: "default", Retry: 4, Timeout: time.Minute, Retention: time.Hour, ProcessAt: at,
			Origin: "billing"},
	}
	for _, err := range asynqdb.New(rdb, asynqdb.Options{}).Write(ctx, ts) {
		require.NoError(t, err)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	a, err := insp.GetTaskInfo("default", "a")
	require.NoError(t, err)
	require.Equal(t, asynq.TaskStatePending, a.State)
	require.Equal(t, "rtc:app:disable", a.Type)
	require.Equal(t, `{"app_id":"a"}`, string(a.Payload))
	require.Equal(t, "default", a.Queue)
	require.Equal(t, 12, a.MaxRetry)
	require.Equal(t, 5*time.Minute, a.Timeout)
	require.Equal(t, 24*time.Hour, a.Retention)
	require.True(t, a.Deadline.IsZero())
	require.Empty(t, a.Headers)

	b, err := insp.GetTaskInfo("default", "b")
	require.NoError(t, err)
	require.Equal(t, map[string]string{asynqdb.OriginHeader: "billing"}, b.Headers)
	require.Equal(t, asynq.TaskStateScheduled, b.State)
	require.Equal(t, at, b.NextProcessAt)
	require.Equal(t, 4, b.MaxRetry)
	queues, err := insp.Queues()
	require.NoError(t, err)
	require.Equal(t, []string{"default"}, queues)
}

// A task ID taken, by asynq or earlier in the same batch, is refused as
// asynq refuses it, and the task that holds it is left alone.
func TestWriteRefusesATakenID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	_, err := asynq.NewClientFromRedisClient(rdb).EnqueueContext(ctx, asynq.NewTask("x", []byte("old"), asynq.TaskID("taken")))
	require.NoError(t, err)
	task := func(id, payload string) asynqdb.Task {
		return asynqdb.Task{ID: id, Type: "x", Payload: []byte(payload), Queue: "default", Retry: 1}
	}
	errs := asynqdb.New(rdb, asynqdb.Options{}).Write(ctx, []asynqdb.Task{task("taken", "new"), task("fresh", "1"), task("fresh", "2")})
	require.ErrorIs(t, errs[0], asynqdb.ErrConflict)
	require.NoError(t, errs[1])
	require.ErrorIs(t, errs[2], asynqdb.ErrConflict)

	insp := asynq.NewInspectorFromRedisClient(rdb)
	old, err := insp.GetTaskInfo("default", "taken")
	require.NoError(t, err)
	require.Equal(t, "old", string(old.Payload))
	fresh, err := insp.GetTaskInfo("default", "fresh")
	require.NoError(t, err)
	require.Equal(t, "1", string(fresh.Payload))
	q, err := insp.GetQueueInfo("default")
	require.NoError(t, err)
	require.Equal(t, 2, q.Pending)
}

// Every task of a batch fails when Redis cannot be reached, and none as a
// conflict.
func TestWriteFailsEveryTaskWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer rdb.Close()
	errs := asynqdb.New(rdb, asynqdb.Options{}).Write(context.Background(), []asynqdb.Task{
		{ID: "a", Type: "x", Queue: "default"}, {ID: "b", Type: "x", Queue: "default"},
	})
	for _, err := range errs {
		require.Error(t, err)
		require.False(t, errors.Is(err, asynqdb.ErrConflict))
	}
}

// A big batch goes through in one call, each task exactly once.
func TestWriteLargeBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	ts := make([]asynqdb.Task, 2000)
	for i := range ts {
		ts[i] = asynqdb.Task{ID: fmt.Sprintf("t-%d", i), Type: "x", Payload: []byte(fmt.Sprint(i)), Queue: "default", Retry: 1}
	}
	for _, err := range asynqdb.New(rdb, asynqdb.Options{}).Write(ctx, ts) {
		require.NoError(t, err)
	}
	n, err := rdb.LLen(ctx, "asynq:{default}:pending").Result()
	require.NoError(t, err)
	require.EqualValues(t, len(ts), n)
}
