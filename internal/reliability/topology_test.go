package reliability_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/bulk"
	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/reliability"
	"github.com/meetops/meetops/internal/tasks"
)

// The suite on every topology. Each scenario that runs on one redis-server
// elsewhere in this package runs again here, through the built binaries, on
// a real Redis Cluster (three primaries with a replica each) and on a real
// Sentinel-managed primary (one replica, three sentinels), with the same
// assertions: every task completes (or dead-letters, where it must) and no
// upstream effect happens twice. Each topology is the package's shared one;
// its scenarios run one after another (a cluster has only database 0), each
// on an emptied topology, while the two topologies run in parallel.

// suiteSimArgs are the simulator arguments of every rig of the suites: a
// request log long enough for the rate-limit check.
var suiteSimArgs = []string{"-log-size", "1000"}

// TestSuiteOnCluster runs the suite with every process on Redis Cluster
// (REDIS_CLUSTER_ADDRS only).
func TestSuiteOnCluster(t *testing.T) {
	t.Parallel()
	c := redistest.SharedCluster(t)
	runSuite(t, "10 suite on Redis Cluster (3 primaries + 3 replicas)", func(t *testing.T) *proctest.Rig {
		return proctest.NewClusterRig(t, c, suiteSimArgs...)
	})
}

// TestSuiteOnSentinel runs the suite with every process on a
// Sentinel-managed primary (REDIS_SENTINEL_ADDRS and REDIS_SENTINEL_MASTER
// only).
func TestSuiteOnSentinel(t *testing.T) {
	t.Parallel()
	x := redistest.SharedSentinel(t)
	runSuite(t, "11 suite on Sentinel (1 primary, 1 replica, 3 sentinels)", func(t *testing.T) *proctest.Rig {
		return proctest.NewSentinelRig(t, x, suiteSimArgs...)
	})
}

// suiteStep is one scenario of the suite: it runs on a fresh rig and fills
// row's counts and note before it asserts.
type suiteStep struct {
	name string
	run  func(t *testing.T, r *proctest.Rig, row *reliability.Row)
}

var suiteSteps = []suiteStep{
	{"five operations through the CLI", cliFiveOperations},
	{"bulk 10000 and a rerun", bulkWithRerun},
	{"dedup and key reuse", dedupAndKeyReuse},
	{"dead letters list show requeue purge", deadLetterCommands},
	{"two workers share the rate limit", twoWorkersShareTheRateLimit},
	{"worker killed mid-batch", workerKilledMidBatch},
}

// runSuite runs every suite step as a subtest, one after another, each on
// a rig from newRig, and adds up their figures in the topology's row.
func runSuite(t *testing.T, scenario string, newRig func(t *testing.T) *proctest.Rig) {
	row := report(t, scenario)
	var notes []string
	for _, s := range suiteSteps {
		var sub reliability.Row
		ok := t.Run(s.name, func(t *testing.T) { s.run(t, newRig(t), &sub) })
		row.Tasks += sub.Tasks
		row.Lost += sub.Lost
		row.Duplicated += sub.Duplicated
		row.UpstreamCalls += sub.UpstreamCalls
		note := sub.Note
		if !ok {
			note = s.name + " FAILED"
		}
		if note != "" {
			notes = append(notes, note)
		}
	}
	row.Note = strings.Join(notes, "; ")
}

// cliFiveOperations is fiveOperations with every task enqueued by the
// enqueue CLI (one command per operation), then read back with `enqueue
// status`.
func cliFiveOperations(t *testing.T, r *proctest.Rig, row *reliability.Row) {
	var keys []string
	fiveOperations(t, r, func(ops []tasks.Op) []string {
		for _, op := range ops {
			info := cliInfo(t, r.RunCLI(t, nil, append(opArgs(t, op), "-o", "json")...))
			require.False(t, info.Duplicate, "%s: a first enqueue", op.Name())
			require.Equal(t, keyOf(t, op), info.Key, "the CLI derives the key the Go package does")
			keys = append(keys, info.Key)
		}
		return keys
	}, row)
	for _, k := range keys {
		res := r.RunCLI(t, nil, "status", k, "-o", "json")
		require.Zero(t, res.Code, "status %s: %s", k, res.Stderr)
		var st struct {
			State string `json:"state"`
		}
		require.NoError(t, json.Unmarshal([]byte(res.Stdout), &st), res.Stdout)
		require.Equal(t, "completed", st.State, "status %s", k)
	}
	row.Note = "5 ops via the CLI"
}

// opArgs are the enqueue CLI arguments that enqueue op.
func opArgs(t *testing.T, op tasks.Op) []string {
	t.Helper()
	switch o := op.(type) {
	case tasks.Dismiss:
		return []string{"dismiss", "--app-id", o.AppID, "--room-id", o.RoomID}
	case tasks.Disable:
		return []string{"disable", "--app-id", o.AppID}
	case tasks.Cancel:
		return []string{"cancel", "--conference-id", o.ConferenceID}
	case tasks.HangUp:
		return []string{"hangup", "--conference-id", o.ConferenceID, "--participant-ids", strings.Join(o.ParticipantIDs, ",")}
	case tasks.Reclaim:
		return []string{"reclaim", "--account", o.Account, "--vmr-ids", strings.Join(o.VMRIDs, ",")}
	}
	t.Fatalf("no CLI arguments for %T", op)
	return nil
}

// enqueued is what `enqueue <op> -o json` prints.
type enqueued struct {
	Key       string `json:"key"`
	Queue     string `json:"queue"`
	State     string `json:"state"`
	Duplicate bool   `json:"duplicate"`
}

// cliInfo decodes the answer of a successful `enqueue <op> -o json`.
func cliInfo(t *testing.T, res proctest.CLIResult) enqueued {
	t.Helper()
	require.Zero(t, res.Code, "enqueue %q: %s", res.Args, res.Stderr)
	var info enqueued
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &info), "enqueue %q printed %q", res.Args, res.Stdout)
	return info
}

// bulkSummary is the part of `enqueue bulk -o json`'s summary the suite
// checks.
type bulkSummary struct {
	Lines      int  `json:"lines"`
	Enqueued   int  `json:"enqueued"`
	Duplicates int  `json:"duplicates"`
	Failed     int  `json:"failed"`
	Complete   bool `json:"complete"`
}

// bulkRun decodes the summary of a finished `enqueue bulk -o json`.
func bulkRun(t *testing.T, res proctest.CLIResult) bulkSummary {
	t.Helper()
	var s bulkSummary
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &s), "bulk printed %q (stderr %q)", res.Stdout, res.Stderr)
	return s
}

// dismissalsFile writes ops (dismissals) as a JSONL file for `enqueue
// bulk` and returns its path.
func dismissalsFile(t *testing.T, ops []tasks.Op) string {
	t.Helper()
	var b strings.Builder
	for _, op := range ops {
		d := op.(tasks.Dismiss)
		fmt.Fprintf(&b, `{"op":"dismiss","app_id":%q,"room_id":%q}`+"\n", d.AppID, d.RoomID)
	}
	file := filepath.Join(t.TempDir(), "ops.jsonl")
	require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o600))
	return file
}

// readBulkReport reads a `enqueue bulk --report` file: one result per line.
func readBulkReport(t *testing.T, path string) []bulk.Result {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []bulk.Result
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r bulk.Result
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "report line %q", sc.Text())
		out = append(out, r)
	}
	require.NoError(t, sc.Err())
	return out
}

// bulkWithRerun: `enqueue bulk` enqueues 10,000 dismissals while two
// workers drain them, a rerun of the same file enqueues nothing (every
// line a duplicate), and every room is dismissed exactly once.
func bulkWithRerun(t *testing.T, r *proctest.Rig, row *reliability.Row) {
	const n = 10_000
	env := r.WorkerEnv("RATELIMIT_RTC_ROOMS=off", "LOG_LEVEL=warn")
	proctest.StartWorker(t, env)
	proctest.StartWorker(t, env)
	ops, effectKeys := proctest.Dismissals("bulk", n)
	file := dismissalsFile(t, ops)
	report := filepath.Join(t.TempDir(), "report.jsonl")

	first := r.RunCLI(t, nil, "bulk", file, "-o", "json", "--report", report)
	require.Zero(t, first.Code, "bulk: %s", first.Stderr)
	s := bulkRun(t, first)
	require.Equal(t, bulkSummary{Lines: n, Enqueued: n, Complete: true}, s)
	rerun := r.RunCLI(t, nil, "bulk", file, "-o", "json")
	require.Zero(t, rerun.Code, "rerun: %s", rerun.Stderr)
	require.Equal(t, bulkSummary{Lines: n, Duplicates: n, Complete: true}, bulkRun(t, rerun), "a rerun enqueues nothing")

	var keys []string
	for _, res := range readBulkReport(t, report) {
		require.Equal(t, bulk.Enqueued, res.Outcome, "line %d", res.Line)
		keys = append(keys, res.Key)
	}
	require.Len(t, keys, n)
	r.WaitSettled(t, n, 3*time.Minute)
	lost, _ := proctest.Tally(t, r.Infos(t, keys))
	st := r.Sim.Stats(t)
	missing, dup, extra := proctest.Effects(t, st, "dismiss:", effectKeys)
	row.Tasks, row.Lost, row.Duplicated, row.UpstreamCalls = n, lost+missing, dup+extra, proctest.Calls(st)
	row.Note = fmt.Sprintf("bulk %d + rerun (%d duplicates)", n, n)
	require.Zero(t, lost+missing, "lost tasks")
	require.Zero(t, dup+extra, "duplicate effects")
}

// dedupAndKeyReuse: the same operation enqueued again (before it ran and
// after it completed) is a reported duplicate; a key taken by another
// operation is refused with exit code 3, derived or the caller's own; each
// operation takes effect once and a refused one never.
func dedupAndKeyReuse(t *testing.T, r *proctest.Rig, row *reliability.Row) {
	proctest.StartWorker(t, r.WorkerEnv("RATELIMIT_RTC_ROOMS=off", "LOG_LEVEL=warn"))
	dismiss := []string{"dismiss", "--app-id", "demo-app-bulk", "--room-id", "dedup-1", "-o", "json"}
	cancel := []string{"cancel", "--conference-id", "900000001", "--key", "dedup-own-key", "-o", "json"}

	first := cliInfo(t, r.RunCLI(t, nil, dismiss...))
	require.False(t, first.Duplicate)
	again := cliInfo(t, r.RunCLI(t, nil, dismiss...))
	require.True(t, again.Duplicate, "the same operation again is a duplicate")
	require.Equal(t, first.Key, again.Key)
	reused := r.RunCLI(t, nil, "disable", "--app-id", "demo-app-2", "--key", first.Key)
	require.Equal(t, 3, reused.Code, "a derived key used for another operation: %s", reused.Stderr)
	require.Contains(t, reused.Stderr, "already used for a different operation")

	own := cliInfo(t, r.RunCLI(t, nil, cancel...))
	require.Equal(t, "dedup-own-key", own.Key)
	require.True(t, cliInfo(t, r.RunCLI(t, nil, cancel...)).Duplicate)
	reused = r.RunCLI(t, nil, "cancel", "--conference-id", "900000002", "--key", "dedup-own-key")
	require.Equal(t, 3, reused.Code, "the caller's key used for another operation: %s", reused.Stderr)

	r.WaitSettled(t, 2, time.Minute)
	done := cliInfo(t, r.RunCLI(t, nil, dismiss...))
	require.True(t, done.Duplicate, "a completed operation enqueued again is a duplicate")
	require.Equal(t, "completed", done.State)

	lost, _ := proctest.Tally(t, r.Infos(t, []string{first.Key, own.Key}))
	st := r.Sim.Stats(t)
	missing, dup, extra := proctest.Effects(t, st, "", []string{"dismiss:demo-app-bulk/dedup-1", "cancel:900000001"})
	row.Tasks, row.Lost, row.Duplicated, row.UpstreamCalls = 2, lost+missing, dup+extra, proctest.Calls(st)
	row.Note = "dedup and key reuse"
	require.Zero(t, lost+missing+dup+extra, "each operation once, the refused ones never")
}

// deadLetter is the part of `enqueue dead list|show -o json` the suite
// checks.
type deadLetter struct {
	Key     string          `json:"key"`
	Reason  string          `json:"reason"`
	Status  int             `json:"status"`
	Payload json.RawMessage `json:"payload"`
}

// deadLetterCommands: two dismissals dead-letter on the worker (a 401,
// which AK/SK does not resend, and a 404 for a room that does not exist);
// `enqueue dead list` and `dead show` report them with reason and status;
// `dead requeue` runs the first again, which now succeeds (effect once);
// `dead purge` removes the second from meetops' store and asynq's archive.
func deadLetterCommands(t *testing.T, r *proctest.Rig, row *reliability.Row) {
	proctest.StartWorker(t, r.WorkerEnv("RATELIMIT_RTC_ROOMS=off", "LOG_LEVEL=warn"))
	waitState := func(key string, state asynq.TaskState) {
		t.Helper()
		require.True(t, proctest.Poll(30*time.Second, 20*time.Millisecond, func() bool {
			info, err := r.Insp.GetTaskInfo(tasks.DefaultQueue, key)
			return err == nil && info.State == state
		}), "task %s becomes %s", key, state)
	}
	r.Sim.SetFaults(t, `{"dismiss": {"script": ["401"]}}`)
	auth := cliInfo(t, r.RunCLI(t, nil, "dismiss", "--app-id", "demo-app", "--room-id", "room-002", "-o", "json")).Key
	waitState(auth, asynq.TaskStateArchived)
	r.Sim.ClearFaults(t)
	gone := cliInfo(t, r.RunCLI(t, nil, "dismiss", "--app-id", "demo-app", "--room-id", "room-404", "-o", "json")).Key
	waitState(gone, asynq.TaskStateArchived)

	list := r.RunCLI(t, nil, "dead", "list", "-o", "json")
	require.Zero(t, list.Code, list.Stderr)
	var dead []deadLetter
	require.NoError(t, json.Unmarshal([]byte(list.Stdout), &dead), list.Stdout)
	byKey := map[string]deadLetter{}
	for _, d := range dead {
		byKey[d.Key] = d
	}
	require.Len(t, byKey, 2, "dead list: %s", list.Stdout)
	require.Equal(t, tasks.ReasonAuth, byKey[auth].Reason)
	require.Equal(t, 401, byKey[auth].Status)
	require.Equal(t, tasks.ReasonHTTP4xx, byKey[gone].Reason)
	require.Equal(t, 404, byKey[gone].Status)

	show := r.RunCLI(t, nil, "dead", "show", auth, "-o", "json")
	require.Zero(t, show.Code, show.Stderr)
	var one deadLetter
	require.NoError(t, json.Unmarshal([]byte(show.Stdout), &one), show.Stdout)
	require.Equal(t, auth, one.Key)
	require.JSONEq(t, `{"app_id":"demo-app","room_id":"room-002"}`, string(one.Payload))

	requeue := r.RunCLI(t, nil, "dead", "requeue", auth)
	require.Zero(t, requeue.Code, requeue.Stderr)
	require.Contains(t, requeue.Stdout, "requeued 1 dead letter")
	waitState(auth, asynq.TaskStateCompleted)
	info, err := r.Insp.GetTaskInfo(tasks.DefaultQueue, auth)
	require.NoError(t, err)
	require.Equal(t, tasks.OutcomeSucceeded, proctest.Result(t, info).Outcome, "the requeued dead letter succeeds")

	purge := r.RunCLI(t, nil, "dead", "purge", gone, "--yes")
	require.Zero(t, purge.Code, purge.Stderr)
	require.Contains(t, purge.Stdout, "purged 1 dead letter")
	_, err = r.Insp.GetTaskInfo(tasks.DefaultQueue, gone)
	require.ErrorIs(t, err, asynq.ErrTaskNotFound, "purged from asynq's archive too")
	list = r.RunCLI(t, nil, "dead", "list", "-o", "json")
	require.Zero(t, list.Code, list.Stderr)
	require.JSONEq(t, `[]`, list.Stdout, "no dead letter left")

	st := r.Sim.Stats(t)
	missing, dup, extra := proctest.Effects(t, st, "", []string{"dismiss:demo-app/room-002"})
	row.Tasks, row.Lost, row.Duplicated, row.UpstreamCalls = 2, missing, dup+extra, proctest.Calls(st)
	row.Note = "dead list/show/requeue/purge"
	require.Zero(t, missing+dup+extra, "the requeued room dismissed once, the missing one never")
	require.Equal(t, 3, st.Requests["dismiss"].Total, "one call each: the refused 401 and 404, the requeued dismissal")
}
