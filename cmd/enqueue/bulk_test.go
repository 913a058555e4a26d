package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/bulk"
)

func TestBulkGolden(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"testdata/bulk/ops.jsonl", "testdata/bulk/ops.csv"} {
		t.Run(filepath.Ext(file), func(t *testing.T) {
			t.Parallel()
			var results []result
			for _, args := range [][]string{{"bulk", file}, {"bulk", file, "-o", "json"}} {
				b := setup(t) // first run enqueues, the second finds duplicates
				for range 2 {
					r := b.run(t, args...)
					requireCode(t, r, exitOK)
					results = append(results, r)
				}
			}
			golden(t, "bulk-"+filepath.Ext(file)[1:], results...)
		})
	}
}

// CSV lists are ';'-separated and end up as the same canonical payload as
// from flags.
func TestBulkCSVListsAndOptions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	requireCode(t, b.run(t, "bulk", "testdata/bulk/ops.csv"), exitOK)

	flags := b.run(t, "hangup", "--conference-id", "900000010", "--participant-ids", "p-003,p-002,p-001", "-o", "json")
	requireCode(t, flags, exitOK)
	require.Contains(t, flags.stdout, `"duplicate":true`, "the CSV line enqueued the same operation")

	ti, err := b.insp.GetTaskInfo("default", "bob-vmrs")
	require.NoError(t, err)
	require.JSONEq(t, `{"account":"tp-user-bob","account_type":1,"vmr_ids":["vmr-bob-1","vmr-bob-2"]}`, string(ti.Payload))
	crit, err := b.insp.GetQueueInfo("critical")
	require.NoError(t, err)
	require.Equal(t, 1, crit.Size)
	sched, err := b.insp.ListScheduledTasks("default")
	require.NoError(t, err)
	require.Len(t, sched, 1)
	require.Equal(t, "2030-01-06T18:00:00Z", sched[0].NextProcessAt.UTC().Format("2006-01-02T15:04:05Z07:00"))
}

func TestBulkBadLinesEnqueueNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	text := b.run(t, "bulk", "testdata/bulk/bad.jsonl")
	requireCode(t, text, exitUsage)
	requireEmpty(t, b)
	dry := b.run(t, "bulk", "testdata/bulk/bad.jsonl", "--dry-run", "-o", "json")
	requireCode(t, dry, exitUsage)
	header := b.run(t, "bulk", "testdata/bulk/badheader.csv")
	requireCode(t, header, exitUsage)
	requireEmpty(t, b)
	golden(t, "bulk-bad", text, dry, header)
}

func requireEmpty(t *testing.T, b *testBundle) {
	t.Helper()
	require.Zero(t, b.dbSize(t), "nothing enqueued")
}

func TestBulkSkipInvalidWithReport(t *testing.T) {
	t.Parallel()
	b := setup(t)
	report := filepath.Join(t.TempDir(), "report.jsonl")
	r := b.run(t, "bulk", "testdata/bulk/bad.jsonl", "--skip-invalid", "--report", report)
	requireCode(t, r, exitOK)
	require.Equal(t, "LINES  ENQUEUED  DUPLICATES  INVALID  FAILED  KEY_REUSED\n8/8    2         0           6        0       0\n"+
		"batch b_<id> (enqueue batch status b_<id>)\n", batchID.ReplaceAllString(r.stdout, "b_<id>"))
	require.Equal(t, 6, strings.Count(r.stderr, "testdata/bulk/bad.jsonl:"), "every bad line is still named")

	lines := readReport(t, report)
	require.Len(t, lines, 8, "one report line per input line")
	outcomes := map[int]bulk.Outcome{}
	for _, l := range lines {
		outcomes[l.Line] = l.Outcome
	}
	require.Equal(t, map[int]bulk.Outcome{1: bulk.Enqueued, 2: bulk.Invalid, 3: bulk.Invalid, 4: bulk.Invalid,
		5: bulk.Invalid, 6: bulk.Invalid, 7: bulk.Invalid, 8: bulk.Enqueued}, outcomes)
	require.True(t, strings.HasPrefix(lines[0].Key, "dismiss:"), "valid lines carry their key")
	require.Empty(t, lines[1].Key, "an invalid line has none")
	require.Equal(t, "op: unknown operation \"explode\" (want one of dismiss, disable, cancel, hangup, reclaim)", lines[2].Error)

	again := b.run(t, "bulk", "testdata/bulk/bad.jsonl", "--skip-invalid")
	requireCode(t, again, exitOK)
	require.Contains(t, again.stdout, "8/8    0         2           6")
}

// readReport returns the report's lines sorted by input line.
func readReport(t *testing.T, path string) []bulk.Result {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []bulk.Result
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r bulk.Result
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), sc.Text())
		out = append(out, r)
	}
	require.NoError(t, sc.Err())
	slices.SortFunc(out, func(a, b bulk.Result) int { return a.Line - b.Line })
	return out
}

func TestBulkReportOfAnAbortedRunListsTheInvalidLines(t *testing.T) {
	t.Parallel()
	b := setup(t)
	report := filepath.Join(t.TempDir(), "report.jsonl")
	requireCode(t, b.run(t, "bulk", "testdata/bulk/bad.jsonl", "--report", report), exitUsage)
	lines := readReport(t, report)
	require.Len(t, lines, 6)
	for _, l := range lines {
		require.Equal(t, bulk.Invalid, l.Outcome)
	}
}

func TestBulkFromStdin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in, err := os.ReadFile("testdata/bulk/ops.jsonl")
	require.NoError(t, err)
	r := b.runWith(t, invocation{stdin: string(in)}, "bulk", "-", "-o", "json")
	requireCode(t, r, exitOK)
	require.JSONEq(t, `{"file":"-","total":7,"valid":7,"lines":7,"enqueued":7,"duplicates":0,"invalid":0,"failed":0,"key_reused":0,"complete":true,"batch_id":"b_<id>",`+
		`"unserved_queues":["default","critical"]}`,
		batchID.ReplaceAllString(r.stdout, "b_<id>"), "stdout is the JSON alone; the warning is on stderr")

	csv, err := os.ReadFile("testdata/bulk/ops.csv")
	require.NoError(t, err)
	r = b.runWith(t, invocation{stdin: string(csv) + "hangup,,,900000010,,,p-1;;p-2,,,,,,,\n"}, "bulk", "-", "--format", "csv")
	requireCode(t, r, exitUsage)
	require.Equal(t, "-:9: participant_ids[1]: must not be empty\n"+
		"enqueue: -: 1 invalid line; nothing enqueued (fix them, or pass --skip-invalid to enqueue the valid lines)\n", r.stderr)
}

func TestBulkKeyReusedExits3(t *testing.T) {
	t.Parallel()
	b := setup(t)
	requireCode(t, b.run(t, "disable", "--app-id", "other", "--key", "offboarding-4711", "--queue", "critical"), exitOK)
	r := b.run(t, "bulk", "testdata/bulk/ops.jsonl")
	requireCode(t, r, exitKeyReused)
	require.Contains(t, r.stdout, "7/7    6         0           0        0       1")
	require.Equal(t, `enqueue: warning: no running worker serves queues "default", "critical" (no worker is running); their tasks wait until workers serving them start`+"\n"+
		"enqueue: 1 line reused a key already taken by another operation\n", r.stderr)
}

func TestBulkDryRunEnqueuesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	text := b.run(t, "bulk", "testdata/bulk/ops.csv", "--dry-run")
	requireCode(t, text, exitOK)
	json := b.run(t, "bulk", "testdata/bulk/ops.jsonl", "--dry-run", "-o", "json")
	requireCode(t, json, exitOK)
	skip := b.run(t, "bulk", "testdata/bulk/bad.jsonl", "--dry-run", "--skip-invalid")
	requireCode(t, skip, exitOK)
	requireEmpty(t, b)
	golden(t, "bulk-dry-run", text, json, skip)
}

// A dry run validates without Redis at all.
func TestBulkDryRunNeedsNoRedis(t *testing.T) {
	t.Parallel()
	r := runEnqueue(t, invocation{}, "--redis-url", "redis://"+closedPort(t)+"/0", "bulk", "testdata/bulk/ops.jsonl", "--dry-run")
	requireCode(t, r, exitOK)
}

func TestBulkUsageAndInputErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	txt := writeFile(t, "ops.txt", "{}\n")
	huge := writeFile(t, "huge.csv", "op,app_id\ndisable,a\ndisable,"+strings.Repeat("x", 2<<20)+"\n")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown extension", []string{"bulk", txt}, exitUsage, "cannot tell the format of " + txt + " from its extension: pass --format jsonl or --format csv"},
		{"unknown format", []string{"bulk", txt, "--format", "xml"}, exitUsage, `unknown format "xml" (want jsonl or csv)`},
		{"no file", []string{"bulk"}, exitUsage, "accepts 1 arg(s), received 0"},
		{"bad concurrency", []string{"bulk", "testdata/bulk/ops.jsonl", "--concurrency", "0"}, exitUsage, "--concurrency must be at least 1, got 0"},
		{"bad batch", []string{"bulk", "testdata/bulk/ops.jsonl", "--batch", "0"}, exitUsage, "--batch must be at least 1, got 0"},
		{"missing file", []string{"bulk", "testdata/bulk/nope.jsonl"}, exitFailure, "stat testdata/bulk/nope.jsonl: no such file or directory"},
		{"directory", []string{"bulk", "testdata/bulk", "--format", "jsonl"}, exitFailure, "testdata/bulk is a directory"},
		{"CSV record over 1 MiB", []string{"bulk", huge}, exitUsage, huge + ":3: CSV record longer than 1048576 bytes; nothing enqueued"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := b.run(t, tc.args...)
			requireCode(t, r, tc.code)
			require.Contains(t, r.stderr, tc.stderr)
		})
	}
}

// An interrupt during validation enqueues nothing and says so.
func TestBulkInterruptedBeforeEnqueueing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := b.runWith(t, invocation{ctx: ctx}, "bulk", "testdata/bulk/ops.jsonl")
	requireCode(t, r, exitFailure)
	require.Equal(t, "enqueue: testdata/bulk/ops.jsonl: interrupted while validating line 1; nothing enqueued\n", r.stderr)
	requireEmpty(t, b)
}

// The bulk file's scheduled line really is scheduled.
func TestBulkScheduledLine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	requireCode(t, b.run(t, "bulk", "testdata/bulk/ops.jsonl"), exitOK)
	sched, err := b.insp.ListScheduledTasks("default")
	require.NoError(t, err)
	require.Len(t, sched, 1)
	require.Equal(t, asynq.TaskStateScheduled, sched[0].State)
}

// The example files shipped for `worker -dev` stay valid as validation
// evolves, and hold at least 100 operations.
func TestShippedExamplesAreValid(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"../../examples/ops.jsonl", "../../examples/ops.csv"} {
		r := runEnqueue(t, invocation{}, "bulk", file, "--dry-run", "-o", "json")
		requireCode(t, r, exitOK)
		var s bulkSummary
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &s))
		require.Zero(t, s.Invalid, file)
		if strings.HasSuffix(file, ".jsonl") {
			require.GreaterOrEqual(t, s.Total, 100, file)
		}
	}
}

// On a terminal a progress bar goes to stderr; the summary is the same.
func TestBulkProgressBarOnATerminal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.runWith(t, invocation{terminal: true}, "bulk", "testdata/bulk/ops.jsonl")
	requireCode(t, r, exitOK)
	require.Equal(t, "LINES  ENQUEUED  DUPLICATES  INVALID  FAILED  KEY_REUSED\n7/7    7         0           0        0       0\n"+
		"batch b_<id> (enqueue batch status b_<id>)\n", batchID.ReplaceAllString(r.stdout, "b_<id>"))
	require.Contains(t, r.stderr, "enqueue")
}

// Ctrl-C in the middle of a run stops it cleanly: the summary says how far
// it got, exit 1, and running the same input again enqueues the rest.
func TestBulkInterruptedThenRerun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var in strings.Builder
	const lines = 5000
	for i := range lines {
		fmt.Fprintf(&in, `{"op":"dismiss","app_id":"demo-app-bulk","room_id":"r-%d"}`+"\n", i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // press Ctrl-C once 100 lines are in
		defer cancel()
		for ctx.Err() == nil {
			if q, err := b.insp.GetQueueInfo("default"); err == nil && q.Pending >= 100 {
				return
			}
		}
	}()
	r := b.runWith(t, invocation{ctx: ctx, stdin: in.String()}, "bulk", "-", "--concurrency", "1", "-o", "json")
	requireCode(t, r, exitFailure)
	var first bulkSummary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &first))
	require.True(t, first.Interrupted)
	require.False(t, first.Complete)
	require.Less(t, first.Enqueued, lines)
	require.Equal(t, first.Lines, first.Enqueued)
	require.Contains(t, r.stderr, fmt.Sprintf("enqueue: interrupted after %d of %d lines; run the same command again", first.Lines, lines))

	r = b.runWith(t, invocation{stdin: in.String()}, "bulk", "-", "-o", "json")
	requireCode(t, r, exitOK)
	var second bulkSummary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &second))
	require.Equal(t, first.Enqueued, second.Duplicates)
	require.Equal(t, lines-first.Enqueued, second.Enqueued)
	q, err := b.insp.GetQueueInfo("default")
	require.NoError(t, err)
	require.Equal(t, lines, q.Pending)
}

// Pipelined batches (the default) and a round trip per line (--batch 1)
// enqueue the same tasks and report the same way: each run finds the
// other's tasks as duplicates.
func TestBulkBatchOfOneAgrees(t *testing.T) {
	t.Parallel()
	b := setup(t)
	one := b.run(t, "bulk", "testdata/bulk/ops.jsonl", "--batch", "1")
	requireCode(t, one, exitOK)
	require.Contains(t, one.stdout, "7/7    7         0")
	batched := b.run(t, "bulk", "testdata/bulk/ops.jsonl", "--batch", "3", "--concurrency", "2")
	requireCode(t, batched, exitOK)
	require.Contains(t, batched.stdout, "7/7    0         7")
}

// ENQUEUE_CPUPROFILE writes a CPU profile of the run.
func TestBulkCPUProfile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	path := filepath.Join(t.TempDir(), "cpu.prof")
	r := b.runWith(t, invocation{env: map[string]string{cpuProfileEnv: path}}, "bulk", "testdata/bulk/ops.jsonl")
	requireCode(t, r, exitOK)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.NotZero(t, fi.Size())
}
