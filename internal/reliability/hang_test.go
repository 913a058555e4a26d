package reliability_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/ledger"
	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/reliability"
	"github.com/meetops/meetops/internal/tasks"
)

// Scenario 5. Upstream requests that never answer:
//
//   - with UPSTREAM_TIMEOUT=1s a hanging request is abandoned after about a
//     second and the task retried, and completes once the upstream answers;
//   - SIGTERM while a request hangs (UPSTREAM_TIMEOUT=30s): the worker exits
//     with status 0 within SHUTDOWN_TIMEOUT=3s (plus asynq's own shutdown,
//     about half a second), the interrupted task goes back to the queue, and
//     a new worker completes it — once. It runs again only once the
//     interrupted attempt's ledger lease has lapsed (at most
//     ledger.DefaultLease): the handler's release of the lease uses the
//     attempt's context, which asynq has cancelled by then.
func TestUpstreamHangs(t *testing.T) {
	t.Parallel()
	row := report(t, "5 upstream hangs + SIGTERM")
	const shutdownTimeout = 3 * time.Second
	r := proctest.NewRig(t, redistest.Options{}, "-log-size", "1000")
	base := r.WorkerEnv("RATELIMIT_RTC_ROOMS=off", "LOG_LEVEL=info")

	// Part A: two hangs, each cut off by the 1 s per-request timeout.
	r.Sim.SetFaults(t, `{"dismiss": {"script": ["hang", "hang"]}}`)
	w := proctest.StartWorker(t, append(base, "UPSTREAM_TIMEOUT=1s"))
	opsA, effA := proctest.Dismissals("hang-a", 3)
	partAStart := time.Now()
	keysA := r.Enqueue(t, opsA, tasksDefault)
	r.WaitSettled(t, len(keysA), time.Minute)
	infosA := r.Infos(t, keysA)
	lostA, _ := proctest.Tally(t, infosA)
	retried := 0
	for _, info := range infosA {
		if info != nil {
			retried += info.Retried
		}
	}
	require.Equal(t, 2, retried, "each hang cost one retry")
	timeoutLines := 0
	for _, line := range strings.Split(w.Output(), "\n") {
		var l struct {
			Message, Error string
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Message == "transient failure; will retry" {
			timeoutLines++
			require.Regexp(t, `timeout|deadline exceeded`, l.Error, "a hang ends as a timeout: %s", line)
		}
	}
	require.Equal(t, 2, timeoutLines, "two attempts timed out")
	require.Equal(t, 2, r.Sim.Stats(t).Requests["dismiss"].ByStatus["hang"], "two requests hung")
	partA := time.Since(partAStart)
	// Two hangs at the default 15 s timeout alone would take 30 s.
	require.Less(t, partA, 25*time.Second, "the hangs were cut off by UPSTREAM_TIMEOUT=1s")
	require.NoError(t, w.Signal(syscall.SIGTERM))
	_, exited := w.Wait(15 * time.Second)
	require.True(t, exited)

	// Part B: SIGTERM during a hang.
	r.Sim.SetFaults(t, `{"dismiss": {"rate": 1, "fail": "hang"}}`)
	w2 := proctest.StartWorker(t, append(base, "UPSTREAM_TIMEOUT=30s", "SHUTDOWN_TIMEOUT="+shutdownTimeout.String()))
	opsB, effB := proctest.Dismissals("hang-b", 1)
	keysB := r.Enqueue(t, opsB, tasksDefault)
	hangs := func() int { return r.Sim.Stats(t).Requests["dismiss"].ByStatus["hang"] }
	require.True(t, proctest.Poll(30*time.Second, 20*time.Millisecond, func() bool { return hangs() == 3 }), "the request hangs")
	require.NoError(t, w2.Signal(syscall.SIGTERM))
	termAt := time.Now()
	exitErr, exited := w2.Wait(shutdownTimeout + 10*time.Second)
	exitTook := time.Since(termAt)
	require.True(t, exited, "the worker exits after SIGTERM")
	require.NoError(t, exitErr, "exit status 0")
	require.Less(t, exitTook, shutdownTimeout+2*time.Second, "exit within SHUTDOWN_TIMEOUT (+2 s for HTTP and Redis)")
	info, err := r.Insp.GetTaskInfo(tasks.DefaultQueue, keysB[0])
	require.NoError(t, err)
	require.Equal(t, asynq.TaskStatePending, info.State, "the interrupted task went back to the queue")

	r.Sim.ClearFaults(t)
	restartAt := time.Now()
	w3 := proctest.StartWorker(t, append(base, "UPSTREAM_TIMEOUT=30s"))
	r.WaitSettled(t, len(keysA)+len(keysB), 4*time.Minute)
	infosB := r.Infos(t, keysB)
	lostB, already := proctest.Tally(t, infosB)
	// asynq records completed_at in whole seconds: a rerun within the
	// first second can read as negative.
	rerun := max(infosB[keysB[0]].CompletedAt.Sub(restartAt), 0)
	_, m := w3.Get(t, "/metrics")
	deferred := proctest.Metric(m, `meetops_tasks_processed_total{outcome="deferred",type="rtc:room:dismiss"}`)

	st := r.Sim.Stats(t)
	missing, dup, extra := proctest.Effects(t, st, "dismiss:", append(effA, effB...))
	lost := lostA + lostB + missing
	t.Logf("scenario 5: 2 hangs cut by UPSTREAM_TIMEOUT=1s and retried (part A took %s); SIGTERM during a hang: exit 0 after %s (SHUTDOWN_TIMEOUT %s); "+
		"the interrupted task completed (%d already_done) %s after a new worker started, after %g deferrals (ledger lease of the interrupted attempt)",
		partA.Round(100*time.Millisecond), exitTook.Round(10*time.Millisecond), shutdownTimeout, already, rerun.Round(time.Second), deferred)
	*row = reliability.Row{Scenario: row.Scenario, Tasks: len(keysA) + len(keysB), Lost: lost, Duplicated: dup + extra,
		UpstreamCalls: proctest.Calls(st), Time: time.Since(r.Started),
		Note: fmt.Sprintf("SIGTERM→exit 0 in %s; rerun done ≤ %s after restart", exitTook.Round(100*time.Millisecond), (rerun + time.Second).Round(time.Second))}
	require.Zero(t, lost, "lost tasks")
	require.Zero(t, dup+extra, "duplicate effects")
	require.Less(t, rerun, ledger.DefaultLease+15*time.Second, "the interrupted task runs again once its ledger lease lapsed")
}
