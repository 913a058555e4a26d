package ledger_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/ledger"
	"github.com/meetops/meetops/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

type testBundle struct {
	rdb *redis.Client
	l   *ledger.Ledger
}

func setup(t *testing.T, o ledger.Options) *testBundle {
	t.Helper()
	rdb := redistest.Client(t)
	return &testBundle{rdb: rdb, l: ledger.New(rdb, o)}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, ledger.Options{})

	prev, lease, err := b.l.Begin(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, ledger.Entry{}, prev, "a new key has no history")
	e, err := b.l.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, ledger.Started, e.State)
	require.Equal(t, 1, e.Attempts)

	require.NoError(t, b.l.Release(ctx, lease)) // transient failure: stays started
	prev, lease, err = b.l.Begin(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, ledger.Started, prev.State, "a retry must learn an earlier attempt may have reached upstream")
	require.Equal(t, 1, prev.Attempts)

	require.NoError(t, b.l.Succeed(ctx, lease, []byte(`{"outcome":"succeeded"}`), ledger.HashField{}))
	prev, lease, err = b.l.Begin(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, ledger.Succeeded, prev.State)
	require.JSONEq(t, `{"outcome":"succeeded"}`, string(prev.Result))
	require.Equal(t, 2, prev.Attempts)
	e, err = b.l.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, 2, e.Attempts, "finding a succeeded entry is not an attempt")
	require.NoError(t, b.l.Release(ctx, lease))
	require.Error(t, b.l.Reset(ctx, "k"), "a succeeded operation must never be reset")

	ttl, err := b.rdb.PTTL(ctx, "meetops:l:{k}").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 23*time.Hour, "entries expire with the dedup window")
}

func TestSucceedWritesTheResultHashInTheSameRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, ledger.Options{TTL: time.Hour})
	_, lease, err := b.l.Begin(ctx, "k2")
	require.NoError(t, err)
	// As on a fresh or restarted Redis: the finish script is not loaded.
	require.NoError(t, b.rdb.ScriptFlush(ctx).Err())
	require.NoError(t, b.l.Succeed(ctx, lease, []byte(`{"outcome":"succeeded","status":202}`),
		ledger.HashField{Key: "asynq:{q}:t:k2", Field: "result", Value: []byte(`{"outcome":"succeeded","status":202}`)}))
	v, err := b.rdb.HGet(ctx, "asynq:{q}:t:k2", "result").Result()
	require.NoError(t, err)
	require.JSONEq(t, `{"outcome":"succeeded","status":202}`, v)
	e, err := b.l.Get(ctx, "k2")
	require.NoError(t, err)
	require.Equal(t, ledger.Entry{State: ledger.Succeeded, Attempts: 1, Result: []byte(`{"outcome":"succeeded","status":202}`)}, e)
	n, err := b.rdb.Exists(ctx, "meetops:lease:{k2}").Result()
	require.NoError(t, err)
	require.Zero(t, n, "the lease is released")
	ttl, err := b.rdb.PTTL(ctx, "meetops:l:{k2}").Result()
	require.NoError(t, err)
	require.InDelta(t, time.Hour, ttl, float64(time.Minute))
}

func TestFailedEntryIsResetStartedIsKept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, ledger.Options{})

	_, lease, err := b.l.Begin(ctx, "dead")
	require.NoError(t, err)
	require.NoError(t, b.l.Fail(ctx, lease))
	require.NoError(t, b.l.Reset(ctx, "dead"))
	e, err := b.l.Get(ctx, "dead")
	require.NoError(t, err)
	require.Equal(t, ledger.None, e.State, "a requeued definitive dead letter starts afresh")

	_, lease, err = b.l.Begin(ctx, "exhausted")
	require.NoError(t, err)
	require.NoError(t, b.l.Release(ctx, lease))
	require.NoError(t, b.l.Reset(ctx, "exhausted"))
	e, err = b.l.Get(ctx, "exhausted")
	require.NoError(t, err)
	require.Equal(t, ledger.Started, e.State, "attempts that may have reached upstream are remembered")
}

func TestLeaseExcludesConcurrentWorkers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, ledger.Options{})
	var won, held atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 20 {
		wg.Go(func() {
			<-start
			_, _, err := b.l.Begin(ctx, "race")
			switch err {
			case nil:
				won.Add(1)
			case ledger.ErrLeaseHeld:
				held.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	require.Equal(t, int32(1), won.Load())
	require.Equal(t, int32(19), held.Load())
}

func TestLeaseExpiresAndStaleReleaseIsHarmless(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, ledger.Options{Lease: 50 * time.Millisecond})
	stale, _, fresh := b.outlive(t, "k")
	require.NoError(t, b.l.Release(ctx, stale), "releasing a lease we lost must not steal the new one")
	_, _, err := b.l.Begin(ctx, "k")
	require.ErrorIs(t, err, ledger.ErrLeaseHeld)
	require.NoError(t, b.l.Release(ctx, fresh))
}

// Succeed deletes the lease without checking it is still ours (it is
// plain commands, not a script). A stale Succeed, after the lease ran out
// and another attempt began, must still leave nothing to run: the next
// Begin finds the entry succeeded.
func TestStaleSucceedLeavesNothingToRunAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, ledger.Options{Lease: 50 * time.Millisecond})
	stale, prev, fresh := b.outlive(t, "k")
	require.Equal(t, ledger.Started, prev.State)

	require.NoError(t, b.l.Succeed(ctx, stale, []byte("s|202||"), ledger.HashField{}))
	next, third, err := b.l.Begin(ctx, "k")
	require.NoError(t, err, "the stale Succeed released the lease")
	require.Equal(t, ledger.Succeeded, next.State, "whoever begins next must complete without calling upstream")
	require.Equal(t, 1, next.Attempts, "the entry is the succeeding attempt's")
	require.NoError(t, b.l.Release(ctx, third))
	// The attempt running meanwhile ends in a Release (a transient error):
	// the entry still says succeeded.
	require.NoError(t, b.l.Release(ctx, fresh))
	e, err := b.l.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, ledger.Succeeded, e.State)
}

func TestKeepAliveHoldsTheLeaseBeyondItsLifetime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, ledger.Options{Lease: 150 * time.Millisecond})
	_, lease, err := b.l.Begin(ctx, "long")
	require.NoError(t, err)
	stop := b.l.KeepAlive(ctx, lease)
	// Well past three lifetimes, the lease is still held.
	deadline := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(deadline) {
		_, _, err := b.l.Begin(ctx, "long")
		require.ErrorIs(t, err, ledger.ErrLeaseHeld)
		time.Sleep(50 * time.Millisecond) // sampling over a window, not synchronising
	}
	stop()
	// Without renewal it runs out.
	require.Eventually(t, func() bool {
		_, _, err := b.l.Begin(ctx, "long")
		return err == nil
	}, 2*time.Second, 10*time.Millisecond)
}

// go-redis resends commands whose reply was lost; the resend must get the
// first send's answer, not "lease held" and not its own "started": for a
// first attempt (no entry before) and for a later one.
func TestBeginResentAfterALostReplyAnswersTheSame(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, ledger.Options{})

	prev, lease, err := b.l.Begin(ctx, "k2")
	require.NoError(t, err)
	require.Equal(t, ledger.Entry{}, prev)
	again, err := ledger.ResendBegin(ctx, b.l, "k2", lease)
	require.NoError(t, err)
	require.Equal(t, ledger.Entry{}, again, "the resend must not take its own marker for an earlier attempt")
	e, err := b.l.Get(ctx, "k2")
	require.NoError(t, err)
	require.Equal(t, ledger.Entry{State: ledger.Started, Attempts: 1}, e)
	require.NoError(t, b.l.Unbegin(ctx, lease))
	e, err = b.l.Get(ctx, "k2")
	require.NoError(t, err)
	require.Equal(t, ledger.Entry{}, e, "undone after the resend too")

	_, lease, err = b.l.Begin(ctx, "k3")
	require.NoError(t, err)
	require.NoError(t, b.l.Release(ctx, lease)) // an earlier attempt: R1

	prev, lease, err = b.l.Begin(ctx, "k3")
	require.NoError(t, err)
	require.Equal(t, ledger.Entry{State: ledger.Started, Attempts: 1}, prev)
	again, err = ledger.ResendBegin(ctx, b.l, "k3", lease)
	require.NoError(t, err)
	require.Equal(t, prev, again)
	e, err = b.l.Get(ctx, "k3")
	require.NoError(t, err)
	require.Equal(t, 2, e.Attempts, "a resend is not another attempt")
}

// Lease tokens are compared by prefix in the scripts: no token may be a
// prefix of a later one (attempt 1's token of attempt 12's), and none
// repeats.
func TestLeaseTokensAreUniqueAndPrefixFree(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	var first string
	for i := range 5000 {
		tok := ledger.NewToken()
		require.False(t, seen[tok], "token %q repeated", tok)
		seen[tok] = true
		if i == 0 {
			first = tok
		}
		require.Len(t, tok, len(first))
		if i > 0 {
			require.False(t, strings.HasPrefix(tok, first), "%q starts with %q", tok, first)
		}
	}
}

// An attempt that never reached upstream is undone: the entry is as Begin
// found it (none, or an earlier attempt's), so the next attempt is not
// taken for a retry of one that may have taken effect. A lease lost to
// another attempt leaves that attempt's entry alone.
func TestUnbeginRestoresTheEntry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, ledger.Options{Lease: 200 * time.Millisecond})

	_, lease, err := b.l.Begin(ctx, "new")
	require.NoError(t, err)
	require.NoError(t, b.l.Unbegin(ctx, lease))
	e, err := b.l.Get(ctx, "new")
	require.NoError(t, err)
	require.Equal(t, ledger.Entry{}, e, "no entry, as before")
	prev, lease, err := b.l.Begin(ctx, "new")
	require.NoError(t, err, "the lease was released")
	require.Equal(t, ledger.Entry{}, prev)
	require.NoError(t, b.l.Release(ctx, lease))

	// After a real attempt (started, 1), an undone one leaves R1.
	_, lease, err = b.l.Begin(ctx, "new")
	require.NoError(t, err)
	require.NoError(t, b.l.Unbegin(ctx, lease))
	e, err = b.l.Get(ctx, "new")
	require.NoError(t, err)
	require.Equal(t, ledger.Entry{State: ledger.Started, Attempts: 1}, e)

	// A lease that expired and was taken by another attempt: untouched.
	_, stale, err := b.l.Begin(ctx, "taken")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, l, err := b.l.Begin(ctx, "taken")
		return err == nil && l != nil
	}, 5*time.Second, 20*time.Millisecond)
	require.NoError(t, b.l.Unbegin(ctx, stale))
	e, err = b.l.Get(ctx, "taken")
	require.NoError(t, err)
	require.Equal(t, ledger.Entry{State: ledger.Started, Attempts: 2}, e, "the other attempt's entry stays")
}

// outlive begins an attempt on key, waits for its lease to expire (a
// poll with a deadline, no fixed sleep) and begins a second one: the first
// is stale. prev is the entry as the second Begin found it.
func (b *testBundle) outlive(t *testing.T, key string) (stale *ledger.Lease, prev ledger.Entry, fresh *ledger.Lease) {
	t.Helper()
	ctx := context.Background()
	_, stale, err := b.l.Begin(ctx, key)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		n, err := b.rdb.Exists(ctx, "meetops:lease:{"+key+"}").Result()
		return err == nil && n == 0
	}, 5*time.Second, 10*time.Millisecond)
	prev, fresh, err = b.l.Begin(ctx, key)
	require.NoError(t, err, "a crashed worker's lease must expire")
	return stale, prev, fresh
}

// pipelines counts the pipelines a client sends.
type pipelines struct{ n atomic.Int32 }

func (*pipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*pipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *pipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// Concurrent attempts share round trips, and each still gets its own
// answers: every key's entry is its own result.
func TestConcurrentAttemptsShareRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, ledger.Options{})
	var sent pipelines
	b.rdb.AddHook(&sent)
	const n = 50
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			key := "c" + strconv.Itoa(i)
			_, lease, err := b.l.Begin(ctx, key)
			if err != nil {
				t.Error(err)
				return
			}
			if err := b.l.Succeed(ctx, lease, []byte(key), ledger.HashField{}); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		key := "c" + strconv.Itoa(i)
		e, err := b.l.Get(ctx, key)
		require.NoError(t, err)
		require.Equal(t, ledger.Entry{State: ledger.Succeeded, Attempts: 1, Result: []byte(key)}, e)
	}
	require.Less(t, int(sent.n.Load()), 2*n, "%d Begins and %d Succeeds in as many round trips: none shared", n, n)
}

// stealAfter hands a key's lease to another token once the next pipeline
// that touches it is answered: a lease lost between Begin's two round trips.
type stealAfter struct {
	rdb   *redis.Client
	lease string
	armed atomic.Bool
}

func (*stealAfter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*stealAfter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *stealAfter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if h.armed.CompareAndSwap(true, false) {
			if serr := h.rdb.Set(ctx, h.lease, "someone-else", time.Minute).Err(); serr != nil {
				return serr
			}
		}
		return err
	}
}

// A retry counts itself in a second round trip, only while the lease is
// still its own: a lease lost in between leaves the entry as it was. A
// retry after a failed attempt is attempt 2, started.
func TestRetryCountsItselfOnlyWhileHoldingTheLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, ledger.Options{})

	_, lease, err := b.l.Begin(ctx, "f")
	require.NoError(t, err)
	require.NoError(t, b.l.Fail(ctx, lease))
	prev, lease, err := b.l.Begin(ctx, "f")
	require.NoError(t, err)
	require.Equal(t, ledger.Entry{State: ledger.Failed, Attempts: 1}, prev)
	e, err := b.l.Get(ctx, "f")
	require.NoError(t, err)
	require.Equal(t, ledger.Entry{State: ledger.Started, Attempts: 2}, e)
	require.NoError(t, b.l.Release(ctx, lease))

	steal := &stealAfter{rdb: b.rdb, lease: "meetops:lease:{f}"}
	b.rdb.AddHook(steal)
	steal.armed.Store(true)
	_, _, err = b.l.Begin(ctx, "f")
	require.ErrorIs(t, err, ledger.ErrLeaseHeld, "the lease was lost before the attempt was counted")
	e, err = b.l.Get(ctx, "f")
	require.NoError(t, err)
	require.Equal(t, ledger.Entry{State: ledger.Started, Attempts: 2}, e, "not counted by an attempt without the lease")
}
