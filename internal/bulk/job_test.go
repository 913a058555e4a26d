package bulk_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/bulk"
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
