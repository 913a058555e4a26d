package breaker

import (
	"fmt"
	"time"
)

// State is a group's breaker state. Its value is the meetops_breaker_state
// gauge's.
type State int

// The states.
const (
	// Closed: calls go; outcomes are counted in the group's window.
	Closed State = 0
	// HalfOpen: a probe was let through; its success counts towards
	// closing, its failure opens the breaker again.
	HalfOpen State = 1
	// Open: no call goes until the next probe is due.
	Open State = 2
)

// String returns the state's name in logs and metric labels.
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half_open"
	case Open:
		return "open"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Outcome is what one call's answer says about the group's upstream.
type Outcome int

// The outcomes a caller reports.
const (
	// Other says nothing about availability: a 4xx, an auth refusal, a
	// throttling answer (the rate limiter handles those), or no call at
	// all. Not counted.
	Other Outcome = iota
	// Success: a 2xx answer.
	Success
	// Failure: a transient failure of the upstream (5xx, timeout, reset).
	Failure
)

// Defaults of Settings.
const (
	DefaultThreshold     = 50
	DefaultMinAttempts   = 20
	DefaultWindow        = 10 * time.Second
	DefaultProbeInterval = 5 * time.Second
	DefaultCloseAfter    = 3
)

// Settings tune the breaker. Zero values mean the defaults.
type Settings struct {
	// Threshold is the percentage of failed attempts in the window at
	// which the breaker opens; default 50.
	Threshold int
	// MinAttempts is how many attempts the window must hold before the
	// ratio counts; default 20.
	MinAttempts int
	// Window is how far back attempts count; default 10s.
	Window time.Duration
	// ProbeInterval is how often an open breaker lets one probe through
	// (across all workers); default 5s.
	ProbeInterval time.Duration
	// CloseAfter is how many probes in a row must succeed to close it;
	// default 3.
	CloseAfter int
}

// WithDefaults returns s with zero values replaced by the defaults.
func (s Settings) WithDefaults() Settings {
	if s.Threshold == 0 {
		s.Threshold = DefaultThreshold
	}
	if s.MinAttempts == 0 {
		s.MinAttempts = DefaultMinAttempts
	}
	if s.Window == 0 {
		s.Window = DefaultWindow
	}
	if s.ProbeInterval == 0 {
		s.ProbeInterval = DefaultProbeInterval
	}
	if s.CloseAfter == 0 {
		s.CloseAfter = DefaultCloseAfter
	}
	return s
}

// Shared is one group's breaker as every worker sees it (stored in Redis).
type Shared struct {
	// State is the group's state.
	State State
	// Version counts the transitions; a change is written only over the
	// version it was computed from.
	Version int64
	// Since is when the state last changed.
	Since time.Time
	// ProbeAt is when the next probe may go (open and half-open). A probe
	// let through moves it one ProbeInterval on, so a probe whose outcome
	// never comes back (its worker died) is replaced after that long.
	ProbeAt time.Time
	// Probe identifies the probe in flight (0: none). An outcome of
	// another probe is stale and ignored.
	Probe int64
	// Streak counts the consecutive probe successes.
	Streak int
}

// Window is the group's attempts counted in the last Settings.Window.
type Window struct {
	Attempts, Failures int
}

// Decision is what Check answers one caller.
type Decision struct {
	// Wait is 0 when the call may go, else how long until the next probe
	// is due.
	Wait time.Duration
	// Probe is not 0 when the call is the group's probe.
	Probe int64
}

// Check decides whether a call may go at now, and returns the state to
// write when letting it through changes it (a probe let through), with
// changed true.
func (s Settings) Check(sh Shared, now time.Time) (next Shared, d Decision, changed bool) {
	if sh.State == Closed {
		return sh, Decision{}, false
	}
	if now.Before(sh.ProbeAt) {
		return sh, Decision{Wait: sh.ProbeAt.Sub(now)}, false
	}
	next = sh
	next.Version = sh.Version + 1
	next.Probe = next.Version
	next.ProbeAt = now.Add(s.ProbeInterval)
	if sh.State == Open {
		next.State, next.Since, next.Streak = HalfOpen, now, 0
	}
	return next, Decision{Probe: next.Probe}, true
}

// Record applies the outcome o of a call at now: probe is the Decision's
// Probe, w the window with this call counted. It returns the state to
// write and whether it changed.
func (s Settings) Record(sh Shared, w Window, probe int64, o Outcome, now time.Time) (next Shared, changed bool) {
	next = sh
	next.Version = sh.Version + 1
	if probe != 0 {
		if sh.State == Closed || sh.Probe != probe {
			return sh, false // stale: another probe replaced it, or closed since
		}
		next.Probe = 0
		switch o {
		case Success:
			next.Streak++
			if next.Streak >= s.CloseAfter {
				return Shared{State: Closed, Version: next.Version, Since: now}, true
			}
			next.ProbeAt = now // the next probe may go at once
		case Failure:
			next.State, next.Since, next.Streak = Open, now, 0
			next.ProbeAt = now.Add(s.ProbeInterval)
		default:
			next.ProbeAt = now // said nothing: another task probes
		}
		return next, true
	}
	if sh.State != Closed || o != Failure || w.Attempts < s.MinAttempts || w.Failures*100 < s.Threshold*w.Attempts {
		return sh, false
	}
	return Shared{State: Open, Version: next.Version, Since: now, ProbeAt: now.Add(s.ProbeInterval)}, true
}
