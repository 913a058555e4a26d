package reliability_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/reliability"
	"github.com/meetops/meetops/internal/tasks"
)

// Two worker processes on one Redis share a 10/s budget: the simulator never
// sees more than 10 dismissals in a 1-second window (plus the limiter's
// burst of 1), every task completes, none is dead-lettered, and tasks that
// only waited keep their retry count at 0.
func TestTwoWorkersShareTheRateLimit(t *testing.T) {
	t.Parallel()
	twoWorkersShareTheRateLimit(t, proctest.NewSharedRig(t, "-log-size", "10000"), &reliability.Row{})
}

// twoWorkersShareTheRateLimit is TestTwoWorkersShareTheRateLimit on the rig
// r, on any topology (its simulator must log at least 40 requests); it
// fills row's counts and note before it asserts on the pacing.
func twoWorkersShareTheRateLimit(t *testing.T, r *proctest.Rig, row *reliability.Row) {
	const n, limit = 40, 10
	env := r.WorkerEnv("RATELIMIT_RTC_ROOMS=10/s", "LOG_LEVEL=warn")
	proctest.StartWorker(t, env)
	proctest.StartWorker(t, env)

	ops, effectKeys := proctest.Dismissals("rl", n)
	keys := r.Enqueue(t, ops, tasks.TaskOptions{})
	r.WaitSettled(t, n, 60*time.Second)
	q := r.Queue()
	require.Equal(t, n, q.Completed)
	require.Zero(t, q.Archived, "nothing dead-lettered")
	infos := r.Infos(t, keys)
	for k, info := range infos {
		require.Zero(t, info.Retried, "waiting for the budget must not spend a retry: %s", k)
	}

	var times []time.Time
	for _, e := range r.Sim.Log(t) {
		if e.Op == "dismiss" {
			times = append(times, e.Time)
		}
	}
	require.Len(t, times, n)
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	maxInWindow := 0
	for i := range times {
		j := i
		for j < len(times) && times[j].Sub(times[i]) < time.Second {
			j++
		}
		maxInWindow = max(maxInWindow, j-i)
	}
	t.Logf("busiest 1 s window: %d dismissals (limit %d/s, burst 1); span %s", maxInWindow, limit, times[n-1].Sub(times[0]))
	lost, _ := proctest.Tally(t, infos)
	st := r.Sim.Stats(t)
	missing, dup, extra := proctest.Effects(t, st, "dismiss:", effectKeys)
	row.Tasks, row.Lost, row.Duplicated, row.UpstreamCalls = n, lost+missing, dup+extra, proctest.Calls(st)
	row.Note = fmt.Sprintf("2 workers at 10/s: busiest second %d calls", maxInWindow)
	require.LessOrEqual(t, maxInWindow, limit+1)
	require.GreaterOrEqual(t, times[n-1].Sub(times[0]), time.Duration(n-limit-1)*time.Second/limit,
		"the calls are paced, not bunched")
}
