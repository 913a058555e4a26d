package reliability_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/reliability"
	"github.com/meetops/meetops/internal/retry"
	"github.com/meetops/meetops/internal/tasks"
)

// asynqTimeGranularity is the resolution of asynq's due times: it stores a
// retry's process-at time in whole Unix seconds, so a retry can become due
// up to a second before its computed delay has passed.
const asynqTimeGranularity = time.Second

// maxAttemptsWithin is the most attempts of one task that can fall within a
// window of length w when the retries follow s: attempt j+1 comes at least
// MinDelay(j) (less asynq's rounding) after attempt j.
func maxAttemptsWithin(s retry.Schedule, w time.Duration) int {
	attempts, at := 1, time.Duration(0)
	for n := 0; n < s.Retries(); n++ {
		at += max(0, s.MinDelay(n)-asynqTimeGranularity)
		if at > w {
			break
		}
		attempts++
	}
	return attempts
}

func TestMaxAttemptsWithin(t *testing.T) {
	t.Parallel()
	s := retry.Schedule{}
	// Minimum gaps 1 s, 2 s, 4 s, 8 s … less 1 s: attempts can come at
	// 0, 0, 1, 4, 11 s.
	require.Equal(t, 1, maxAttemptsWithin(s, -time.Second))
	require.Equal(t, 2, maxAttemptsWithin(s, 0))
	require.Equal(t, 3, maxAttemptsWithin(s, time.Second))
	require.Equal(t, 4, maxAttemptsWithin(s, 10*time.Second))
	require.Equal(t, 5, maxAttemptsWithin(s, 11*time.Second))
	require.Equal(t, 13, maxAttemptsWithin(s, 24*time.Hour), "never more than the retry budget allows")
}

// Scenario 3. For 10 s the simulator answers 503 to half the dismissals.
// The tasks (due at moments spread over the storm) all complete, none
// exceeds its retry budget, and the upstream sees no more calls than the
// backoff schedule allows: a task can fit at most k attempts into the storm
// (k from retry.Schedule's minimum delays), all of which may fail, and its
// first attempt after the storm succeeds, so calls ≤ tasks·(k+1).
func TestFiveXXStorm(t *testing.T) {
	t.Parallel()
	row := report(t, "3 5xx storm (50% 503 for 10s)")
	const n = 400
	const storm = 10 * time.Second
	r := proctest.NewRig(t, redistest.Options{}, "-log-size", "16", "-seed", "3")
	// The breaker off: this scenario is about the retry schedule (with the
	// breaker on, a 50 % storm opens it and the tasks wait instead; that
	// is scenario 16).
	proctest.StartWorker(t, r.WorkerEnv("RATELIMIT_RTC_ROOMS=off", "BREAKER=off", "LOG_LEVEL=warn"))

	r.Sim.SetFaults(t, `{"dismiss": {"rate": 0.5, "fail": "503"}}`)
	stormStart := time.Now()
	ops, effectKeys := proctest.Dismissals("storm", n)
	var keys []string
	for i, op := range ops {
		// Due times spread over the first 9 s of the storm.
		keys = append(keys, r.Enqueue(t, []tasks.Op{op}, tasks.TaskOptions{
			ProcessAt: stormStart.Add(time.Duration(i%10) * 900 * time.Millisecond)})...)
	}
	<-time.After(time.Until(stormStart.Add(storm))) // the storm's length, not a synchronisation
	r.Sim.ClearFaults(t)
	window := time.Since(stormStart)

	r.WaitSettled(t, n, 2*time.Minute)
	infos := r.Infos(t, keys)
	lost, _ := proctest.Tally(t, infos)
	st := r.Sim.Stats(t)
	missing, dup, extra := proctest.Effects(t, st, "dismiss:", effectKeys)

	sched := retry.Schedule{}
	k := maxAttemptsWithin(sched, window)
	bound := n * (k + 1)
	overBudget, maxAttempts := 0, 0
	for key, info := range infos {
		if info == nil {
			continue
		}
		res := proctest.Result(t, info)
		maxAttempts = max(maxAttempts, res.Attempts)
		if info.Retried > info.MaxRetry || res.Attempts > k+1 {
			overBudget++
			t.Errorf("task %s: %d attempts, retried %d of %d (the schedule allows %d)", key, res.Attempts, info.Retried, info.MaxRetry, k+1)
		}
	}
	dismissCalls := st.Requests["dismiss"].Total
	failed := st.Requests["dismiss"].ByStatus["503"]
	t.Logf("scenario 3: %d tasks over a %s storm: %d dismiss calls (%d answered 503), bound %d = %d tasks × (%d attempts in the storm + 1); "+
		"most attempts by one task %d; lost %d, duplicated %d",
		n, window.Round(10*time.Millisecond), dismissCalls, failed, bound, n, k, maxAttempts, lost+missing, dup+extra)
	*row = reliability.Row{Scenario: row.Scenario, Tasks: n, Lost: lost + missing, Duplicated: dup + extra,
		UpstreamCalls: proctest.Calls(st), Time: time.Since(r.Started),
		Note: fmt.Sprintf("%d calls ≤ bound %d; %d×503; max %d attempts/task", dismissCalls, bound, failed, maxAttempts)}
	require.Zero(t, lost+missing, "lost tasks")
	require.Zero(t, dup+extra, "duplicate effects")
	require.Zero(t, overBudget, "tasks over their retry budget")
	require.Positive(t, failed, "the storm happened")
	require.LessOrEqual(t, dismissCalls, bound, "upstream calls within the backoff bound")
}
