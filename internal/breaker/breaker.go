package breaker

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Ticket is what Allow gave one call, to hand back to Record with the
// call's outcome.
type Ticket struct {
	// Group is the call's rate-limit group; "" for a ticket of no breaker
	// (Record ignores it).
	Group string
	// Probe is not 0 when the call is the group's probe.
	Probe int64
}

// Observer is told what the breaker sees (for metrics and logs); nil
// fields are skipped.
type Observer struct {
	// State is called whenever this worker learns that a group's state
	// differs from what it knew (and the first time it learns it).
	State func(group string, s State)
	// Transition is called once per transition across the fleet: by the
	// worker whose write made it. w is the window that opened it (empty
	// for other transitions).
	Transition func(group string, from, to State, w Window)
}

// Options configure a Breaker.
type Options struct {
	// Settings tune the breaker; zero values are the defaults.
	Settings Settings
	// Observer is told the states and transitions.
	Observer Observer
	// Refresh is how long a worker trusts its copy of a closed or open
	// group's state; default 1s. A half-open group is asked every time.
	Refresh time.Duration
	// Flush is how long successes are counted locally before they are
	// added to the shared window; default 250ms. Failures are added at
	// once.
	Flush time.Duration
}

// Breaker is the circuit breaker of every rate-limit group, shared through
// Redis. It implements the executor.Breaker interface.
type Breaker struct {
	rdb            redis.UniversalClient
	s              Settings
	obs            Observer
	refresh, flush time.Duration

	mu     sync.Mutex
	groups map[string]*view
}

// view is this worker's copy of one group's breaker, and the outcomes it
// has not yet added to the window.
type view struct {
	known    bool
	sh       Shared
	redisAt  time.Time // Redis's clock when read
	localAt  time.Time // ours then
	reading  bool      // a goroutine is reading it from Redis
	attempts int
	failures int
	flushed  time.Time
}

// now estimates Redis's clock.
func (v *view) now(local time.Time) time.Time { return v.redisAt.Add(local.Sub(v.localAt)) }

// New returns a breaker on rdb.
func New(rdb redis.UniversalClient, o Options) *Breaker {
	if o.Refresh <= 0 {
		o.Refresh = time.Second
	}
	if o.Flush <= 0 {
		o.Flush = 250 * time.Millisecond
	}
	return &Breaker{rdb: rdb, s: o.Settings.WithDefaults(), obs: o.Observer, refresh: o.Refresh, flush: o.Flush,
		groups: map[string]*view{}}
}

// Settings returns the settings in force.
func (b *Breaker) Settings() Settings { return b.s }

// maxTries bounds the writes one decision attempts when other workers
// keep changing the state under it.
const maxTries = 4

// Allow asks whether a call of group may go: wait 0 when it may (the
// ticket says whether it is the group's probe), else how long until the
// next probe is due. A closed group is answered from this worker's copy
// of its state, refreshed at most every Options.Refresh.
func (b *Breaker) Allow(ctx context.Context, group string) (Ticket, time.Duration, error) {
	sn, ok, wait := b.cached(group)
	if ok {
		return Ticket{Group: group}, wait, nil
	}
	if sn.now.IsZero() {
		var err error
		if sn, err = b.read(ctx, group, 0, 0); err != nil {
			b.readDone(group)
			return Ticket{}, 0, err
		}
		b.store(group, sn)
	}
	for range maxTries {
		next, d, changed := b.s.Check(sn.sh, sn.now)
		if !changed {
			return Ticket{Group: group, Probe: d.Probe}, d.Wait, nil
		}
		done, cur, err := b.write(ctx, group, sn.sh, next)
		if err != nil {
			return Ticket{}, 0, err
		}
		if done {
			b.transition(group, sn, next)
			return Ticket{Group: group, Probe: d.Probe}, 0, nil
		}
		sn = cur
		b.store(group, sn)
	}
	return Ticket{Group: group}, b.s.ProbeInterval, nil // contended: another worker probes
}

// cached answers from this worker's copy when it can: ok and the wait.
// Otherwise it returns the copy to start from (zero now: read it first).
func (b *Breaker) cached(group string) (sn snapshot, ok bool, wait time.Duration) {
	local := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	v := b.view(group)
	if !v.known {
		v.reading = true
		return snapshot{}, false, 0
	}
	sn = snapshot{sh: v.sh, now: v.now(local)}
	if v.sh.State == HalfOpen {
		return snapshot{}, false, 0 // a probe's outcome comes soon: ask
	}
	if local.Sub(v.localAt) >= b.refresh && !v.reading {
		v.reading = true // this caller refreshes; the others use the copy meanwhile
		return snapshot{}, false, 0
	}
	if _, d, changed := b.s.Check(sn.sh, sn.now); !changed {
		return sn, true, d.Wait
	}
	return sn, false, 0 // a probe is due: try to take it from the copy's version
}

func (b *Breaker) view(group string) *view {
	v := b.groups[group]
	if v == nil {
		v = &view{}
		b.groups[group] = v
	}
	return v
}

// store replaces this worker's copy of group's state with sn.
func (b *Breaker) store(group string, sn snapshot) {
	local := time.Now()
	b.mu.Lock()
	v := b.view(group)
	changed := !v.known || v.sh.State != sn.sh.State
	// Whatever was read last wins, even at a lower version: the state's
	// key may have expired or been lost in a failover, and counts again
	// from version 0. (A read that overtook a newer one is at most one
	// refresh old.)
	v.known, v.sh, v.redisAt, v.localAt = true, sn.sh, sn.now, local
	v.reading = false
	b.mu.Unlock()
	if changed && b.obs.State != nil {
		b.obs.State(group, sn.sh.State)
	}
}

func (b *Breaker) readDone(group string) {
	b.mu.Lock()
	b.view(group).reading = false
	b.mu.Unlock()
}

// transition stores the state this worker wrote over prev and tells the
// observer.
func (b *Breaker) transition(group string, prev snapshot, next Shared) {
	b.store(group, snapshot{sh: next, now: prev.now})
	if next.State != prev.sh.State && b.obs.Transition != nil {
		w := Window{}
		if next.State == Open && prev.sh.State == Closed {
			w = prev.w
		}
		b.obs.Transition(group, prev.sh.State, next.State, w)
	}
}

// Record reports the outcome of a call Allow let through. It returns 0
// when the group is closed, else how long until its next probe is due:
// a failure met by an open breaker is the outage's, not the task's, and
// the caller may defer the task instead of spending a retry. Successes
// of a closed group are counted locally and added to the shared window
// at most every Options.Flush; failures and probe outcomes at once. A
// Redis error loses the counts (the breaker fails open).
func (b *Breaker) Record(ctx context.Context, tk Ticket, o Outcome) time.Duration {
	if tk.Group == "" {
		return 0
	}
	attempts, failures := 0, 0
	if tk.Probe == 0 {
		if o == Other {
			return 0
		}
		local := time.Now()
		b.mu.Lock()
		v := b.view(tk.Group)
		v.attempts++
		if o == Failure {
			v.failures++
		}
		if o != Failure && local.Sub(v.flushed) < b.flush {
			b.mu.Unlock()
			return 0
		}
		attempts, failures = v.attempts, v.failures
		v.attempts, v.failures, v.flushed = 0, 0, local
		b.mu.Unlock()
	}
	sn, err := b.read(ctx, tk.Group, attempts, failures)
	if err != nil {
		return 0
	}
	for range maxTries {
		next, changed := b.s.Record(sn.sh, sn.w, tk.Probe, o, sn.now)
		if !changed {
			break
		}
		done, cur, err := b.write(ctx, tk.Group, sn.sh, next)
		if err != nil {
			return 0
		}
		if done {
			b.transition(tk.Group, sn, next)
			return waitOf(next, sn.now)
		}
		sn = cur
	}
	b.store(tk.Group, sn)
	return waitOf(sn.sh, sn.now)
}

// minWait is the least wait Record returns for a group that is not closed.
const minWait = 100 * time.Millisecond

func waitOf(sh Shared, now time.Time) time.Duration {
	if sh.State == Closed {
		return 0
	}
	return max(sh.ProbeAt.Sub(now), minWait)
}
