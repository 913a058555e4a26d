package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/tasks"
)

// Two worker processes on one Redis share a 10/s budget: the simulator never
// sees more than 10 dismissals in a 1-second window (plus the limiter's
// burst of 1), every task completes, none is dead-lettered, and tasks that
// only waited keep their retry count at 0.
func TestTwoWorkersShareTheRateLimit(t *testing.T) {
	t.Parallel()
	const n, limit = 40, 10
	redisURL := redistest.URL(t)
	sim := proctest.StartCloudsim(t, "-log-size", "10000")
	env := append([]string{"REDIS_URL=" + redisURL, "RATELIMIT_RTC_ROOMS=10/s", "LOG_LEVEL=warn"}, sim.Env...)
	proctest.StartWorker(t, env)
	proctest.StartWorker(t, env)

	opt, err := asynq.ParseRedisURI(redisURL)
	require.NoError(t, err)
	client := asynq.NewClient(opt)
	defer client.Close()
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	var keys []string
	for i := range n {
		p, err := tasks.Prepare(tasks.Dismiss{AppID: "demo-app-bulk", RoomID: fmt.Sprintf("rl-%03d", i)}, tasks.TaskOptions{})
		require.NoError(t, err)
		_, err = client.Enqueue(p.Task)
		require.NoError(t, err)
		keys = append(keys, p.Key)
	}
	require.Eventually(t, func() bool {
		q, err := insp.GetQueueInfo("default")
		return err == nil && q.Completed+q.Archived == n
	}, 60*time.Second, 50*time.Millisecond)

	q, err := insp.GetQueueInfo("default")
	require.NoError(t, err)
	require.Equal(t, n, q.Completed)
	require.Zero(t, q.Archived, "nothing dead-lettered")
	for _, k := range keys {
		info, err := insp.GetTaskInfo("default", k)
		require.NoError(t, err)
		require.Zero(t, info.Retried, "waiting for the budget must not spend a retry")
	}

	resp, err := http.Get(sim.URL + "/_sim/log")
	require.NoError(t, err)
	defer resp.Body.Close()
	var log []struct {
		Time time.Time `json:"time"`
		Op   string    `json:"op"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&log))
	var times []time.Time
	for _, e := range log {
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
	require.LessOrEqual(t, maxInWindow, limit+1)
	require.GreaterOrEqual(t, times[n-1].Sub(times[0]), time.Duration(n-limit-1)*time.Second/limit,
		"the calls are paced, not bunched")
}
