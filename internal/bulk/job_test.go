package bulk_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/bulk"
	"github.com/meetops/meetops/internal/tasks"
)

// jobInput writes content to a file and opens it as a bulk input.
func jobInput(t *testing.T, name, content string) *bulk.Input {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	f, err := bulk.FormatFor(path, "")
	require.NoError(t, err)
	in, err := bulk.OpenInput(context.Background(), path, f, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = in.Close() })
	return in
}

// countingEnqueuer accepts every operation and counts them.
func countingEnqueuer(n *int) bulk.Enqueuer {
	return enqueuerFunc(func(context.Context, meetops.Op, ...meetops.Option) (meetops.Info, error) {
		*n++
		return meetops.Info{State: meetops.StatePending}, nil
	})
}

func TestJobValidatesEverythingBeforeEnqueueing(t *testing.T) {
	t.Parallel()
	content := disables(1, 2) + `{"op":"disable","app_id":""}` + "\n" + disables(3, 3)
	for _, tc := range []struct {
		name               string
		dryRun, skip       bool
		wantErr            error
		wantEnqueued       int
		wantConnect        bool
		wantInvalidReports int
	}{
		{name: "invalid line refuses the whole input", wantErr: bulk.ErrInvalidLines, wantInvalidReports: 1},
		{name: "dry run connects to nothing", dryRun: true, wantInvalidReports: 1},
		{name: "skip invalid enqueues the rest", skip: true, wantEnqueued: 3, wantConnect: true, wantInvalidReports: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var enqueued, invalid int
			var validated bulk.Summary
			connected := false
			job := bulk.Job{
				Input: jobInput(t, "ops.jsonl", content), DryRun: tc.dryRun, SkipInvalid: tc.skip,
				OnInvalid:   func(it bulk.Item) { invalid++; require.Equal(t, 3, it.Line) },
				OnValidated: func(s bulk.Summary) { validated = s },
				Options:     bulk.Options{Concurrency: 1, Batch: 1},
			}
			rep, err := job.Run(context.Background(), func(context.Context) (bulk.Enqueuer, error) {
				connected = true
				return countingEnqueuer(&enqueued), nil
			})
			require.ErrorIs(t, err, tc.wantErr)
			require.Equal(t, tc.wantConnect, connected)
			require.Equal(t, tc.wantEnqueued, enqueued)
			require.Equal(t, tc.wantInvalidReports, invalid)
			require.Equal(t, 4, rep.Checked.Lines)
			require.Equal(t, 1, rep.Checked.Invalid)
			require.Equal(t, tc.wantConnect, rep.Enqueueing)
			if tc.wantConnect {
				require.Equal(t, rep.Checked, validated, "told before enqueueing")
				require.Equal(t, bulk.Summary{Lines: 4, Enqueued: 3, Invalid: 1, Complete: true}, rep.Summary)
			}
		})
	}
}

func TestJobValidationErrors(t *testing.T) {
	t.Parallel()
	never := func(context.Context) (bulk.Enqueuer, error) {
		t.Error("connected despite a failed validation")
		return nil, errors.New("no")
	}
	job := bulk.Job{Input: jobInput(t, "ops.csv", "op,nonsense\ndisable,x\n")}
	_, err := job.Run(context.Background(), never)
	var ve *bulk.ValidationError
	require.ErrorAs(t, err, &ve)
	var he *bulk.HeaderError
	require.ErrorAs(t, err, &he, "a bad CSV header")
	require.Contains(t, he.Msg, "nonsense")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	job = bulk.Job{Input: jobInput(t, "ops.jsonl", strings.Repeat(disables(1, 1), 10))}
	_, err = job.Run(ctx, never)
	require.ErrorAs(t, err, &ve)
	require.ErrorIs(t, err, context.Canceled)

	job = bulk.Job{Input: jobInput(t, "ops.jsonl", disables(1, 1))}
	_, err = job.Run(context.Background(), func(context.Context) (bulk.Enqueuer, error) { return nil, errors.New("redis down") })
	require.EqualError(t, err, "redis down", "connect's error as it is")
}

// CheckQueues is told the valid lines' distinct queues, "default" for a
// line without one, in the order they appear, after connecting and before
// anything is enqueued; its error ends the run with nothing enqueued. A
// dry run and a refused input never call it.
func TestJobChecksQueuesBeforeEnqueueing(t *testing.T) {
	t.Parallel()
	content := `{"op":"disable","app_id":"a1","queue":"low"}` + "\n" +
		`{"op":"disable","app_id":"a2"}` + "\n" +
		`{"op":"disable","app_id":"","queue":"invalid-line"}` + "\n" +
		`{"op":"disable","app_id":"a3","queue":"low"}` + "\n" +
		`{"op":"disable","app_id":"a4","queue":"critical"}` + "\n"
	refusal := errors.New("refused")
	for _, tc := range []struct {
		name         string
		dryRun, skip bool
		answer       error
		wantCalled   bool
		wantEnqueued int
	}{
		{name: "refused input"},
		{name: "dry run", dryRun: true, skip: true},
		{name: "served", skip: true, wantCalled: true, wantEnqueued: 4},
		{name: "refused queues", skip: true, answer: refusal, wantCalled: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			enqueued := 0
			var got *bulk.QueueSet
			job := bulk.Job{
				Input: jobInput(t, "ops.jsonl", content), DryRun: tc.dryRun, SkipInvalid: tc.skip,
				Options: bulk.Options{Concurrency: 1, Batch: 1},
				CheckQueues: func(_ context.Context, e bulk.Enqueuer, q bulk.QueueSet) error {
					require.NotNil(t, e, "after connecting")
					require.Zero(t, enqueued, "before enqueueing")
					got = &q
					return tc.answer
				},
			}
			_, err := job.Run(context.Background(), func(context.Context) (bulk.Enqueuer, error) {
				return countingEnqueuer(&enqueued), nil
			})
			if tc.answer != nil {
				require.ErrorIs(t, err, tc.answer)
			}
			require.Equal(t, tc.wantEnqueued, enqueued)
			if !tc.wantCalled {
				require.Nil(t, got)
				return
			}
			require.Equal(t, &bulk.QueueSet{Names: []string{"low", "default", "critical"}}, got)
		})
	}
}

// The queues collected are bounded: past MaxCheckedQueues, More says so.
func TestJobQueueSetIsBounded(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range bulk.MaxCheckedQueues + 5 {
		fmt.Fprintf(&b, `{"op":"disable","app_id":"a%d","queue":"q%d"}`+"\n", i, i)
	}
	var got bulk.QueueSet
	job := bulk.Job{
		Input:       jobInput(t, "ops.jsonl", b.String()),
		Options:     bulk.Options{Concurrency: 1, Batch: 1},
		CheckQueues: func(_ context.Context, _ bulk.Enqueuer, q bulk.QueueSet) error { got = q; return errors.New("stop") },
	}
	n := 0
	_, err := job.Run(context.Background(), func(context.Context) (bulk.Enqueuer, error) { return countingEnqueuer(&n), nil })
	require.Error(t, err)
	require.True(t, got.More)
	require.Len(t, got.Names, bulk.MaxCheckedQueues)
	require.Equal(t, "q0", got.Names[0])
	require.Equal(t, fmt.Sprintf("q%d", bulk.MaxCheckedQueues-1), got.Names[bulk.MaxCheckedQueues-1])
}

// Options.RequireServedQueue adds meetops.RequireServedQueue to every
// line's enqueue, line by line and in batches.
func TestRunRequireServedQueue(t *testing.T) {
	t.Parallel()
	required := func(opts []meetops.Option) bool {
		var to tasks.TaskOptions
		for _, o := range opts {
			require.NoError(t, o(&to))
		}
		return to.RequireServedQueue
	}
	for _, requireServed := range []bool{false, true} {
		var mu sync.Mutex
		seen := map[bool]int{}
		one := enqueuerFunc(func(_ context.Context, _ meetops.Op, opts ...meetops.Option) (meetops.Info, error) {
			mu.Lock()
			defer mu.Unlock()
			seen[required(opts)]++
			return meetops.Info{}, nil
		})
		batched := batchFunc(func(_ context.Context, r meetops.Request) meetops.BatchResult {
			mu.Lock()
			defer mu.Unlock()
			seen[required(r.Opts)]++
			return meetops.BatchResult{}
		})
		for _, e := range []bulk.Enqueuer{one, batched} {
			_, err := bulk.Run(context.Background(), bulk.NewJSONL(strings.NewReader(disables(1, 5))), e,
				bulk.Options{RequireServedQueue: requireServed})
			require.NoError(t, err)
		}
		require.Equal(t, map[bool]int{requireServed: 10}, seen)
	}
}
