package meetops_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/tasks"
)

// batchRequests mixes every outcome: new tasks with each option, pending
// and scheduled, a duplicate and a key reuse within the batch, invalid
// requests.
func batchRequests() []meetops.Request {
	later := time.Now().Add(time.Hour).Truncate(time.Second)
	return []meetops.Request{
		{Op: meetops.Dismiss{AppID: "demo-app", RoomID: "room-001"}, Opts: []meetops.Option{meetops.WithOrigin("billing")}},
		{Op: meetops.HangUp{ConferenceID: "900000010", ParticipantIDs: []string{"p-002", "p-001", "p-002"}}},
		{Op: meetops.Disable{AppID: "a"}, Opts: []meetops.Option{meetops.WithKey("job-1"), meetops.WithQueue("critical"), meetops.WithMaxRetry(0)}},
		{Op: meetops.Cancel{ConferenceID: "900000001", EndOngoing: true}, Opts: []meetops.Option{meetops.ProcessAt(later), meetops.WithMaxRetry(3), meetops.WithOrigin("ops-ü")}},
		{Op: meetops.Reclaim{Account: "bob", AccountType: 1, VMRIDs: []string{"v-2", "v-1"}}, Opts: []meetops.Option{meetops.ProcessAt(time.Now().Add(-time.Hour))}},
		{Op: meetops.Disable{AppID: "b"}, Opts: []meetops.Option{meetops.WithKey("job-1"), meetops.WithQueue("critical")}}, // key reused
		{Op: meetops.Dismiss{AppID: "demo-app", RoomID: "room-001"}, Opts: []meetops.Option{meetops.WithOrigin("other")}},  // duplicate, whoever asks
		{Op: meetops.HangUp{ConferenceID: "900000010", ParticipantIDs: []string{"p-001", "p-002"}}},                        // duplicate
		{Op: meetops.Disable{AppID: "b"}, Opts: []meetops.Option{meetops.WithKey("job-1")}},                                // other queue: new
		{Op: meetops.Dismiss{AppID: "", RoomID: ".."}}, // invalid
		{Op: nil},
		{Op: meetops.Disable{AppID: "c"}, Opts: []meetops.Option{meetops.WithMaxRetry(-1), meetops.WithQueue("")}}, // invalid
		{Op: meetops.Disable{AppID: "d"}, Opts: []meetops.Option{meetops.WithOrigin("bad\norigin")}},               // invalid
	}
}

// EnqueueBatch answers what Enqueue answers, request by request, on a
// fresh database and again on a full one, and leaves Redis in the same
// state, byte for byte.
func TestEnqueueBatchDoesWhatEnqueueDoes(t *testing.T) {
	t.Parallel()
	one, batch := setup(t), setup(t)
	window := meetops.WithDedupWindow(2 * time.Hour)
	oneClient, err := meetops.NewClient(one.url, window)
	require.NoError(t, err)
	defer oneClient.Close()
	batchClient, err := meetops.NewClient(batch.url, window)
	require.NoError(t, err)
	defer batchClient.Close()

	reqs := batchRequests()
	for pass := range 2 { // the second finds every valid request enqueued
		got := batchClient.EnqueueBatch(batch.ctx, reqs)
		require.Len(t, got, len(reqs))
		for i, r := range reqs {
			info, err := oneClient.Enqueue(one.ctx, r.Op, r.Opts...)
			if err != nil {
				require.Error(t, got[i].Err, "pass %d request %d", pass, i)
				require.Equal(t, err.Error(), got[i].Err.Error(), "pass %d request %d", pass, i)
				for _, target := range []error{meetops.ErrInvalid, meetops.ErrKeyReused} {
					require.Equal(t, errors.Is(err, target), errors.Is(got[i].Err, target), "pass %d request %d", pass, i)
				}
				continue
			}
			require.NoError(t, got[i].Err, "pass %d request %d", pass, i)
			require.Equal(t, info, got[i].Info, "pass %d request %d", pass, i)
		}
		require.Equal(t, dumpDB(t, one.rdb), dumpDB(t, batch.rdb), "pass %d", pass)
	}
	res := batchClient.EnqueueBatch(batch.ctx, reqs[:1])
	require.True(t, res[0].Info.Duplicate)
	require.ErrorIs(t, batchClient.EnqueueBatch(batch.ctx, reqs[5:6])[0].Err, meetops.ErrKeyReused)
}

// dumpDB returns every key of the database and its value, with
// pending_since (the clock at the write) replaced by "set".
func dumpDB(t *testing.T, rdb *redis.Client) map[string]any {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	require.NoError(t, err)
	out := map[string]any{}
	for _, k := range keys {
		typ, err := rdb.Type(ctx, k).Result()
		require.NoError(t, err)
		switch typ {
		case "hash":
			h, err := rdb.HGetAll(ctx, k).Result()
			require.NoError(t, err)
			if _, ok := h["pending_since"]; ok {
				h["pending_since"] = "set"
			}
			out[k] = h
		case "list":
			out[k], err = rdb.LRange(ctx, k, 0, -1).Result()
		case "set":
			m, err2 := rdb.SMembers(ctx, k).Result()
			slices.Sort(m)
			out[k], err = m, err2
		case "zset":
			out[k], err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		default:
			t.Fatalf("unexpected %s key %s", typ, k)
		}
		require.NoError(t, err)
	}
	return out
}

// asynq reads what EnqueueBatch wrote, and a real asynq server runs it:
// the handler gets the payload, the completed task is retained for the
// dedup window.
func TestEnqueueBatchTasksRunOnAsynq(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ops := []meetops.Op{
		meetops.Dismiss{AppID: "demo-app", RoomID: "room-001"},
		meetops.HangUp{ConferenceID: "900000010", ParticipantIDs: []string{"p-002", "p-001"}},
		meetops.Reclaim{Account: "bob", VMRIDs: []string{"v-1"}},
	}
	reqs := make([]meetops.Request, len(ops))
	for i, op := range ops {
		reqs[i] = meetops.Request{Op: op}
	}
	res := b.client.EnqueueBatch(b.ctx, reqs)
	for i, r := range res {
		require.NoError(t, r.Err)
		require.Equal(t, meetops.Info{Key: tasks.Key(ops[i]), Queue: "default", State: meetops.StatePending, Unserved: true}, r.Info)
		ti := b.taskInfo(t, r.Info.Key)
		require.Equal(t, asynq.TaskStatePending, ti.State)
		require.Equal(t, ops[i].TaskType(), ti.Type)
		require.Equal(t, string(tasks.Canonical(ops[i])), string(ti.Payload))
		require.Equal(t, "default", ti.Queue)
		require.Equal(t, tasks.DefaultMaxRetry, ti.MaxRetry)
		require.Equal(t, tasks.DefaultTimeout, ti.Timeout)
		require.Equal(t, tasks.DefaultDedupWindow, ti.Retention)
	}

	var mu sync.Mutex
	seen := map[string]string{}
	b.runServer(t, func(_ context.Context, task *asynq.Task) error {
		mu.Lock()
		defer mu.Unlock()
		seen[task.Type()] = string(task.Payload())
		return nil
	})
	for i, r := range res {
		b.waitState(t, r.Info.Key, meetops.StateCompleted)
		ti := b.taskInfo(t, r.Info.Key)
		require.Equal(t, tasks.DefaultDedupWindow, ti.Retention)
		mu.Lock()
		require.Equal(t, string(tasks.Canonical(ops[i])), seen[ops[i].TaskType()])
		mu.Unlock()
	}
	again := b.client.EnqueueBatch(b.ctx, reqs)
	for _, r := range again {
		require.NoError(t, r.Err)
		require.True(t, r.Info.Duplicate)
		require.Equal(t, meetops.StateCompleted, r.Info.State)
	}
}

// A failure of Redis fails every request of the batch, under its key.
func TestEnqueueBatchRedisDown(t *testing.T) {
	t.Parallel()
	c, err := meetops.NewClient("redis://127.0.0.1:1/0", meetops.WithDialTimeout(time.Second))
	require.NoError(t, err)
	defer c.Close()
	op := meetops.Disable{AppID: "a"}
	res := c.EnqueueBatch(context.Background(), []meetops.Request{{Op: op}, {Op: meetops.Disable{}}})
	require.Error(t, res[0].Err)
	require.Equal(t, tasks.Key(op), res[0].Info.Key)
	require.NotErrorIs(t, res[0].Err, meetops.ErrInvalid)
	require.ErrorIs(t, res[1].Err, meetops.ErrInvalid)
}
