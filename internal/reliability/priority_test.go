package reliability_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/tasks"
)

// Scenario 19. An urgent dismissal during a bulk clean-up of the same rate-
// limit group: two workers serving critical=6,default=3,low=1 share
// RATELIMIT_RTC_ROOMS=4/s (a slot every 250 ms); 120 dismissals wait in
// default (30 s of budget), and from 3 s on a critical dismissal arrives
// every 2.5 s (10 % of the limit), six in all. Each critical task reaches
// the simulator within 3 slots of the group's rate plus asynq's idle poll
// (TASK_CHECK_INTERVAL, 100 ms here) after it was enqueued, and meanwhile
// default keeps at least 80 % of the limit. The same shape with the queues'
// weights made equal (critical=1,default=1: the order is first-come) is the
// baseline in the same run: there the critical task waits behind the
// backlog. (The shape, 400 tasks at 2/s, is the same at a larger
// scale; this one keeps the suite short.)
func TestCriticalTasksOvertakeABacklogUnderARateLimit(t *testing.T) {
	t.Parallel()
	row := report(t, "19 priorities: critical during a default backlog at 4/s")

	var flat priorityRun
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the baseline, on its own rig, at the same time
		defer wg.Done()
		flat = runPriorities(t, "flat", "critical=1,default=1", 60, 1)
	}()
	got := runPriorities(t, "weighted", "critical=6,default=3,low=1", 120, 6)
	wg.Wait()

	row.Tasks, row.Lost, row.Duplicated, row.UpstreamCalls = got.tasks, got.lost, got.duplicated, got.calls
	row.Note = fmt.Sprintf("critical waited max %s (first-come: %s); default at %.0f%% of the limit",
		got.maxCritical.Round(10*time.Millisecond), flat.maxCritical.Round(100*time.Millisecond), 100*got.defaultShare)
	t.Logf("weighted: critical waits %v, default at %.0f%% of the limit while they arrived", got.critical, 100*got.defaultShare)
	t.Logf("first-come baseline: critical waits %v", flat.critical)

	require.Zero(t, got.lost+got.duplicated)
	for i, w := range got.critical {
		require.LessOrEqual(t, w, 3*priorityInterval+priorityPoll,
			"critical task %d waited %s: more than 3 slots of %s (+%s poll)", i, w, priorityInterval, priorityPoll)
	}
	require.GreaterOrEqual(t, got.defaultShare, 0.8, "default keeps at least 80%% of the limit while critical tasks arrive")
	require.Greater(t, flat.maxCritical, 10*priorityInterval, "first-come, the critical task waits behind the backlog (the baseline is real)")
}

const (
	priorityInterval = 250 * time.Millisecond // RATELIMIT_RTC_ROOMS=4/s
	priorityPoll     = 100 * time.Millisecond // TASK_CHECK_INTERVAL
)

// priorityRun is what one run of the scenario measured.
type priorityRun struct {
	tasks, lost, duplicated, calls int
	// critical is each critical task's time from enqueue to its call.
	critical    []time.Duration
	maxCritical time.Duration
	// defaultShare is default's calls per second while the critical tasks
	// were arriving, as a fraction of the limit.
	defaultShare float64
}

// runPriorities runs the scenario on a rig of its own: backlog default
// dismissals, then nCritical critical ones (rooms named after label), one every 10 slots from 3 s on,
// with the workers' queues weighted as queues says.
func runPriorities(t *testing.T, label, queues string, backlog, nCritical int) priorityRun {
	r := proctest.NewSharedRig(t, "-log-size", "10000")
	r.Queues = []string{"critical", tasks.DefaultQueue}
	env := r.WorkerEnv("RATELIMIT_RTC_ROOMS=4/s", "WORKER_QUEUES="+queues, "LOG_LEVEL=warn",
		"TASK_CHECK_INTERVAL="+priorityPoll.String())
	proctest.StartWorker(t, env)
	proctest.StartWorker(t, env)

	ops, effects := proctest.Dismissals(label+"-bulk", backlog)
	keys := r.Enqueue(t, ops, tasks.TaskOptions{})
	time.Sleep(3 * time.Second) // the scenario's shape: the backlog is 3 s old when the urgent work starts

	urgent, urgentEffects := proctest.Dismissals(label+"-urgent", nCritical)
	enqueued := make(map[string]time.Time, nCritical)
	for i, op := range urgent {
		if i > 0 {
			time.Sleep(10 * priorityInterval) // arrivals at 10 % of the limit: the scenario's rate, not a synchronisation
		}
		enqueued[urgentEffects[i]] = time.Now()
		keys = append(keys, r.Enqueue(t, []tasks.Op{op}, tasks.TaskOptions{Queue: "critical"})...)
	}
	n := backlog + nCritical
	r.WaitSettled(t, n, 120*time.Second)

	var run priorityRun
	first, last := time.Time{}, time.Time{}
	for _, at := range enqueued {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	called := map[string]time.Time{}
	var defaults []time.Time
	for _, e := range r.Sim.Log(t) {
		if e.Op != "dismiss" || e.Status/100 != 2 {
			continue
		}
		effect := "dismiss:demo-app-bulk/" + strings.TrimSuffix(strings.TrimPrefix(e.Path, "/v2/apps/demo-app-bulk/rooms/"), "/dismiss")
		if _, ok := enqueued[effect]; ok {
			called[effect] = e.Time
			if e.Time.After(last) {
				last = e.Time
			}
			continue
		}
		defaults = append(defaults, e.Time)
	}
	for _, effect := range urgentEffects {
		at, ok := called[effect]
		require.True(t, ok, "critical %s reached the simulator", effect)
		w := at.Sub(enqueued[effect])
		run.critical = append(run.critical, w)
		run.maxCritical = max(run.maxCritical, w)
	}
	inWindow := 0
	for _, at := range defaults {
		if !at.Before(first) && !at.After(last) {
			inWindow++
		}
	}
	if span := last.Sub(first); span > 0 {
		run.defaultShare = float64(inWindow) / (span.Seconds() * float64(time.Second/priorityInterval))
	}

	infos := r.Infos(t, keys)
	for k, info := range infos {
		require.Zero(t, info.Retried, "waiting for a turn must not spend a retry: %s", k)
	}
	lost, _ := proctest.Tally(t, infos)
	st := r.Sim.Stats(t)
	missing, dup, extra := proctest.Effects(t, st, "dismiss:", slices.Concat(effects, urgentEffects))
	run.tasks, run.lost, run.duplicated, run.calls = n, lost+missing, dup+extra, proctest.Calls(st)
	return run
}
