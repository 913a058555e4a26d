package executor_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/tasks"
)

// scriptedLimiter answers Allow with the waits of its script, then 0, and
// records what it was asked.
type scriptedLimiter struct {
	mu     sync.Mutex
	script []time.Duration
	asks   []ask
}

type ask struct {
	group, key string
	priority   int
	at         time.Time
}

func (l *scriptedLimiter) Allow(_ context.Context, group, key string, priority int) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asks = append(l.asks, ask{group, key, priority, time.Now()})
	if len(l.script) == 0 {
		return 0, nil
	}
	w := l.script[0]
	l.script = l.script[1:]
	return w, nil
}

func (l *scriptedLimiter) Throttled(context.Context, string, time.Duration) {}

func (l *scriptedLimiter) asked() []ask {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ask(nil), l.asks...)
}

// A task told its turn is far off is rescheduled to come back
// ComeBackEarly before it, without spending a retry; told its turn is
// near, it waits in place. The limiter hears the task's key and its
// queue's weight.
func TestPacingComesBackAheadOfTheTurn(t *testing.T) {
	t.Parallel()
	lim := &scriptedLimiter{script: []time.Duration{3 * time.Second, 150 * time.Millisecond}}
	b := setup(t, setupOpts{queues: map[string]int{"critical": 6, "default": 3}, limiter: lim, comeBackEarly: 2900 * time.Millisecond})

	key := b.enqueue(t, tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: "room-001"}, tasks.TaskOptions{Queue: "critical"})
	info := b.wait(t, "critical", key)
	require.Equal(t, "completed", info.State.String())
	require.Zero(t, info.Retried, "waiting for a turn spends no retry")

	b.mu.Lock()
	delays := append([]delayRecord(nil), b.delays...)
	b.mu.Unlock()
	require.Equal(t, []delayRecord{{0, 100 * time.Millisecond}}, delays,
		"deferred once, for the wait less ComeBackEarly; the near turn is waited in place")

	asks := lim.asked()
	require.Len(t, asks, 3)
	for _, a := range asks {
		require.Equal(t, ask{"rtc_rooms", key, 6, a.at}, a)
	}
	require.GreaterOrEqual(t, asks[2].at.Sub(asks[1].at), 150*time.Millisecond, "the near turn was waited for")
}
