package bulk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/bulk"
)

// batchFunc is a BatchEnqueuer answering each request with fn; its
// Enqueue must not be called.
type batchFunc func(ctx context.Context, r meetops.Request) meetops.BatchResult

func (f batchFunc) Enqueue(context.Context, meetops.Op, ...meetops.Option) (meetops.Info, error) {
	panic("Enqueue called on a BatchEnqueuer")
}

func (f batchFunc) EnqueueBatch(ctx context.Context, reqs []meetops.Request, _ ...meetops.BatchOption) []meetops.BatchResult {
	out := make([]meetops.BatchResult, len(reqs))
	for i, r := range reqs {
		out[i] = f(ctx, r)
	}
	return out
}

// batchRecorder records the batches it gets, as the app IDs of their
// Disables, and enqueues everything.
type batchRecorder struct {
	batchFunc
	mu      sync.Mutex
	batches [][]string
}

func newBatchRecorder() *batchRecorder {
	return &batchRecorder{batchFunc: func(_ context.Context, r meetops.Request) meetops.BatchResult {
		return meetops.BatchResult{Info: meetops.Info{Key: "derived-" + appOf(r.Op)}}
	}}
}

func (b *batchRecorder) EnqueueBatch(ctx context.Context, reqs []meetops.Request, _ ...meetops.BatchOption) []meetops.BatchResult {
	var apps []string
	for _, r := range reqs {
		apps = append(apps, appOf(r.Op))
	}
	b.mu.Lock()
	b.batches = append(b.batches, apps)
	b.mu.Unlock()
	return b.batchFunc.EnqueueBatch(ctx, reqs)
}

// sortedResults collects results to sort them by line.
type sortedResults struct {
	mu  sync.Mutex
	all []bulk.Result
}

func (s *sortedResults) add(r bulk.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, r)
}

func (s *sortedResults) byLine() []bulk.Result {
	slices.SortFunc(s.all, func(a, b bulk.Result) int { return a.Line - b.Line })
	return s.all
}

func TestRunBatchesMapsEveryOutcome(t *testing.T) {
	t.Parallel()
	byApp := map[string]meetops.BatchResult{
		"app-1": {Info: meetops.Info{Key: "k1", State: "pending"}},
		"app-2": {Info: meetops.Info{Key: "k2", Duplicate: true}},
		"app-3": {Info: meetops.Info{Key: "k3"}, Err: fmt.Errorf("wrap: %w", meetops.ErrKeyReused)},
		"app-4": {Info: meetops.Info{Key: "k4"}, Err: &meetops.FieldError{Field: "queue", Msg: "bad"}},
		"app-5": {Info: meetops.Info{Key: "derived"}, Err: errors.New("redis down")},
	}
	e := batchFunc(func(_ context.Context, r meetops.Request) meetops.BatchResult { return byApp[appOf(r.Op)] })
	in := disables(1, 2) + `{"op":"disable","app_id":""}` + "\n" + disables(3, 4) + `{"op":"disable","app_id":"app-5"}` + "\n"
	var got sortedResults
	s, err := bulk.Run(context.Background(), bulk.NewJSONL(strings.NewReader(in)), e, bulk.Options{Concurrency: 1, OnResult: got.add, RetryFor: -1})
	require.NoError(t, err)
	require.Equal(t, bulk.Summary{Lines: 6, Enqueued: 1, Duplicates: 1, KeyReused: 1, Invalid: 2, Failed: 1,
		FirstFailure: "redis down", Complete: true}, s, "every line handled, one failed")
	require.Equal(t, []bulk.Result{
		{Line: 1, Key: "k1", Outcome: bulk.Enqueued},
		{Line: 2, Key: "k2", Outcome: bulk.Duplicate},
		{Line: 3, Outcome: bulk.Invalid, Error: "app_id: must not be empty"},
		{Line: 4, Key: "k3", Outcome: bulk.KeyReused, Error: "wrap: idempotency key already used for a different operation"},
		{Line: 5, Key: "k4", Outcome: bulk.Invalid, Error: "queue: bad"},
		{Line: 6, Key: "derived", Outcome: bulk.Failed, Error: "redis down"},
	}, got.byLine(), "a line's own key, else the one the enqueuer derived")
}

// Lines go in batches of at most Batch, valid lines only, in input order
// within a batch.
func TestRunBatchesSendsBatches(t *testing.T) {
	t.Parallel()
	var in strings.Builder
	for i := 1; i <= 95; i++ {
		if i%10 == 0 {
			in.WriteString("{}\n")
			continue
		}
		fmt.Fprintf(&in, `{"op":"disable","app_id":"app-%d"}`+"\n", i)
	}
	e := newBatchRecorder()
	var got sortedResults
	s, err := bulk.Run(context.Background(), bulk.NewJSONL(strings.NewReader(in.String())), e, bulk.Options{Concurrency: 3, Batch: 20, OnResult: got.add})
	require.NoError(t, err)
	require.Equal(t, bulk.Summary{Lines: 95, Enqueued: 86, Invalid: 9, Complete: true}, s)
	var all []string
	for _, b := range e.batches {
		require.LessOrEqual(t, len(b), 20)
		require.True(t, slices.IsSortedFunc(b, func(x, y string) int { return appNum(x) - appNum(y) }), "input order within a batch: %v", b)
		all = append(all, b...)
	}
	require.Len(t, all, 86)
	require.Len(t, e.batches, 5, "95 lines, 20 at a time")
	require.Equal(t, "derived-app-1", got.byLine()[0].Key)
}

func appNum(app string) int {
	var n int
	_, _ = fmt.Sscanf(app, "app-%d", &n)
	return n
}

// Batch 1 turns batching off: every line goes to Enqueue.
func TestRunBatchOfOneUsesEnqueue(t *testing.T) {
	t.Parallel()
	var calls sync.Map
	e := batchBoth{
		one: func(_ context.Context, op meetops.Op, _ ...meetops.Option) (meetops.Info, error) {
			calls.Store(appOf(op), true)
			return meetops.Info{}, nil
		},
		batch: func(context.Context, meetops.Request) meetops.BatchResult { panic("EnqueueBatch called with Batch 1") },
	}
	s, err := bulk.Run(context.Background(), bulk.NewJSONL(strings.NewReader(disables(1, 30))), e, bulk.Options{Concurrency: 4, Batch: 1})
	require.NoError(t, err)
	require.Equal(t, 30, s.Enqueued)
	_, ok := calls.Load("app-30")
	require.True(t, ok)
}

// batchBoth is a BatchEnqueuer made of an Enqueue and an EnqueueBatch.
type batchBoth struct {
	one   enqueuerFunc
	batch batchFunc
}

func (b batchBoth) Enqueue(ctx context.Context, op meetops.Op, opts ...meetops.Option) (meetops.Info, error) {
	return b.one(ctx, op, opts...)
}

func (b batchBoth) EnqueueBatch(ctx context.Context, reqs []meetops.Request, _ ...meetops.BatchOption) []meetops.BatchResult {
	return b.batch.EnqueueBatch(ctx, reqs)
}

// Cancelling stops the reading; the batch in flight finishes with a
// context that is not cancelled, and the summary says how far it got.
func TestRunBatchesInterruptedLetsInFlightFinish(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var callCtxErr error
	e := batchFunc(func(callCtx context.Context, r meetops.Request) meetops.BatchResult {
		if appOf(r.Op) == "app-15" {
			cancel() // Ctrl-C while the second batch is in flight
			callCtxErr = callCtx.Err()
		}
		return meetops.BatchResult{}
	})
	s, err := bulk.Run(ctx, bulk.NewJSONL(strings.NewReader(disables(1, 5000))), e, bulk.Options{Concurrency: 1, Batch: 10})
	require.NoError(t, err)
	require.NoError(t, callCtxErr, "a batch in flight is not cancelled")
	require.False(t, s.Complete)
	require.Equal(t, bulk.Summary{Lines: 20, Enqueued: 20}, s)
}

// The first failure stops the run after its batch.
func TestRunBatchesStopAtTheFirstFailure(t *testing.T) {
	t.Parallel()
	e := batchFunc(func(_ context.Context, r meetops.Request) meetops.BatchResult {
		if appOf(r.Op) == "app-13" {
			return meetops.BatchResult{Err: errors.New("dial tcp: connection refused")}
		}
		return meetops.BatchResult{}
	})
	s, err := bulk.Run(context.Background(), bulk.NewJSONL(strings.NewReader(disables(1, 500))), e, bulk.Options{Concurrency: 1, Batch: 10, RetryFor: -1})
	require.NoError(t, err)
	require.Equal(t, bulk.Summary{Lines: 20, Enqueued: 19, Failed: 1, FirstFailure: "dial tcp: connection refused"}, s)
}

// A fatal read error ends the run with what was done before it.
func TestRunBatchesReadError(t *testing.T) {
	t.Parallel()
	r := io.MultiReader(strings.NewReader(disables(1, 3)), errReader{errors.New("disk on fire")})
	s, err := bulk.Run(context.Background(), bulk.NewJSONL(r), newBatchRecorder(), bulk.Options{Concurrency: 2})
	require.EqualError(t, err, "disk on fire")
	require.Equal(t, bulk.Summary{Lines: 3, Enqueued: 3}, s)

	r = io.MultiReader(strings.NewReader(disables(1, 3)), errReader{errors.New("disk on fire")})
	v, err := bulk.Validate(context.Background(), bulk.NewJSONL(r), nil)
	require.EqualError(t, err, "disk on fire")
	require.Equal(t, bulk.Summary{Lines: 3}, v)
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// Validation parses in parallel yet reports every bad line in input order,
// across many chunks, a too-long line included.
func TestValidateLargeInputInOrder(t *testing.T) {
	t.Parallel()
	var in strings.Builder
	var want []int
	for i := 1; i <= 20_000; i++ {
		switch {
		case i == 12_345:
			in.WriteString(`{"op":"disable","app_id":"` + strings.Repeat("a", bulk.MaxLineBytes) + `"}` + "\n")
			want = append(want, i)
		case i%7 == 0:
			fmt.Fprintf(&in, `{"op":"disable","app_id":"app-%d","colour":"red"}`+"\n", i)
			want = append(want, i)
		default:
			fmt.Fprintf(&in, `{"op":"disable","app_id":"app-%d"}`+"\n", i)
		}
	}
	var got []int
	s, err := bulk.Validate(context.Background(), bulk.NewJSONL(strings.NewReader(in.String())), func(it bulk.Item) {
		got = append(got, it.Line)
		require.ErrorIs(t, it.Err, meetops.ErrInvalid)
	})
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, bulk.Summary{Lines: 20_000, Invalid: len(want), Complete: true}, s)
}

// A Redis outage (restart, failover) is ridden out: failed enqueues are
// retried with backoff and the run completes without stopping.
func TestRunRetriesFailedEnqueuesThroughAnOutage(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{1, 10} {
		var mu sync.Mutex
		failures := 0
		answer := func(op meetops.Op) error {
			mu.Lock()
			defer mu.Unlock()
			if appOf(op) == "app-7" && failures < 3 { // down for three tries
				failures++
				return errors.New("dial tcp: connection refused")
			}
			return nil
		}
		e := batchBoth{
			one: func(_ context.Context, op meetops.Op, _ ...meetops.Option) (meetops.Info, error) {
				return meetops.Info{}, answer(op)
			},
			batch: func(_ context.Context, r meetops.Request) meetops.BatchResult {
				return meetops.BatchResult{Err: answer(r.Op)}
			},
		}
		s, err := bulk.Run(context.Background(), bulk.NewJSONL(strings.NewReader(disables(1, 30))), e,
			bulk.Options{Concurrency: 2, Batch: batch, RetryFor: 10 * time.Second})
		require.NoError(t, err)
		require.Equal(t, bulk.Summary{Lines: 30, Enqueued: 30, Complete: true}, s, "batch %d", batch)
		require.Equal(t, 3, failures)
	}
}
