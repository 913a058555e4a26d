package executor_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/breaker"
	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/tasks"
)

// An upstream answering 503 to every dismissal: once MinAttempts calls
// failed, the open breaker lets through one probe per interval (plus the
// calls already in flight), the tasks wait without spending retries, and
// all complete once the upstream recovers.
func TestOpenBreakerStopsCallsAndSpendsNoRetries(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noServer: true})
	s := breaker.Settings{Threshold: 50, MinAttempts: 3, Window: 10 * time.Second, ProbeInterval: 300 * time.Millisecond, CloseAfter: 1}
	b.breaker = breaker.New(b.rdb, breaker.Options{Settings: s})
	require.NoError(t, b.sim.SetFault("dismiss", cloudsim.Fault{Rate: 1, Fail: "503"}))
	b.startServer(t, b.api, setupOpts{})
	const n, concurrency = 10, 4 // startServer's concurrency

	var keys []string
	for i := range n {
		keys = append(keys, b.enqueue(t, tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: fmt.Sprintf("room-%03d", i+1)}, tasks.TaskOptions{}))
	}
	require.Eventually(t, func() bool {
		_, wait, err := b.breaker.Allow(context.Background(), tasks.GroupRTCRooms)
		return err == nil && wait > 0
	}, 10*time.Second, 5*time.Millisecond, "the breaker opens")
	outage := 1500 * time.Millisecond
	<-time.After(outage) // the outage's length, not a synchronisation
	calls := b.sim.Stats().Count("dismiss")
	b.sim.ClearFaults()

	for _, key := range keys {
		info := b.wait(t, "default", key)
		require.Equal(t, asynq.TaskStateCompleted, info.State, key)
	}
	retried := 0
	for _, key := range keys {
		info, err := b.insp.GetTaskInfo("default", key)
		require.NoError(t, err)
		retried += info.Retried
	}
	bound := s.MinAttempts + concurrency + int(outage/s.ProbeInterval) + 2
	t.Logf("%d dismiss calls during the outage (bound %d); %d retries spent", calls, bound, retried)
	require.LessOrEqual(t, calls, bound, "an open breaker stops the calls")
	require.LessOrEqual(t, retried, s.MinAttempts-1, "only failures met by a closed breaker spend a retry")
}

// The breaker is asked before the rate limiter: a task of an open group
// is deferred without taking a call slot, and asks the limiter once the
// group recovered, as its probe.
func TestOpenBreakerTakesNoRateLimitSlot(t *testing.T) {
	t.Parallel()
	lim := &scriptedLimiter{}
	b := setup(t, setupOpts{noServer: true})
	s := breaker.Settings{MinAttempts: 1, ProbeInterval: 1500 * time.Millisecond, CloseAfter: 1}
	br := breaker.New(b.rdb, breaker.Options{Settings: s})
	b.breaker = br
	opened := time.Now() // before the write that opens it, whose clock (Redis's) times the probe
	require.Positive(t, br.Record(context.Background(), breaker.Ticket{Group: tasks.GroupRTCRooms}, breaker.Failure), "open")
	b.startServer(t, b.api, setupOpts{limiter: lim})

	key := b.enqueue(t, tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: "room-003"}, tasks.TaskOptions{})
	info := b.wait(t, "default", key)
	require.Equal(t, asynq.TaskStateCompleted, info.State)
	require.Zero(t, info.Retried, "waiting for the breaker spends no retry")
	asks := lim.asked()
	require.Len(t, asks, 1, "the limiter is asked only by the call that went")
	require.GreaterOrEqual(t, asks[0].at.Sub(opened), s.ProbeInterval, "and only once the probe was due")
	require.Equal(t, 1, b.sim.Stats().Count("dismiss"))
}
