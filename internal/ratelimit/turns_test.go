package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/ratelimit"
	"github.com/meetops/meetops/internal/redistest"
)

// turnsBundle is one group at 20/s (a slot every 50 ms) on a private
// Redis, asked by two limiters as two workers would.
type turnsBundle struct {
	a, b  *ratelimit.Limiter
	group string
}

func setupTurns(t *testing.T) *turnsBundle {
	t.Helper()
	rdb := redistest.Client(t)
	limits := map[string]ratelimit.Limit{"rtc_rooms": {Rate: 20, Period: time.Second}}
	return &turnsBundle{a: ratelimit.New(rdb, limits, ratelimit.Observer{}), b: ratelimit.New(rdb, limits, ratelimit.Observer{}), group: "rtc_rooms"}
}

func (b *turnsBundle) ask(t *testing.T, l *ratelimit.Limiter, key string, prio int) time.Duration {
	t.Helper()
	w, err := l.Allow(context.Background(), b.group, key, prio)
	require.NoError(t, err)
	return w
}

// A task of a higher-priority queue gets the next slot ahead of a
// lower-priority one that asked first, whichever worker asks first.
func TestHigherPriorityTakesTheNextSlot(t *testing.T) {
	t.Parallel()
	b := setupTurns(t)
	require.Zero(t, b.ask(t, b.a, "first", 3), "the budget is free")
	low := b.ask(t, b.a, "low", 3)
	require.Positive(t, low)
	high := b.ask(t, b.b, "high", 6)
	require.Positive(t, high)
	require.LessOrEqual(t, high, low+5*time.Millisecond, "the high one's turn is the next slot")

	time.Sleep(high) // the wait the limiter prescribed: the behaviour under test
	// The low one asks first, on the other worker: the slot is the high one's.
	require.Positive(t, b.ask(t, b.a, "low", 3), "held back while the higher-priority task is due")
	require.Zero(t, b.ask(t, b.b, "high", 6))
}

// Within a priority, first come first served, and each waiter is told its
// own turn: the second waits one interval more than the first.
func TestWaitersAreToldTheirTurn(t *testing.T) {
	t.Parallel()
	b := setupTurns(t)
	require.Zero(t, b.ask(t, b.a, "k0", 3))
	w1 := b.ask(t, b.a, "k1", 3)
	w2 := b.ask(t, b.b, "k2", 3)
	w3 := b.ask(t, b.a, "k3", 3)
	require.InDelta(t, float64(w1+50*time.Millisecond), float64(w2), float64(10*time.Millisecond))
	require.InDelta(t, float64(w2+50*time.Millisecond), float64(w3), float64(10*time.Millisecond))

	// Asking again keeps the place (it is not a new arrival).
	require.InDelta(t, float64(w2), float64(b.ask(t, b.b, "k2", 3)), float64(10*time.Millisecond))

	// k2 asking before its turn (k1 is due) does not jump the queue.
	time.Sleep(w1)
	require.Positive(t, b.ask(t, b.b, "k2", 3))
	require.Zero(t, b.ask(t, b.a, "k1", 3))
}

// A waiter that never comes back (its worker died) holds the others back
// only while it is due, then stops blocking.
func TestAWaiterThatDoesNotComeBackStopsBlocking(t *testing.T) {
	t.Parallel()
	b := setupTurns(t)
	require.Zero(t, b.ask(t, b.a, "k0", 3))
	w := b.ask(t, b.a, "ghost", 9)
	require.Positive(t, w)
	// Well past its turn plus the lateness allowed (one interval and a
	// second), the next task goes.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := b.ask(t, b.b, "alive", 3)
		if got == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "still blocked by a waiter that is gone")
		time.Sleep(got) // the limiter's own answer: when to ask again
	}
}

// Lower priorities are not starved: with a higher-priority task due at
// every slot, a lower one still gets about 1 slot in DefaultShare.
func TestLowerPrioritiesGetTheirShare(t *testing.T) {
	t.Parallel()
	b := setupTurns(t)
	const slots = 40
	var lowGot, highGot, n int
	lowKey := "low-0"
	for lowGot+highGot < slots {
		hk := fmt.Sprintf("high-%d", n)
		wh := b.ask(t, b.a, hk, 6)
		if wh == 0 {
			highGot++
			n++
		}
		wl := b.ask(t, b.b, lowKey, 1)
		if wl == 0 {
			lowGot++
			lowKey = fmt.Sprintf("low-%d", lowGot)
		}
		next := 50 * time.Millisecond
		if wh > 0 {
			next = min(next, wh)
		}
		time.Sleep(next)
	}
	require.GreaterOrEqual(t, lowGot, slots/ratelimit.DefaultShare-1, "low got %d of %d slots", lowGot, slots)
	require.GreaterOrEqual(t, highGot, slots*7/10, "high got %d of %d slots", highGot, slots)
}
