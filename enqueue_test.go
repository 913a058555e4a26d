package meetops_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/tasks"
)

func TestEnqueueThenDuplicate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	op := meetops.Dismiss{AppID: "demo-app", RoomID: "room-001"}

	first, err := b.client.Enqueue(b.ctx, op)
	require.NoError(t, err)
	require.Equal(t, meetops.Info{Key: tasks.Key(op), Queue: "default", State: meetops.StatePending, Unserved: true}, first)

	again, err := b.client.Enqueue(b.ctx, op)
	require.NoError(t, err)
	require.Equal(t, meetops.Info{Key: first.Key, Queue: "default", State: meetops.StatePending, Duplicate: true, Unserved: true}, again)

	ti := b.taskInfo(t, first.Key)
	require.Equal(t, tasks.TypeDismiss, ti.Type)
	require.JSONEq(t, `{"app_id":"demo-app","room_id":"room-001"}`, string(ti.Payload))
	require.Equal(t, tasks.DefaultMaxRetry, ti.MaxRetry)
	require.Equal(t, tasks.DefaultDedupWindow, ti.Retention)
}

func TestEnqueueSameOperationInAnyListOrderIsADuplicate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first, err := b.client.Enqueue(b.ctx, meetops.HangUp{ConferenceID: "900000010", ParticipantIDs: []string{"p-002", "p-001"}})
	require.NoError(t, err)
	again, err := b.client.Enqueue(b.ctx, meetops.HangUp{ConferenceID: "900000010", ParticipantIDs: []string{"p-001", "p-002", "p-001"}})
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	require.Equal(t, first.Key, again.Key)
}

func TestEnqueueKeyReusedForAnotherOperation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.client.Enqueue(b.ctx, meetops.Disable{AppID: "a"}, meetops.WithKey("job-1"))
	require.NoError(t, err)

	_, err = b.client.Enqueue(b.ctx, meetops.Disable{AppID: "b"}, meetops.WithKey("job-1"))
	require.ErrorIs(t, err, meetops.ErrKeyReused)
	_, err = b.client.Enqueue(b.ctx, meetops.Dismiss{AppID: "a", RoomID: "r"}, meetops.WithKey("job-1"))
	require.ErrorIs(t, err, meetops.ErrKeyReused)

	// The key is per queue, as asynq task IDs are.
	info, err := b.client.Enqueue(b.ctx, meetops.Disable{AppID: "b"}, meetops.WithKey("job-1"), meetops.WithQueue("low"))
	require.NoError(t, err)
	require.False(t, info.Duplicate)
}

func TestEnqueueOptions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := time.Now().Add(time.Hour).Truncate(time.Second)
	info, err := b.client.Enqueue(b.ctx, meetops.Reclaim{Account: "member-alice", VMRIDs: []string{"vmr-alice-1"}},
		meetops.WithKey("reclaim-alice"), meetops.WithQueue("low"), meetops.ProcessAt(at), meetops.WithMaxRetry(3))
	require.NoError(t, err)
	require.Equal(t, meetops.Info{Key: "reclaim-alice", Queue: "low", State: meetops.StateScheduled, Unserved: true}, info)
	ti, err := b.insp.GetTaskInfo("low", "reclaim-alice")
	require.NoError(t, err)
	require.Equal(t, 3, ti.MaxRetry)
	require.True(t, ti.NextProcessAt.Equal(at), "next process at %s, want %s", ti.NextProcessAt, at)

	info, err = b.client.Enqueue(b.ctx, meetops.Cancel{ConferenceID: "900000001"}, meetops.ProcessIn(time.Hour), meetops.WithMaxRetry(0))
	require.NoError(t, err)
	require.Equal(t, meetops.StateScheduled, info.State)
	require.Zero(t, b.taskInfo(t, info.Key).MaxRetry, "WithMaxRetry(0) means no retries")
}

func TestEnqueueRejectsInvalidInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	long := string(make([]byte, 129))
	for name, tc := range map[string]struct {
		op    meetops.Op
		opts  []meetops.Option
		field string
	}{
		"empty app":          {op: meetops.Dismiss{RoomID: "r"}, field: "app_id"},
		"dot room":           {op: meetops.Dismiss{AppID: "a", RoomID: ".."}, field: "room_id"},
		"control character":  {op: meetops.Disable{AppID: "a\x00"}, field: "app_id"},
		"no participants":    {op: meetops.HangUp{ConferenceID: "c"}, field: "participant_ids"},
		"bad account type":   {op: meetops.Reclaim{Account: "a", AccountType: 2, VMRIDs: []string{"v"}}, field: "account_type"},
		"long id":            {op: meetops.Cancel{ConferenceID: long}, field: "conference_id"},
		"key with space":     {op: meetops.Disable{AppID: "a"}, opts: []meetops.Option{meetops.WithKey("a b")}, field: "key"},
		"empty queue":        {op: meetops.Disable{AppID: "a"}, opts: []meetops.Option{meetops.WithQueue("")}, field: "queue"},
		"negative max retry": {op: meetops.Disable{AppID: "a"}, opts: []meetops.Option{meetops.WithMaxRetry(-1)}, field: "max_retry"},
		"negative delay":     {op: meetops.Disable{AppID: "a"}, opts: []meetops.Option{meetops.ProcessIn(-time.Second)}, field: "process_in"},
		"no operation":       {op: nil, field: "op"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := b.client.Enqueue(b.ctx, tc.op, tc.opts...)
			require.ErrorIs(t, err, meetops.ErrInvalid)
			var fe *meetops.FieldError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tc.field, fe.Field)
		})
	}
	n, err := b.rdb.DBSize(b.ctx).Result()
	require.NoError(t, err)
	require.Zero(t, n, "nothing invalid reaches Redis")
}

func TestEnqueueDuplicateOfCompletedTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.runServer(t, func(context.Context, *asynq.Task) error { return nil })
	op := meetops.Disable{AppID: "demo-app-2"}
	info, err := b.client.Enqueue(b.ctx, op)
	require.NoError(t, err)
	b.waitState(t, info.Key, meetops.StateCompleted)

	again, err := b.client.Enqueue(b.ctx, op)
	require.NoError(t, err)
	require.Equal(t, meetops.Info{Key: info.Key, Queue: "default", State: meetops.StateCompleted, Duplicate: true}, again)
}

func TestEnqueueRedisDown(t *testing.T) {
	t.Parallel()
	c, err := meetops.NewClient("redis://127.0.0.1:1/0", meetops.WithDialTimeout(time.Second))
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	require.Error(t, c.Ping(ctx))
	_, err = c.Enqueue(ctx, meetops.Disable{AppID: "a"})
	require.Error(t, err)
	require.False(t, errors.Is(err, meetops.ErrInvalid))
}

func TestNewClientRejectsBadURL(t *testing.T) {
	t.Parallel()
	_, err := meetops.NewClient("http://127.0.0.1:6379")
	require.Error(t, err)
}
