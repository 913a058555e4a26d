package groupcommit_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/groupcommit"
	"github.com/meetops/meetops/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// pipelines records the size of every pipeline sent on a client (but
// those go-redis sends to set up a new connection), and holds the first
// one until release is closed.
type pipelines struct {
	mu      sync.Mutex
	sizes   []int
	entered chan struct{} // closed when the first pipeline is held
	release chan struct{}
	once    sync.Once
}

func (p *pipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (p *pipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (p *pipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && connInit(cmds[0].Name()) {
			return next(ctx, cmds) // a new connection's set-up, not a round trip of the group's
		}
		p.mu.Lock()
		p.sizes = append(p.sizes, len(cmds))
		first := len(p.sizes) == 1
		p.mu.Unlock()
		if first && p.release != nil {
			p.once.Do(func() { close(p.entered) })
			<-p.release
		}
		return next(ctx, cmds)
	}
}

func connInit(name string) bool {
	switch name {
	case "hello", "auth", "select", "client":
		return true
	}
	return false
}

func (p *pipelines) Sizes() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sizes)
}

type testBundle struct {
	rdb   *redis.Client
	group *groupcommit.Group
	pipes *pipelines
}

// setup returns a group on a private client whose first pipeline is held
// until release (when hold) and whose script calls go through the group
// (when hook), except those on the key "solo".
func setup(t *testing.T, hold, hook bool) *testBundle {
	t.Helper()
	rdb := redistest.Client(t)
	p := &pipelines{}
	if hold {
		p.entered, p.release = make(chan struct{}), make(chan struct{})
	}
	rdb.AddHook(p)
	g := groupcommit.New(rdb)
	if hook {
		rdb.AddHook(g.Hook(func(cmd redis.Cmder) bool {
			a := cmd.Args()
			return len(a) > 3 && a[3] == "solo"
		}))
	}
	return &testBundle{rdb: rdb, group: g, pipes: p}
}

// waitPending waits until n callers queue behind the held round trip.
func (tb *testBundle) waitPending(t *testing.T, n int) {
	t.Helper()
	<-tb.pipes.entered
	require.Eventually(t, func() bool { return groupcommit.Pending(tb.group) == n }, 5*time.Second, time.Millisecond)
}

// Callers arriving while a round trip is in flight share the next one,
// and each reads its own command's result.
func TestCallersWaitingShareTheNextRoundTrip(t *testing.T) {
	t.Parallel()
	tb := setup(t, true, false)
	ctx := context.Background()
	const n = 10
	got := make(chan int64, n)
	incr := func() {
		var c *redis.IntCmd
		tb.group.Do(ctx, func(p redis.Pipeliner) { c = p.Incr(ctx, "n") })
		got <- c.Val()
	}
	go incr()
	<-tb.pipes.entered
	for range n - 1 {
		go incr()
	}
	tb.waitPending(t, n-1)
	close(tb.pipes.release)
	var vals []int64
	for range n {
		vals = append(vals, <-got)
	}
	slices.Sort(vals)
	require.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, vals)
	require.Equal(t, []int{1, n - 1}, tb.pipes.Sizes(), "one round trip for the first caller, one for all the others")
}

// A caller alone pays one round trip, as without a group.
func TestCallerAloneSendsAtOnce(t *testing.T) {
	t.Parallel()
	tb := setup(t, false, false)
	ctx := context.Background()
	var c *redis.StatusCmd
	tb.group.Do(ctx, func(p redis.Pipeliner) { c = p.Set(ctx, "k", "v", 0) })
	require.NoError(t, c.Err())
	require.Equal(t, "v", tb.rdb.Get(ctx, "k").Val())
	require.Equal(t, []int{1}, tb.pipes.Sizes())
}

// A caller whose context was canceled while it waited still sends the
// round trip it is due to send, the other callers' commands in it.
func TestCanceledCallerDoesNotFailTheOthers(t *testing.T) {
	t.Parallel()
	tb := setup(t, true, false)
	ctx := context.Background()
	first := make(chan struct{})
	go func() {
		tb.group.Do(ctx, func(p redis.Pipeliner) { p.Incr(ctx, "first") })
		close(first)
	}()
	<-tb.pipes.entered
	canceled, cancel := context.WithCancel(ctx)
	results := make(chan error, 2)
	go func() {
		var c *redis.IntCmd
		tb.group.Do(canceled, func(p redis.Pipeliner) { c = p.Incr(canceled, "a") })
		results <- c.Err()
	}()
	tb.waitPending(t, 1) // the canceled caller is first in line: it sends the next round trip
	go func() {
		var c *redis.IntCmd
		tb.group.Do(ctx, func(p redis.Pipeliner) { c = p.Incr(ctx, "b") })
		results <- c.Err()
	}()
	tb.waitPending(t, 2)
	cancel()
	close(tb.pipes.release)
	<-first
	require.NoError(t, <-results)
	require.NoError(t, <-results)
	require.Equal(t, "1", tb.rdb.Get(ctx, "a").Val())
	require.Equal(t, "1", tb.rdb.Get(ctx, "b").Val())
	require.Equal(t, []int{1, 2}, tb.pipes.Sizes())
}

// The hook sends script calls through the group (a script unknown to
// Redis too: go-redis's EVAL fallback after NOSCRIPT), and every other
// command, the scripts alone names and those whose context cannot end, as
// they came.
func TestHookSendsScriptCallsThroughTheGroup(t *testing.T) {
	t.Parallel()
	tb := setup(t, false, true)
	ctx := t.Context() // a context that can end: see the last check

	v, err := tb.rdb.Eval(ctx, "return KEYS[1]", []string{"a"}).Result()
	require.NoError(t, err)
	require.Equal(t, "a", v)
	require.Equal(t, []int{1}, tb.pipes.Sizes())

	require.NoError(t, tb.rdb.Set(ctx, "k", "v", 0).Err())
	v, err = tb.rdb.Eval(ctx, "return KEYS[1]", []string{"solo"}).Result()
	require.NoError(t, err)
	require.Equal(t, "solo", v)
	require.Equal(t, []int{1}, tb.pipes.Sizes(), "SET and the solo script go alone")

	fresh := "fresh " + strconv.FormatInt(time.Now().UnixNano(), 10) // a script Redis has not seen
	s := redis.NewScript("return '" + fresh + "'")
	v, err = s.Run(ctx, tb.rdb, []string{"b"}).Result()
	require.NoError(t, err)
	require.Equal(t, fresh, v)
	require.Equal(t, []int{1, 1, 1}, tb.pipes.Sizes(), "EVALSHA refused with NOSCRIPT, then EVAL")

	v, err = tb.rdb.Eval(context.Background(), "return KEYS[1]", []string{"c"}).Result()
	require.NoError(t, err)
	require.Equal(t, "c", v)
	require.Equal(t, []int{1, 1, 1}, tb.pipes.Sizes(), "a script whose context cannot end goes alone")
}

// Script calls sharing a round trip each get their own reply: one
// script's error is not the others'.
func TestScriptErrorIsItsOwn(t *testing.T) {
	t.Parallel()
	tb := setup(t, true, true)
	ctx := t.Context()
	go func() { _ = tb.rdb.Eval(ctx, "return 0", []string{"first"}).Err() }()
	<-tb.pipes.entered
	bad, good := make(chan error, 1), make(chan any, 1)
	go func() { bad <- tb.rdb.Eval(ctx, "return redis.error_reply('boom')", []string{"x"}).Err() }()
	tb.waitPending(t, 1)
	go func() { good <- tb.rdb.Eval(ctx, "return 'fine'", []string{"y"}).Val() }()
	tb.waitPending(t, 2)
	close(tb.pipes.release)
	require.ErrorContains(t, <-bad, "boom")
	require.Equal(t, "fine", <-good)
	require.Equal(t, []int{1, 2}, tb.pipes.Sizes())
}

// On Redis Cluster a shared round trip may hold scripts of several slots;
// each runs on its own node.
func TestHookOnCluster(t *testing.T) {
	t.Parallel()
	cc := redistest.SharedCluster(t).Client(t)
	g := groupcommit.New(cc)
	cc.AddHook(g.Hook(nil))
	ctx := t.Context()
	keys := []string{"{a}k", "{b}k", "{c}k", "{d}k", "{e}k", "{f}k", "{g}k", "{h}k"}
	var wg sync.WaitGroup
	errs := make(chan error, len(keys))
	for _, k := range keys {
		wg.Go(func() {
			v, err := cc.Eval(ctx, "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])", []string{k}, "v"+k).Result()
			if err == nil && v != "v"+k {
				err = redis.ErrClosed
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, k := range keys {
		require.Equal(t, "v"+k, cc.Get(ctx, k).Val())
	}
}

// Once every caller of a round trip has given up, the round trip ends
// with their contexts' error instead of go-redis's retries running on
// against a Redis that is gone.
func TestRoundTripEndsWhenEveryCallerGaveUp(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: every try fails, and go-redis retries
	// for about 20 s (200 retries, 100 ms apart) unless the context ends.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: 200,
		MinRetryBackoff: 100 * time.Millisecond, MaxRetryBackoff: 100 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	g := groupcommit.New(rdb)
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			var c *redis.IntCmd
			g.Do(ctx, func(p redis.Pipeliner) { c = p.Incr(ctx, "n") })
			errs <- c.Err()
		}()
	}
	cancel()
	require.ErrorIs(t, <-errs, context.Canceled)
	require.ErrorIs(t, <-errs, context.Canceled)
}
