package reliability_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/reliability"
)

// Scenario 1. SIGKILL the worker while 2,000 dismissals run against 20 ms
// upstream latency, start a new one: every task ends completed and every
// room is dismissed exactly once (the ledger and the "already done" answer
// cover attempts that reached upstream before the kill).
//
// The tasks the dead worker held stay active until their asynq lease (30 s)
// expires. asynq's own recoverer would hand them out again only once the
// lease expired 30 s ago, checking once a minute, and the dead attempts'
// ledger leases then deferred them further: about two minutes in all. The
// worker's prompt orphan recovery (internal/worker/orphans.go) and the
// renewed 30 s ledger lease bring that under maxRecovery, which asynq
// alone can never reach: the time until the last interrupted task completed
// is printed and asserted.
func TestWorkerKilledMidBatch(t *testing.T) {
	t.Parallel()
	row := report(t, "1 worker killed (SIGKILL)")
	r := proctest.NewRig(t, redistest.Options{AppendFsyncAlways: true}, "-log-size", "16")
	workerKilledMidBatch(t, r, row)
}

// workerKilledMidBatch is scenario 1 on the rig r, on any topology: it
// fills row (all but its Scenario) before it asserts.
func workerKilledMidBatch(t *testing.T, r *proctest.Rig, row *reliability.Row) {
	const n = 2000
	r.Sim.SetFaults(t, `{"dismiss": {"latency": "20ms"}}`)
	env := r.WorkerEnv("RATELIMIT_RTC_ROOMS=off", "LOG_LEVEL=warn")

	ops, effectKeys := proctest.Dismissals("kill", n)
	keys := r.Enqueue(t, ops, tasksDefault)
	w1 := proctest.StartWorker(t, env)
	require.True(t, proctest.Poll(2*time.Minute, 10*time.Millisecond, func() bool {
		q := r.Queue()
		return q != nil && q.Completed >= n/4
	}), "a quarter of the batch completes")
	w1.Kill()
	killedAt := time.Now()
	interrupted := r.ActiveKeys(t)
	require.NotEmpty(t, interrupted, "the worker died holding tasks")
	q := r.Queue()
	t.Logf("killed the worker with %d completed, %d active (interrupted), %d pending", q.Completed, len(interrupted), q.Pending)

	w2 := proctest.StartWorker(t, env)
	r.WaitSettled(t, n, 4*time.Minute)

	infos := r.Infos(t, keys)
	lost, already := proctest.Tally(t, infos)
	var lastDone time.Time
	for _, k := range interrupted {
		if info := infos[k]; info != nil && info.CompletedAt.After(lastDone) {
			lastDone = info.CompletedAt
		}
	}
	recovery := lastDone.Sub(killedAt)
	st := r.Sim.Stats(t)
	missing, dup, extra := proctest.Effects(t, st, "dismiss:", effectKeys)
	_, m := w2.Get(t, "/metrics")
	deferred := proctest.Metric(m, `meetops_tasks_processed_total{outcome="deferred",type="rtc:room:dismiss"}`)
	hits := proctest.Metric(m, `meetops_tasks_processed_total{outcome="ledger_hit",type="rtc:room:dismiss"}`)
	t.Logf("scenario 1: %d tasks, %d interrupted, lost %d, duplicated %d, already_done %d, ledger hits %d, "+
		"deferrals while a dead attempt's ledger lease lasted %.0f, upstream dismiss calls %d, "+
		"last interrupted task completed %s after the kill",
		n, len(interrupted), lost+missing, dup+extra, already, int(hits), deferred, st.Requests["dismiss"].Total, recovery.Round(time.Second))
	*row = reliability.Row{Scenario: row.Scenario, Tasks: n, Lost: lost + missing, Duplicated: dup + extra,
		UpstreamCalls: proctest.Calls(st), Time: time.Since(r.Started),
		Note: fmt.Sprintf("%d interrupted; last done %s after kill", len(interrupted), recovery.Round(time.Second))}
	require.Zero(t, lost+missing, "lost tasks")
	require.Zero(t, dup+extra, "duplicate effects")
	require.Less(t, recovery, maxRecovery, "interrupted tasks recovered promptly (asynq alone: ≥ 55 s)")
}

// maxRecovery bounds the time from a worker's death to its last
// interrupted task completing. asynq alone cannot do it in less than its
// lease (at least 25 s left after the last 5 s extension) plus its 30 s
// margin; the prompt recovery needs the lease, a 5 s grace, a 5 s sweep
// and a ledger deferral (2 s): about 45 s at worst.
const maxRecovery = 55 * time.Second
