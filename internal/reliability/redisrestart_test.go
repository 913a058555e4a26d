package reliability_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/reliability"
)

// Scenario 2. Redis (AOF, appendfsync always) is restarted while `enqueue
// bulk` is enqueueing a 5,000-line file and two workers are executing it.
// The workers and the running bulk reconnect without being restarted, and
// every line's task completes, taking effect once. A task whose attempt the
// restart cut can take up to a ledger lease (30 s) more: its lease, held or
// left behind by a lost reply, has to lapse first; the slowest is printed.
func TestRedisRestartMidBatch(t *testing.T) {
	t.Parallel()
	row := report(t, "2 Redis restart (AOF always)")
	const n = 5000
	r := proctest.NewRig(t, redistest.Options{AppendFsyncAlways: true}, "-log-size", "16")
	r.Sim.SetFaults(t, `{"dismiss": {"latency": "5ms"}}`)
	env := r.WorkerEnv("RATELIMIT_RTC_ROOMS=off", "LOG_LEVEL=warn")
	workers := []*proctest.Worker{proctest.StartWorker(t, env), proctest.StartWorker(t, env)}

	ops, effectKeys := proctest.Dismissals("restart", n)
	var b strings.Builder
	for i := range ops {
		fmt.Fprintf(&b, `{"op":"dismiss","app_id":"demo-app-bulk","room_id":"restart-%04d"}`+"\n", i)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "ops.jsonl")
	require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o600))
	bulkArgs := []string{"bulk", file, "--redis-url", r.RedisURL, "--concurrency", "2", "--report", filepath.Join(dir, "report.jsonl")}
	bulk := proctest.Start(t, proctest.Bin(t, "enqueue"), nil, bulkArgs...)

	known := func() int {
		q := r.Queue()
		if q == nil {
			return 0
		}
		return q.Pending + q.Active + q.Scheduled + q.Retry + q.Archived + q.Completed
	}
	require.True(t, proctest.Poll(time.Minute, 5*time.Millisecond, func() bool { return known() >= n/5 }), "bulk enqueues")
	select {
	case <-bulk.Exited():
		t.Fatalf("enqueue bulk finished before Redis could be restarted (%d tasks known); make the batch larger", known())
	default:
	}
	before := known()
	downAt := time.Now()
	require.NoError(t, r.Redis.Restart())
	downtime := time.Since(downAt)
	t.Logf("Redis restarted with %d of %d tasks enqueued; down %s", before, n, downtime.Round(time.Millisecond))

	bulkErr, exited := bulk.Wait(2 * time.Minute)
	require.True(t, exited, "enqueue bulk finishes")
	bulkCode, _ := bulk.ExitCode()
	bulkSurvived := bulkErr == nil
	if !bulkSurvived {
		t.Errorf("enqueue bulk did not ride out the Redis restart: exit %d:\n%s", bulkCode, tailLines(bulk.Output(), 5))
		// The documented remedy: run the same input again.
		again := proctest.Start(t, proctest.Bin(t, "enqueue"), nil, bulkArgs...)
		againErr, ok := again.Wait(2 * time.Minute)
		require.True(t, ok)
		require.NoError(t, againErr, "rerunning the bulk finishes it:\n%s", again.Output())
	}

	r.WaitSettled(t, n, 3*time.Minute)
	for i, w := range workers {
		select {
		case <-w.Exited():
			t.Errorf("worker %d exited: %s", i+1, tailLines(w.Output(), 5))
		default:
			status, _ := w.Get(t, "/readyz")
			require.Equal(t, http.StatusOK, status, "worker %d is ready again", i+1)
		}
	}
	keys := make([]string, n)
	for i, op := range ops {
		keys[i] = keyOf(t, op)
	}
	infos := r.Infos(t, keys)
	lost, already := proctest.Tally(t, infos)
	slow := 0
	var slowest time.Duration
	for _, info := range infos {
		if info != nil && info.CompletedAt.Sub(downAt) > 20*time.Second {
			slow++
			slowest = max(slowest, info.CompletedAt.Sub(downAt))
			if slow <= 3 {
				t.Logf("slow task %s: retried %d, last error %q, completed %s after the restart", info.ID, info.Retried, info.LastErr, info.CompletedAt.Sub(downAt).Round(time.Second))
			}
		}
	}
	st := r.Sim.Stats(t)
	missing, dup, extra := proctest.Effects(t, st, "dismiss:", effectKeys)
	t.Logf("scenario 2: %d tasks, Redis down %s; bulk exit %d (survived: %v); lost %d, duplicated %d, already_done %d; "+
		"%d tasks completed more than 20 s after the restart (slowest %s)",
		n, downtime.Round(time.Millisecond), bulkCode, bulkSurvived, lost+missing, dup+extra, already, slow, slowest.Round(time.Second))
	note := fmt.Sprintf("restart at %d/%d enqueued, down %s; bulk rode it out", before, n, downtime.Round(10*time.Millisecond))
	if !bulkSurvived {
		note = fmt.Sprintf("restart at %d/%d enqueued; bulk exit %d, rerun finished it", before, n, bulkCode)
	}
	if slow > 0 {
		note += fmt.Sprintf("; %d cut task(s) done after %s", slow, slowest.Round(time.Second))
	}
	*row = reliability.Row{Scenario: row.Scenario, Tasks: n, Lost: lost + missing, Duplicated: dup + extra,
		UpstreamCalls: proctest.Calls(st), Time: time.Since(r.Started), Note: note}
	require.Zero(t, lost+missing, "lost tasks")
	require.Zero(t, dup+extra, "duplicate effects")
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
