package breaker_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/breaker"
	"github.com/meetops/meetops/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const group = "rtc_rooms"

var ctx = context.Background()

// transitions counts the transitions the observers of a fleet were told.
type transitions struct {
	mu sync.Mutex
	n  map[[2]breaker.State]int
}

func (tr *transitions) observer() breaker.Observer {
	return breaker.Observer{Transition: func(g string, from, to breaker.State, _ breaker.Window) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if tr.n == nil {
			tr.n = map[[2]breaker.State]int{}
		}
		tr.n[[2]breaker.State{from, to}]++
	}}
}

func (tr *transitions) count(from, to breaker.State) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.n[[2]breaker.State{from, to}]
}

// fleet is two workers' breakers on one private Redis database.
func fleet(t *testing.T, s breaker.Settings, refresh time.Duration) (a, b *breaker.Breaker, tr *transitions, rdb *redis.Client) {
	t.Helper()
	rdb = redistest.Client(t)
	tr = &transitions{}
	o := breaker.Options{Settings: s, Observer: tr.observer(), Refresh: refresh}
	return breaker.New(rdb, o), breaker.New(rdb, o), tr, rdb
}

func allow(t *testing.T, br *breaker.Breaker) (breaker.Ticket, time.Duration) {
	t.Helper()
	tk, wait, err := br.Allow(ctx, group)
	require.NoError(t, err)
	return tk, wait
}

var fast = breaker.Settings{Threshold: 50, MinAttempts: 4, Window: 10 * time.Second, ProbeInterval: 300 * time.Millisecond, CloseAfter: 2}

// Failures counted by one worker open the breaker for the other, which
// learns it at the latest on its own next failure.
func TestFailuresOpenTheBreakerForEveryWorker(t *testing.T) {
	t.Parallel()
	a, b, tr, _ := fleet(t, fast, 200*time.Millisecond)
	tk, wait := allow(t, b)
	require.Zero(t, wait)
	require.Zero(t, tk.Probe)
	for i := range 3 {
		require.Zero(t, a.Record(ctx, breaker.Ticket{Group: group}, breaker.Failure), "failure %d: below MinAttempts", i)
	}
	require.Zero(t, b.Record(ctx, breaker.Ticket{Group: group}, breaker.Success), "3 of 4 failed: 75% ≥ 50%, but a success never opens it")
	wait = a.Record(ctx, breaker.Ticket{Group: group}, breaker.Failure)
	require.Positive(t, wait, "4 of 5 failed: open")
	require.LessOrEqual(t, wait, fast.ProbeInterval)
	_, wait = allow(t, a)
	require.Positive(t, wait, "the worker that opened it stops at once")
	require.Positive(t, b.Record(ctx, breaker.Ticket{Group: group}, breaker.Failure), "the other learns on its next failure")
	_, wait = allow(t, b)
	require.Positive(t, wait)
	require.Equal(t, 1, tr.count(breaker.Closed, breaker.Open), "one transition across the fleet")
}

// A worker that only asks (no failure of its own) stops within Refresh.
func TestAskingWorkerLearnsWithinRefresh(t *testing.T) {
	t.Parallel()
	a, b, _, _ := fleet(t, fast, 100*time.Millisecond)
	_, wait := allow(t, b)
	require.Zero(t, wait)
	for range 4 {
		a.Record(ctx, breaker.Ticket{Group: group}, breaker.Failure)
	}
	start := time.Now()
	require.Eventually(t, func() bool { _, w := allow(t, b); return w > 0 }, 2*time.Second, 5*time.Millisecond)
	require.Less(t, time.Since(start), time.Second)
	_, wait = allow(t, b)
	require.Positive(t, wait)
	_, wait, err := b.Allow(ctx, "rtc_apps")
	require.NoError(t, err)
	require.Zero(t, wait, "another group is not affected")
}

// While the upstream stays down, workers asking as fast as they can get
// one probe per ProbeInterval between them, never two at once.
func TestOneProbePerIntervalAcrossWorkers(t *testing.T) {
	t.Parallel()
	a, b, tr, _ := fleet(t, fast, 50*time.Millisecond)
	for range 4 {
		a.Record(ctx, breaker.Ticket{Group: group}, breaker.Failure)
	}
	var probes, inFlight, overlap atomic.Int64
	const run = 1500 * time.Millisecond
	deadline := time.Now().Add(run)
	var wg sync.WaitGroup
	for i := range 8 {
		br := a
		if i%2 == 1 {
			br = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				tk, wait, err := br.Allow(ctx, group)
				if err != nil {
					t.Error(err)
					return
				}
				if wait > 0 {
					continue // asking again at once: the worst case for the bound
				}
				require.NotZero(t, tk.Probe, "an open breaker lets through probes only")
				probes.Add(1)
				if inFlight.Add(1) > 1 {
					overlap.Add(1)
				}
				inFlight.Add(-1)
				br.Record(ctx, tk, breaker.Failure)
			}
		}()
	}
	wg.Wait()
	n := probes.Load()
	t.Logf("%d probes in %s at one per %s", n, run, fast.ProbeInterval)
	require.Zero(t, overlap.Load(), "never two probes at once")
	require.LessOrEqual(t, n, int64(run/fast.ProbeInterval)+1)
	require.GreaterOrEqual(t, n, int64(run/fast.ProbeInterval)-1, "probes keep coming")
	require.Equal(t, n, int64(tr.count(breaker.Open, breaker.HalfOpen)))
	require.Equal(t, n, int64(tr.count(breaker.HalfOpen, breaker.Open)))
}

// CloseAfter probe successes in a row close the breaker for every worker,
// and a closed breaker counts afresh.
func TestProbeSuccessesCloseIt(t *testing.T) {
	t.Parallel()
	a, b, tr, _ := fleet(t, fast, 50*time.Millisecond)
	for range 4 {
		a.Record(ctx, breaker.Ticket{Group: group}, breaker.Failure)
	}
	probe := func(br *breaker.Breaker) breaker.Ticket {
		var tk breaker.Ticket
		require.Eventually(t, func() bool {
			var wait time.Duration
			tk, wait = allow(t, br)
			return wait == 0
		}, 2*time.Second, 5*time.Millisecond)
		require.NotZero(t, tk.Probe)
		return tk
	}
	tk := probe(b)
	_, wait := allow(t, a)
	require.Positive(t, wait, "one probe at a time")
	require.Positive(t, b.Record(ctx, tk, breaker.Success), "1 of 2 probe successes: still half-open")
	// The other worker's copy of the state may lag Redis's clock by its
	// round trip; within that, not a probe interval, it takes the next probe.
	var tk2 breaker.Ticket
	require.Eventually(t, func() bool { var w time.Duration; tk2, w = allow(t, a); return w == 0 }, fast.ProbeInterval/2, time.Millisecond,
		"after a probe success the next probe goes at once")
	require.NotZero(t, tk2.Probe)
	require.Positive(t, b.Record(ctx, tk, breaker.Success), "the first probe reported again is stale: still half-open")
	require.Zero(t, a.Record(ctx, tk2, breaker.Success), "closed")
	require.Equal(t, 1, tr.count(breaker.HalfOpen, breaker.Closed))
	require.Eventually(t, func() bool { tk, w := allow(t, b); return w == 0 && tk.Probe == 0 }, 2*time.Second, 5*time.Millisecond)
	for range 3 {
		require.Zero(t, a.Record(ctx, breaker.Ticket{Group: group}, breaker.Failure), "the window was emptied on closing")
	}
}

// Two workers whose failures race to open the breaker make one transition.
func TestRacingWorkersMakeOneTransition(t *testing.T) {
	t.Parallel()
	a, b, tr, _ := fleet(t, fast, time.Second)
	var wg sync.WaitGroup
	for i := range 20 {
		br := a
		if i%2 == 1 {
			br = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			br.Record(ctx, breaker.Ticket{Group: group}, breaker.Failure)
		}()
	}
	wg.Wait()
	require.Equal(t, 1, tr.count(breaker.Closed, breaker.Open))
}

// The window forgets failures older than Settings.Window, bucket by
// bucket: three failures, a success 300 ms later (which keeps the window's
// key alive), and a failure once the first three left the 500 ms window
// count two attempts, below MinAttempts.
func TestOldFailuresLeaveTheWindow(t *testing.T) {
	t.Parallel()
	s := fast
	s.Window = 500 * time.Millisecond
	a := breaker.New(redistest.Client(t), breaker.Options{Settings: s, Flush: time.Millisecond})
	start := time.Now()
	for range 3 {
		require.Zero(t, a.Record(ctx, breaker.Ticket{Group: group}, breaker.Failure))
	}
	time.Sleep(time.Until(start.Add(300 * time.Millisecond))) // time passing is the behaviour under test
	require.Zero(t, a.Record(ctx, breaker.Ticket{Group: group}, breaker.Success))
	time.Sleep(time.Until(start.Add(650 * time.Millisecond)))
	require.Zero(t, a.Record(ctx, breaker.Ticket{Group: group}, breaker.Failure), "the first three left the window")
	require.Less(t, time.Since(start), 850*time.Millisecond, "the test ran in time (else the window's key expired)")
}

// The group's state may vanish from Redis (its key expired a day after
// the last transition, or a failover lost it) and count again from
// version 0: a worker that knew a later version follows the new one.
func TestStateLostInRedisStartsAfresh(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	var mu sync.Mutex
	var seen []breaker.State
	a := breaker.New(rdb, breaker.Options{Settings: fast, Refresh: 20 * time.Millisecond, Observer: breaker.Observer{
		State: func(_ string, s breaker.State) { mu.Lock(); seen = append(seen, s); mu.Unlock() }}})
	b := breaker.New(rdb, breaker.Options{Settings: fast})
	last := func() breaker.State { mu.Lock(); defer mu.Unlock(); return seen[len(seen)-1] }
	for range 4 {
		a.Record(ctx, breaker.Ticket{Group: group}, breaker.Failure)
	}
	var tk breaker.Ticket
	require.Eventually(t, func() bool { var w time.Duration; tk, w = allow(t, a); return w == 0 }, 2*time.Second, 5*time.Millisecond)
	a.Record(ctx, tk, breaker.Success)
	require.Eventually(t, func() bool { var w time.Duration; tk, w = allow(t, a); return w == 0 && tk.Probe != 0 }, 2*time.Second, 5*time.Millisecond)
	require.Zero(t, a.Record(ctx, tk, breaker.Success), "closed at version 4")
	require.Equal(t, breaker.Closed, last())

	require.NoError(t, rdb.Del(ctx, "meetops:br:{"+group+"}:state", "meetops:br:{"+group+"}:win").Err())
	for range 4 {
		b.Record(ctx, breaker.Ticket{Group: group}, breaker.Failure)
	}
	require.Eventually(t, func() bool { _, w := allow(t, a); return w > 0 }, 2*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return last() == breaker.Open }, 2*time.Second, 5*time.Millisecond,
		"the worker's copy (and its state gauge) follows the state at version 1")
}

// On Redis Cluster a group's keys share a slot, so its scripts run there
// as on one server: every group opens, probes and closes across workers.
func TestOnRedisCluster(t *testing.T) {
	t.Parallel()
	c := redistest.SharedCluster(t)
	a := breaker.New(c.Client(t), breaker.Options{Settings: fast})
	b := breaker.New(c.Client(t), breaker.Options{Settings: fast})
	for _, g := range []string{"rtc_rooms", "rtc_apps", "meeting_mgmt", "meeting_control", "meeting_vmr"} {
		g := "cluster-test-" + g
		s1, err := c.Slot(ctx, "meetops:br:{"+g+"}:state")
		require.NoError(t, err)
		s2, err := c.Slot(ctx, "meetops:br:{"+g+"}:win")
		require.NoError(t, err)
		require.Equal(t, s1, s2, "one slot per group")
		for range 4 {
			a.Record(ctx, breaker.Ticket{Group: g}, breaker.Failure)
		}
		require.Positive(t, b.Record(ctx, breaker.Ticket{Group: g}, breaker.Failure), "%s: open for the other worker", g)
		var tk breaker.Ticket
		require.Eventually(t, func() bool {
			var wait time.Duration
			var err error
			tk, wait, err = b.Allow(ctx, g)
			return err == nil && wait == 0
		}, 2*time.Second, 5*time.Millisecond)
		require.NotZero(t, tk.Probe)
		b.Record(ctx, tk, breaker.Success)
		require.Eventually(t, func() bool { // a's copy may lag by its round trip
			var wait time.Duration
			var err error
			tk, wait, err = a.Allow(ctx, g)
			return err == nil && wait == 0
		}, 2*time.Second, time.Millisecond)
		require.NotZero(t, tk.Probe)
		require.Zero(t, a.Record(ctx, tk, breaker.Success), "%s: closed", g)
	}
}
