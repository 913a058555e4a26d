package reliability_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/reliability"
	"github.com/meetops/meetops/internal/tasks"
)

// The outage scenario's scale. The scenario is 60 s of outage with
// the default 5 s probe interval; the suite runs it at a third of that
// (20 s, a probe every 2 s) to keep `make test` short. The bound keeps its
// formula: calls ≤ 2 × MinAttempts + one probe per interval.
const (
	outageTasks     = 2000
	outageLength    = 20 * time.Second
	outageProbe     = 2 * time.Second
	outageMin       = 20               // BREAKER_MIN_ATTEMPTS (the default)
	outageRate      = "200/s"          // fast enough to drain 2,000 tasks in 10 s
	outageDrainGoal = 30 * time.Second // every task done this soon after recovery
	outageProbes    = int(outageLength/outageProbe) + 1
)

// Scenario 16, breaker on. For 20 s the simulator answers 503 to every
// dismissal, with 2,000 dismissals queued across two workers. The group's
// breaker opens after its first MinAttempts failures; from then on one
// probe per interval reaches the upstream, across both workers, so the
// upstream sees at most 2 × MinAttempts + one call per probe interval
// during the outage. No task is dead-lettered, tasks waiting for the
// breaker spend no retries (only failures met by a closed breaker do, at
// most one call each), and every task is done within 30 s of recovery.
// Each transition is counted once across the two workers.
func TestOutageWithBreaker(t *testing.T) {
	t.Parallel()
	row := report(t, "16 outage: 503 on dismiss, breaker on")
	o := runOutage(t, row, "BREAKER=on")
	bound := 2*outageMin + outageProbes
	row.Note = fmt.Sprintf("%s outage: %d dismiss calls (bound %d), drained %s after; %d retries spent",
		outageLength, o.calls, bound, o.drain.Round(100*time.Millisecond), o.retried)
	require.Zero(t, o.archived, "no dead letters")
	require.LessOrEqual(t, o.calls, bound, "an open breaker lets one probe per interval through")
	require.LessOrEqual(t, o.retried, 2*outageMin, "only calls a closed breaker let through spend a retry")
	require.LessOrEqual(t, o.drain, outageDrainGoal, "every task done soon after recovery")
	require.Equal(t, 1.0, o.transitions(`from="closed",group="rtc_rooms",to="open"`), "opened once, counted once across the workers")
	require.Equal(t, 1.0, o.transitions(`from="half_open",group="rtc_rooms",to="closed"`), "closed once")
}

// Scenario 16, breaker off, for the comparison: the same outage with
// BREAKER=off, where every task retries on its own schedule (bounded by
// the rate limit only). It asserts only what the retries guarantee (no
// task lost or dead-lettered); its figures are the comparison.
func TestOutageWithoutBreaker(t *testing.T) {
	t.Parallel()
	row := report(t, "16 outage: 503 on dismiss, breaker off")
	o := runOutage(t, row, "BREAKER=off")
	row.Note = fmt.Sprintf("%s outage: %d dismiss calls, drained %s after; %d retries spent",
		outageLength, o.calls, o.drain.Round(100*time.Millisecond), o.retried)
	require.Zero(t, o.archived, "no dead letters")
	require.Greater(t, o.calls, 2*outageMin+outageProbes, "without the breaker the outage is hammered (the comparison)")
}

// outage is what runOutage measured.
type outage struct {
	calls    int           // dismiss calls answered during the outage
	drain    time.Duration // from recovery to every task done
	retried  int           // retries spent, summed over the tasks
	archived int
	metrics  []string // the workers' /metrics bodies at the end
}

// transitions sums a breaker transition counter over the workers.
func (o outage) transitions(labels string) float64 {
	n := 0.0
	for _, body := range o.metrics {
		n += proctest.Metric(body, "meetops_breaker_transitions_total{"+labels+"}")
	}
	return n
}

// runOutage runs the outage on two workers with the breaker setting
// breaker and fills row with the counts.
func runOutage(t *testing.T, row *reliability.Row, breaker string) outage {
	t.Helper()
	r := proctest.NewRig(t, redistest.Options{}, "-log-size", "16")
	r.Sim.SetFaults(t, `{"dismiss": {"rate": 1, "fail": "503"}}`)
	ops, effectKeys := proctest.Dismissals("outage", outageTasks)
	keys := r.Enqueue(t, ops, tasks.TaskOptions{})
	env := r.WorkerEnv(breaker, "RATELIMIT_RTC_ROOMS="+outageRate, "BREAKER_PROBE_INTERVAL="+outageProbe.String(), "LOG_LEVEL=warn")
	w1 := proctest.StartWorker(t, env)
	w2 := proctest.StartWorker(t, env)
	start := time.Now()
	<-time.After(outageLength) // the outage's length, not a synchronisation
	calls := r.Sim.Stats(t).Requests["dismiss"].ByStatus["503"]
	r.Sim.ClearFaults(t)
	recovered := time.Now()

	r.WaitSettled(t, outageTasks, 3*time.Minute)
	drain := time.Since(recovered)
	infos := r.Infos(t, keys)
	lost, _ := proctest.Tally(t, infos)
	st := r.Sim.Stats(t)
	missing, dup, extra := proctest.Effects(t, st, "dismiss:", effectKeys)
	o := outage{calls: calls, drain: drain, archived: r.Queue().Archived}
	for _, info := range infos {
		if info != nil {
			o.retried += info.Retried
		}
	}
	for _, w := range []*proctest.Worker{w1, w2} {
		code, body := w.Get(t, "/metrics")
		require.Equal(t, 200, code)
		o.metrics = append(o.metrics, body)
	}
	t.Logf("%s: %d tasks, %s outage from %s: %d dismiss calls during it; drained %s after recovery; %d retries; lost %d, duplicated %d; breaker lines:\n%s",
		breaker, outageTasks, outageLength, start.Sub(r.Started).Round(time.Millisecond), calls, drain.Round(10*time.Millisecond),
		o.retried, lost+missing, dup+extra, breakerLines(w1.Output()+w2.Output()))
	*row = reliability.Row{Scenario: row.Scenario, Tasks: outageTasks, Lost: lost + missing, Duplicated: dup + extra,
		UpstreamCalls: proctest.Calls(st), Time: time.Since(r.Started)}
	require.Zero(t, lost+missing, "lost tasks")
	require.Zero(t, dup+extra, "duplicate effects")
	return o
}

// breakerLines are the breaker's log lines in a worker's output.
func breakerLines(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `"component":"breaker"`) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}
