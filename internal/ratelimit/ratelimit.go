// Package ratelimit paces upstream calls per operation group, shared by
// every worker process on the same Redis: an evenly spaced budget (GCRA,
// burst 1) per group, a waiting room that gives the next call slot to the
// highest-priority task waiting for it (see turns.go), and an adaptive
// pause: when the upstream throttles a call (429 / APIG.0308) the whole
// group waits, across workers, before the next call.
package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meetops/meetops/internal/tasks"
)

// Limit is a parsed rate limit.
type Limit struct {
	// Rate calls per Period; Rate 0 means no limit ("off").
	Rate   int
	Period time.Duration
}

// Off reports whether the limit is disabled.
func (l Limit) Off() bool { return l.Rate == 0 }

// String formats the limit as it is parsed ("60/m", "off").
func (l Limit) String() string {
	if l.Off() {
		return "off"
	}
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[l.Period]
	return strconv.Itoa(l.Rate) + "/" + unit
}

// Interval is the spacing between calls at this limit.
func (l Limit) Interval() time.Duration {
	if l.Off() {
		return 0
	}
	return l.Period / time.Duration(l.Rate)
}

// ParseLimit parses "N/s", "N/m", "N/h" or "off".
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return Limit{}, nil
	}
	n, unit, ok := strings.Cut(s, "/")
	rate, err := strconv.Atoi(n)
	if !ok || err != nil || rate < 1 {
		return Limit{}, fmt.Errorf("want N/s, N/m, N/h or off (N ≥ 1), got %q", s)
	}
	switch unit {
	case "s":
		return Limit{Rate: rate, Period: time.Second}, nil
	case "m":
		return Limit{Rate: rate, Period: time.Minute}, nil
	case "h":
		return Limit{Rate: rate, Period: time.Hour}, nil
	}
	return Limit{}, fmt.Errorf("want N/s, N/m, N/h or off, got unit %q in %q", unit, s)
}

// Defaults by group (the RTC figures are Huawei Cloud's documented per
// account limits; the Meeting ones are conservative choices, see README).
var Defaults = map[string]Limit{
	tasks.GroupRTCRooms:       {Rate: 60, Period: time.Minute},
	tasks.GroupRTCApps:        {Rate: 60, Period: time.Minute},
	tasks.GroupMeetingMgmt:    {Rate: 10, Period: time.Second},
	tasks.GroupMeetingControl: {Rate: 10, Period: time.Second},
	tasks.GroupMeetingVMR:     {Rate: 5, Period: time.Second},
}

// Observer is told about limiter decisions (for metrics); nil fields are
// skipped.
type Observer struct {
	// Waited is called with the wait Allow returned (0 when allowed).
	Waited func(group string, wait time.Duration)
	// Throttled is called when the upstream throttled the group.
	Throttled func(group string)
	// Remaining is called with the budget left after an allowed call.
	Remaining func(group string, remaining int)
}

// Limiter paces calls per group. It implements the executor.Limiter interface.
type Limiter struct {
	rdb    redis.UniversalClient
	limits map[string]Limit
	share  int
	obs    Observer
	// MinPause and MaxPause bound the adaptive pause after a throttle
	// without Retry-After; the pause doubles on repeated throttles.
	minPause, maxPause time.Duration

	mu     sync.Mutex
	paused map[string]time.Time // local copy of each group's pause
	streak map[string]int
}

// New returns a limiter with the given limits by group; groups missing from
// limits take Defaults.
func New(rdb redis.UniversalClient, limits map[string]Limit, obs Observer) *Limiter {
	l := &Limiter{
		rdb: rdb, limits: map[string]Limit{}, obs: obs, share: DefaultShare,
		minPause: 2 * time.Second, maxPause: time.Minute,
		paused: map[string]time.Time{}, streak: map[string]int{},
	}
	for g, lim := range Defaults {
		l.limits[g] = lim
	}
	for g, lim := range limits {
		l.limits[g] = lim
	}
	return l
}

// Limits returns the limit in force for each group.
func (l *Limiter) Limits() map[string]Limit {
	out := make(map[string]Limit, len(l.limits))
	for g, lim := range l.limits {
		out[g] = lim
	}
	return out
}

// Redis keys of a group. The group is their hash tag, so on Redis Cluster
// all of one group's state lives in one slot (and a script may touch all
// of it).
func pauseKey(group string) string { return "meetops:rl:{" + group + "}:pause" }

// Allow asks for one call from group's budget for the task with
// idempotency key key, whose queue has the given priority (its weight: a
// higher one goes first). 0 means go now; otherwise it says how long to
// wait before asking again — when the task's turn comes, so that a task
// asks about once per call it makes. Calls are spaced evenly (GCRA with
// burst 1), so "60/m" is one call a second.
func (l *Limiter) Allow(ctx context.Context, group, key string, priority int) (time.Duration, error) {
	wait, err := l.allow(ctx, group, key, priority)
	if err == nil && l.obs.Waited != nil {
		l.obs.Waited(group, wait)
	}
	return wait, err
}

func (l *Limiter) allow(ctx context.Context, group, key string, priority int) (time.Duration, error) {
	if w := l.localPause(group); w > 0 {
		return w, nil
	}
	lim, ok := l.limits[group]
	if !ok {
		return 0, fmt.Errorf("ratelimit: unknown group %q", group)
	}
	if lim.Off() {
		return 0, nil
	}
	// One round trip: the pause another worker may have set, the waiting
	// room and the budget.
	wait, allowed, err := l.ask(ctx, group, lim, key, priority)
	if err != nil {
		return 0, err
	}
	if allowed {
		l.mu.Lock()
		l.streak[group] = 0
		l.mu.Unlock()
		if l.obs.Remaining != nil {
			l.obs.Remaining(group, 0) // burst 1: the next call waits its interval
		}
		return 0, nil
	}
	return max(wait, time.Millisecond), nil
}

func (l *Limiter) localPause(group string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Until(l.paused[group])
}

func (l *Limiter) setLocalPause(group string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := time.Now().Add(d); until.After(l.paused[group]) {
		l.paused[group] = until
	}
}

// Throttled pauses group for every worker: for retryAfter when the
// upstream sent one, otherwise for an adaptive pause that starts at 2 s and
// doubles on each consecutive throttle up to 1 min.
func (l *Limiter) Throttled(ctx context.Context, group string, retryAfter time.Duration) {
	l.mu.Lock()
	n := l.streak[group]
	l.streak[group] = n + 1
	l.mu.Unlock()
	pause := retryAfter
	if pause <= 0 {
		pause = min(l.maxPause, l.minPause<<min(n, 10))
	}
	l.setLocalPause(group, pause)
	// Share the pause with the other workers. If Redis cannot be reached
	// the local pause still holds for this process, which is all a failed
	// write could change.
	_ = l.rdb.Set(ctx, pauseKey(group), "1", pause).Err()
	if l.obs.Throttled != nil {
		l.obs.Throttled(group)
	}
}
