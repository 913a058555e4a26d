package meetops_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/ledger"
)

func (b *testBundle) listKeys(t *testing.T, f meetops.DeadLetterFilter) []string {
	t.Helper()
	var keys []string
	require.NoError(t, b.client.DeadLetters(b.ctx, f, func(d meetops.DeadLetter) error {
		keys = append(keys, d.Key)
		return nil
	}))
	return keys
}

func TestDeadLettersListShowAndFilter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.addDeadLetter(t, "k1", meetops.Dismiss{AppID: "a", RoomID: "r"}, meetops.ReasonHTTP4xx)
	b.addDeadLetter(t, "k2", meetops.Disable{AppID: "a"}, meetops.ReasonAuth)
	b.addDeadLetter(t, "k3", meetops.Dismiss{AppID: "a", RoomID: "s"}, meetops.ReasonRetriesExhausted)

	require.ElementsMatch(t, []string{"k1", "k2", "k3"}, b.listKeys(t, meetops.DeadLetterFilter{}))
	require.ElementsMatch(t, []string{"k1", "k3"}, b.listKeys(t, meetops.DeadLetterFilter{Op: "dismiss"}))
	require.Equal(t, []string{"k3"}, b.listKeys(t, meetops.DeadLetterFilter{Op: "dismiss", Reason: "retries_exhausted"}))
	n, err := b.client.CountDeadLetters(b.ctx, meetops.DeadLetterFilter{Op: "dismiss"})
	require.NoError(t, err)
	require.EqualValues(t, 2, n)

	d, err := b.client.DeadLetter(b.ctx, "k2")
	require.NoError(t, err)
	require.Equal(t, meetops.DeadLetter{Key: "k2", Op: "disable", Queue: "default", Reason: "auth", Status: 404,
		ErrorCode: "RTC.00001003", ErrorMsg: "room not found", RequestID: "req-1", Attempts: 1, DeadAt: d.DeadAt,
		Payload: d.Payload, Result: d.Result}, d)
	require.True(t, d.DeadAt.Equal(deadAt))
	require.JSONEq(t, `{"app_id":"a"}`, string(d.Payload))

	_, err = b.client.DeadLetter(b.ctx, "nope")
	require.ErrorIs(t, err, meetops.ErrNotFound)

	err = b.client.DeadLetters(b.ctx, meetops.DeadLetterFilter{Op: "explode", Reason: "boredom"}, nil)
	require.ErrorIs(t, err, meetops.ErrInvalid)
	require.ErrorContains(t, err, "explode")
	require.ErrorContains(t, err, "boredom")
}

// DeadLetterPage pages through a filter with opaque cursors; a cursor it
// did not make is refused, naming the parameter.
func TestDeadLetterPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var want []string
	for i := range 7 {
		key := fmt.Sprintf("k/%d?#", i) // keys of any characters survive the cursor
		b.addDeadLetter(t, key, meetops.Dismiss{AppID: "a", RoomID: fmt.Sprint(i)}, meetops.ReasonHTTP4xx)
		want = append(want, key)
	}
	b.addDeadLetter(t, "other", meetops.Disable{AppID: "a"}, meetops.ReasonHTTP4xx)
	var got []string
	cursor := ""
	for range 10 {
		page, err := b.client.DeadLetterPage(b.ctx, meetops.DeadLetterFilter{Op: "dismiss"}, cursor, 3)
		require.NoError(t, err)
		for _, d := range page.Items {
			require.Equal(t, "dismiss", d.Op)
			got = append(got, d.Key)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
		require.Len(t, page.Items, 3)
		require.NotContains(t, cursor, "/", "URL-safe")
	}
	require.Equal(t, want, got)

	page, err := b.client.DeadLetterPage(b.ctx, meetops.DeadLetterFilter{}, "", 0)
	require.NoError(t, err)
	require.Len(t, page.Items, 8)
	require.Empty(t, page.Next)

	for _, bad := range []string{"!!", "bm90IGEgY3Vyc29y", "OjE"} {
		_, err = b.client.DeadLetterPage(b.ctx, meetops.DeadLetterFilter{Op: "nope"}, bad, 1)
		require.ErrorIs(t, err, meetops.ErrInvalid)
		require.ErrorContains(t, err, "cursor: ")
		require.ErrorContains(t, err, "op: ")
	}
}

// A dead letter whose retries ran out comes back with a fresh budget: a
// new task, Retried 0, the original MaxRetry, the ledger's "started" kept.
func TestRequeueGivesAFreshRetryBudget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.runServer(t, func(context.Context, *asynq.Task) error { return errors.New("upstream 503") })
	op := meetops.Cancel{ConferenceID: "900000001"}
	info, err := b.client.Enqueue(b.ctx, op, meetops.WithMaxRetry(1))
	require.NoError(t, err)
	b.waitState(t, info.Key, meetops.StateRetry)
	require.NoError(t, b.insp.ArchiveTask("default", info.Key))
	require.Equal(t, 1, b.taskInfo(t, info.Key).Retried)
	b.addDeadLetter(t, info.Key, op, meetops.ReasonRetriesExhausted)
	_, lease, err := b.ledger.Begin(b.ctx, info.Key)
	require.NoError(t, err)
	require.NoError(t, b.ledger.Release(b.ctx, lease)) // "started": may have reached upstream

	res := b.client.Requeue(b.ctx, info.Key)
	require.Equal(t, []meetops.KeyResult{{Key: info.Key, Info: meetops.Info{Key: info.Key, Queue: "default", State: meetops.StatePending}}}, res)

	ti := b.taskInfo(t, info.Key)
	require.Equal(t, asynq.TaskStatePending, ti.State)
	require.Zero(t, ti.Retried, "fresh retry budget")
	require.Equal(t, 1, ti.MaxRetry, "the original budget")
	require.JSONEq(t, `{"conference_id":"900000001"}`, string(ti.Payload))
	require.Empty(t, b.listKeys(t, meetops.DeadLetterFilter{}))
	e, err := b.ledger.Get(b.ctx, info.Key)
	require.NoError(t, err)
	require.Equal(t, ledger.Started, e.State, "an attempt that may have reached upstream is remembered")
}

func TestRequeueAfterAsynqTrimmedItsArchiveCopy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	op := meetops.Dismiss{AppID: "demo-app", RoomID: "room-003"}
	b.addDeadLetter(t, "dismiss-room-3", op, meetops.ReasonHTTP4xx)
	_, lease, err := b.ledger.Begin(b.ctx, "dismiss-room-3")
	require.NoError(t, err)
	require.NoError(t, b.ledger.Fail(b.ctx, lease))

	res := b.client.Requeue(b.ctx, "dismiss-room-3")
	require.Equal(t, []meetops.KeyResult{{Key: "dismiss-room-3", Info: meetops.Info{Key: "dismiss-room-3", Queue: "default", State: meetops.StatePending, Unserved: true}}}, res)
	ti := b.taskInfo(t, "dismiss-room-3")
	require.Equal(t, 12, ti.MaxRetry, "default budget when the archive copy is gone")
	e, err := b.ledger.Get(b.ctx, "dismiss-room-3")
	require.NoError(t, err)
	require.Equal(t, ledger.None, e.State, "a definitive failure is forgotten: the next run is a first attempt")
	_, err = b.client.DeadLetter(b.ctx, "dismiss-room-3")
	require.ErrorIs(t, err, meetops.ErrNotFound)
}

func TestRequeueAllWithFilter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	k1 := b.archive(t, meetops.Dismiss{AppID: "a", RoomID: "1"})
	k2 := b.archive(t, meetops.Dismiss{AppID: "a", RoomID: "2"})
	k3 := b.archive(t, meetops.Disable{AppID: "a"})

	res, err := b.client.RequeueAll(b.ctx, meetops.DeadLetterFilter{Op: "dismiss"})
	require.NoError(t, err)
	require.Len(t, res, 2)
	for _, r := range res {
		require.NoError(t, r.Err)
		require.Equal(t, meetops.StatePending, r.Info.State)
	}
	for _, k := range []string{k1, k2} {
		require.Equal(t, asynq.TaskStatePending, b.taskInfo(t, k).State)
	}
	require.Equal(t, asynq.TaskStateArchived, b.taskInfo(t, k3).State)
	require.Equal(t, []string{k3}, b.listKeys(t, meetops.DeadLetterFilter{}))
}

func TestRequeueRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	succeeded := b.archive(t, meetops.Disable{AppID: "done"})
	_, lease, err := b.ledger.Begin(b.ctx, succeeded)
	require.NoError(t, err)
	require.NoError(t, b.ledger.Succeed(b.ctx, lease, []byte(`{}`), ledger.HashField{}))
	b.addDeadLetter(t, "bad-payload", meetops.Dismiss{AppID: "a", RoomID: ".."}, meetops.ReasonInvalidPayload)

	res := b.client.Requeue(b.ctx, succeeded, "bad-payload", "unknown")
	require.Len(t, res, 3)
	for i, key := range []string{succeeded, "bad-payload", "unknown"} {
		require.Equal(t, key, res[i].Key, "one result per key, in order")
		require.Zero(t, res[i].Info, "nothing requeued")
	}
	require.ErrorContains(t, res[0].Err, "already succeeded")
	require.ErrorIs(t, res[1].Err, meetops.ErrInvalid)
	require.ErrorIs(t, res[2].Err, meetops.ErrNotFound)
	require.ElementsMatch(t, []string{succeeded, "bad-payload"}, b.listKeys(t, meetops.DeadLetterFilter{}), "refused dead letters stay")
}

// A dead letter requeued from the dashboard (asynq's RunTask) is already
// back in the queue: requeue only forgets the dead letter.
func TestRequeueOfATaskAlreadyBackInTheQueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	key := b.archive(t, meetops.Disable{AppID: "a"})
	require.NoError(t, b.insp.RunTask("default", key))

	res := b.client.Requeue(b.ctx, key)
	require.Equal(t, []meetops.KeyResult{{Key: key, Info: meetops.Info{Key: key, Queue: "default", State: meetops.StatePending, Duplicate: true}}}, res)
	require.Empty(t, b.listKeys(t, meetops.DeadLetterFilter{}))
}

func TestPurge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	k1 := b.archive(t, meetops.Dismiss{AppID: "a", RoomID: "1"})
	k2 := b.archive(t, meetops.Disable{AppID: "a"})
	b.addDeadLetter(t, "trimmed", meetops.Disable{AppID: "b"}, meetops.ReasonAuth)
	pending, err := b.client.Enqueue(b.ctx, meetops.Disable{AppID: "c"})
	require.NoError(t, err)

	res := b.client.Purge(b.ctx, k1, "trimmed", pending.Key)
	require.Len(t, res, 3)
	require.Equal(t, meetops.KeyResult{Key: k1}, res[0])
	require.Equal(t, meetops.KeyResult{Key: "trimmed"}, res[1])
	require.Equal(t, pending.Key, res[2].Key)
	require.ErrorIs(t, res[2].Err, meetops.ErrNotFound, "a pending task is not a dead letter")
	_, err = b.insp.GetTaskInfo("default", k1)
	require.ErrorIs(t, err, asynq.ErrTaskNotFound, "the archive copy is gone too")
	require.Equal(t, asynq.TaskStatePending, b.taskInfo(t, pending.Key).State, "purge never touches live tasks")
	require.Equal(t, []string{k2}, b.listKeys(t, meetops.DeadLetterFilter{}))

	res, err = b.client.PurgeAll(b.ctx, meetops.DeadLetterFilter{})
	require.NoError(t, err)
	require.Equal(t, []meetops.KeyResult{{Key: k2}}, res)
	require.Empty(t, b.listKeys(t, meetops.DeadLetterFilter{}))
	_, err = b.insp.GetTaskInfo("default", k2)
	require.ErrorIs(t, err, asynq.ErrTaskNotFound)
}
