package bulk_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/bulk"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/tasks"
)

func TestMain(m *testing.M) { redistest.Main(m) }

type enqueuerFunc func(ctx context.Context, op meetops.Op, opts ...meetops.Option) (meetops.Info, error)

func (f enqueuerFunc) Enqueue(ctx context.Context, op meetops.Op, opts ...meetops.Option) (meetops.Info, error) {
	return f(ctx, op, opts...)
}

// appOf returns the app ID of a Disable, which the tests number.
func appOf(op meetops.Op) string { return op.(meetops.Disable).AppID }

// disables returns JSONL lines disabling app-from … app-to under keys
// k<from> … k<to>.
func disables(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, `{"op":"disable","app_id":"app-%d","key":"k%d"}`+"\n", i, i)
	}
	return b.String()
}

func TestRunMapsEveryOutcome(t *testing.T) {
	t.Parallel()
	byApp := map[string]func() (meetops.Info, error){
		"app-1": func() (meetops.Info, error) { return meetops.Info{State: "pending"}, nil },
		"app-2": func() (meetops.Info, error) { return meetops.Info{Duplicate: true}, nil },
		"app-3": func() (meetops.Info, error) { return meetops.Info{}, fmt.Errorf("wrap: %w", meetops.ErrKeyReused) },
		"app-4": func() (meetops.Info, error) { return meetops.Info{}, &meetops.FieldError{Field: "queue", Msg: "bad"} },
	}
	e := enqueuerFunc(func(_ context.Context, op meetops.Op, _ ...meetops.Option) (meetops.Info, error) {
		return byApp[appOf(op)]()
	})
	in := disables(1, 2) + `{"op":"disable","app_id":""}` + "\n" + disables(3, 4)
	var results []bulk.Result
	s, err := bulk.Run(context.Background(), bulk.NewJSONL(strings.NewReader(in)), e, bulk.Options{
		Concurrency: 1,
		OnResult:    func(r bulk.Result) { results = append(results, r) },
	})
	require.NoError(t, err)
	require.Equal(t, bulk.Summary{Lines: 5, Enqueued: 1, Duplicates: 1, KeyReused: 1, Invalid: 2, Complete: true}, s)
	require.Equal(t, []bulk.Result{
		{Line: 1, Key: "k1", Outcome: bulk.Enqueued},
		{Line: 2, Key: "k2", Outcome: bulk.Duplicate},
		{Line: 3, Outcome: bulk.Invalid, Error: "app_id: must not be empty"},
		{Line: 4, Key: "k3", Outcome: bulk.KeyReused, Error: "wrap: idempotency key already used for a different operation"},
		{Line: 5, Key: "k4", Outcome: bulk.Invalid, Error: "queue: bad"},
	}, results)
}

// Run keeps exactly Concurrency enqueues in flight: the first calls wait
// at a barrier that opens only when that many have arrived.
func TestRunEnqueuesConcurrently(t *testing.T) {
	t.Parallel()
	const n = 8
	var arrived, inFlight, maxInFlight atomic.Int32
	barrier := make(chan struct{})
	e := enqueuerFunc(func(context.Context, meetops.Op, ...meetops.Option) (meetops.Info, error) {
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := maxInFlight.Load(); cur > m && !maxInFlight.CompareAndSwap(m, cur); m = maxInFlight.Load() {
		}
		if arrived.Add(1) == n {
			close(barrier)
		}
		<-barrier
		return meetops.Info{}, nil
	})
	s, err := bulk.Run(context.Background(), bulk.NewJSONL(strings.NewReader(disables(1, 100))), e, bulk.Options{Concurrency: n})
	require.NoError(t, err)
	require.Equal(t, 100, s.Enqueued)
	require.EqualValues(t, n, maxInFlight.Load())
}

func TestRunStopsAtTheFirstFailure(t *testing.T) {
	t.Parallel()
	e := enqueuerFunc(func(_ context.Context, op meetops.Op, _ ...meetops.Option) (meetops.Info, error) {
		if appOf(op) == "app-3" {
			return meetops.Info{}, errors.New("dial tcp: connection refused")
		}
		return meetops.Info{}, nil
	})
	s, err := bulk.Run(context.Background(), bulk.NewJSONL(strings.NewReader(disables(1, 50))), e, bulk.Options{Concurrency: 1, RetryFor: -1})
	require.NoError(t, err)
	require.Equal(t, bulk.Summary{Lines: 3, Enqueued: 2, Failed: 1, FirstFailure: "dial tcp: connection refused"}, s)
}

// Cancelling stops the reading; the enqueue in flight finishes with a
// context that is not cancelled, and the summary says how far it got.
func TestRunInterruptedLetsInFlightFinish(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var callCtxErr error
	e := enqueuerFunc(func(callCtx context.Context, op meetops.Op, _ ...meetops.Option) (meetops.Info, error) {
		if appOf(op) == "app-2" {
			cancel() // Ctrl-C while line 2 is in flight
			callCtxErr = callCtx.Err()
		}
		return meetops.Info{}, nil
	})
	s, err := bulk.Run(ctx, bulk.NewJSONL(strings.NewReader(disables(1, 1000))), e, bulk.Options{Concurrency: 1})
	require.NoError(t, err)
	require.NoError(t, callCtxErr, "an enqueue in flight is not cancelled")
	require.False(t, s.Complete)
	require.Equal(t, 2, s.Enqueued)
	require.Equal(t, 2, s.Lines)
}

func TestValidateReportsInvalidLinesInOrder(t *testing.T) {
	t.Parallel()
	in := disables(1, 2) + "{}\n" + disables(3, 3) + "nope\n"
	var bad []int
	s, err := bulk.Validate(context.Background(), bulk.NewJSONL(strings.NewReader(in)), func(it bulk.Item) { bad = append(bad, it.Line) })
	require.NoError(t, err)
	require.Equal(t, bulk.Summary{Lines: 5, Invalid: 2, Complete: true}, s)
	require.Equal(t, []int{3, 5}, bad)
}

// Against real Redis with the real client: the second run of the same
// input enqueues nothing new.
func TestRunTwiceIsIdempotent(t *testing.T) {
	t.Parallel()
	c, err := meetops.NewClient(redistest.URL(t))
	require.NoError(t, err)
	defer c.Close()
	var in strings.Builder
	for i := range 300 {
		fmt.Fprintf(&in, `{"op":"dismiss","app_id":"demo-app-bulk","room_id":"r-%d"}`+"\n", i)
	}
	fmt.Fprintf(&in, `{"op":"hangup","conference_id":"900000010","participant_ids":["p-002","p-001"]}`+"\n")

	var mu sync.Mutex
	keys := map[string]bool{}
	run := func() bulk.Summary {
		s, err := bulk.Run(context.Background(), bulk.NewJSONL(strings.NewReader(in.String())), c, bulk.Options{
			Concurrency: 16,
			OnResult: func(r bulk.Result) {
				mu.Lock()
				defer mu.Unlock()
				keys[r.Key] = true
			},
		})
		require.NoError(t, err)
		return s
	}
	require.Equal(t, bulk.Summary{Lines: 301, Enqueued: 301, Complete: true}, run())
	require.Equal(t, bulk.Summary{Lines: 301, Duplicates: 301, Complete: true}, run())
	require.Len(t, keys, 301)
	st, err := c.Status(context.Background(), tasks.Key(meetops.HangUp{ConferenceID: "900000010", ParticipantIDs: []string{"p-001", "p-002"}}))
	require.NoError(t, err)
	require.Equal(t, meetops.StatePending, st.State)
}
