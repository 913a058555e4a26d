package meetops_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/ledger"
)

func TestStatusOfAPendingTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	info, err := b.client.Enqueue(b.ctx, meetops.Dismiss{AppID: "demo-app", RoomID: "room-002"}, meetops.WithQueue("critical"))
	require.NoError(t, err)

	st, err := b.client.Status(b.ctx, info.Key)
	require.NoError(t, err)
	require.Equal(t, info.Key, st.Key)
	require.Equal(t, "critical", st.Queue)
	require.Equal(t, "dismiss", st.Op)
	require.Equal(t, meetops.StatePending, st.State)
	require.JSONEq(t, `{"app_id":"demo-app","room_id":"room-002"}`, string(st.Payload))
	require.Empty(t, st.Result)
	require.Zero(t, st.NextProcessAt)
	require.Empty(t, st.Origin)
}

// The origin is kept in the task and reported; a duplicate asked for by
// someone else keeps the first one's.
func TestStatusReportsTheOrigin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	op := meetops.Disable{AppID: "origin-app"}
	info, err := b.client.Enqueue(b.ctx, op, meetops.WithOrigin("billing"))
	require.NoError(t, err)
	again, err := b.client.Enqueue(b.ctx, op, meetops.WithOrigin("crm"))
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	res := b.client.EnqueueBatch(b.ctx, []meetops.Request{{Op: meetops.Disable{AppID: "origin-app-2"}, Opts: []meetops.Option{meetops.WithOrigin("crm")}}})
	require.NoError(t, res[0].Err)
	for key, want := range map[string]string{info.Key: "billing", res[0].Info.Key: "crm"} {
		st, err := b.client.Status(b.ctx, key)
		require.NoError(t, err)
		require.Equal(t, want, st.Origin, key)
		b, err := json.Marshal(st)
		require.NoError(t, err)
		require.Contains(t, string(b), `"origin":"`+want+`"`)
	}
	_, err = b.client.Enqueue(b.ctx, op, meetops.WithOrigin(strings.Repeat("x", 129)))
	require.ErrorIs(t, err, meetops.ErrInvalid)
	require.ErrorContains(t, err, "origin: must be at most 128 bytes")
}

func TestStatusOfARetryingTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.runServer(t, func(context.Context, *asynq.Task) error { return errors.New("upstream 503") })
	info, err := b.client.Enqueue(b.ctx, meetops.Disable{AppID: "demo-app"})
	require.NoError(t, err)
	b.waitState(t, info.Key, meetops.StateRetry)

	st, err := b.client.Status(b.ctx, info.Key)
	require.NoError(t, err)
	require.Equal(t, meetops.StateRetry, st.State)
	require.Equal(t, 1, st.Retried)
	require.Equal(t, "upstream 503", st.LastError)
	require.NotZero(t, st.NextProcessAt)
}

func TestStatusOfADeadLetterTrimmedFromTheArchive(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.addDeadLetter(t, "dismiss:trimmed", meetops.Dismiss{AppID: "demo-app", RoomID: "room-404"}, meetops.ReasonHTTP4xx)

	st, err := b.client.Status(b.ctx, "dismiss:trimmed")
	require.NoError(t, err)
	require.Equal(t, meetops.StateArchived, st.State)
	require.Equal(t, "dismiss", st.Op)
	require.Contains(t, string(st.Result), `"status":404`)
}

func TestStatusOfACompletedTaskPastRetention(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, lease, err := b.ledger.Begin(b.ctx, "disable:gone")
	require.NoError(t, err)
	require.NoError(t, b.ledger.Succeed(b.ctx, lease, []byte(`{"outcome":"succeeded","status":200,"attempts":1}`), ledger.HashField{}))

	st, err := b.client.Status(b.ctx, "disable:gone")
	require.NoError(t, err)
	require.Equal(t, meetops.StateCompleted, st.State)
	require.JSONEq(t, `{"outcome":"succeeded","status":200,"attempts":1}`, string(st.Result))
}

func TestStatusOfAnUnknownKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.client.Enqueue(b.ctx, meetops.Disable{AppID: "a"})
	require.NoError(t, err)
	_, err = b.client.Status(b.ctx, "disable:nope")
	require.ErrorIs(t, err, meetops.ErrNotFound)
}
