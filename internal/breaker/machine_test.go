package breaker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/breaker"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

var settings = breaker.Settings{Threshold: 50, MinAttempts: 4, Window: 10 * time.Second,
	ProbeInterval: 5 * time.Second, CloseAfter: 2}

// The life of a breaker as a table: each step is a Check or a Record at a
// moment of an injected clock, applied to the state the previous steps
// left, with the state and answer it must give.
func TestStateMachine(t *testing.T) {
	t.Parallel()
	type step struct {
		at    time.Duration
		check bool            // Check, else Record
		w     breaker.Window  // Record: the window with this call counted
		probe bool            // Record: the outcome is the last probe's
		o     breaker.Outcome // Record
		want  breaker.State   // state after the step
		wait  time.Duration   // Check: the wait answered
		grant bool            // Check: a probe let through
	}
	open := []step{
		{at: 0, w: breaker.Window{Attempts: 3, Failures: 3}, o: breaker.Failure, want: breaker.Closed},
		{at: 0, check: true, want: breaker.Closed},
		{at: time.Second, w: breaker.Window{Attempts: 4, Failures: 2}, o: breaker.Failure, want: breaker.Open},
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"below min attempts stays closed", []step{
			{at: 0, w: breaker.Window{Attempts: 3, Failures: 3}, o: breaker.Failure, want: breaker.Closed},
		}},
		{"below the ratio stays closed", []step{
			{at: 0, w: breaker.Window{Attempts: 10, Failures: 4}, o: breaker.Failure, want: breaker.Closed},
		}},
		{"a success never opens it", []step{
			{at: 0, w: breaker.Window{Attempts: 10, Failures: 9}, o: breaker.Success, want: breaker.Closed},
			{at: 0, w: breaker.Window{Attempts: 10, Failures: 9}, o: breaker.Other, want: breaker.Closed},
		}},
		{"at the ratio it opens; calls wait for the probe", append(open,
			step{at: time.Second, check: true, want: breaker.Open, wait: 5 * time.Second},
			step{at: 5 * time.Second, check: true, want: breaker.Open, wait: time.Second},
		)},
		{"one probe per interval; its failure reopens", append(open,
			step{at: 6 * time.Second, check: true, want: breaker.HalfOpen, grant: true},
			step{at: 6 * time.Second, check: true, want: breaker.HalfOpen, wait: 5 * time.Second},
			step{at: 7 * time.Second, probe: true, o: breaker.Failure, want: breaker.Open},
			step{at: 7 * time.Second, check: true, want: breaker.Open, wait: 5 * time.Second},
			step{at: 12 * time.Second, check: true, want: breaker.HalfOpen, grant: true},
		)},
		{"CloseAfter probe successes in a row close it", append(open,
			step{at: 6 * time.Second, check: true, want: breaker.HalfOpen, grant: true},
			step{at: 6 * time.Second, probe: true, o: breaker.Success, want: breaker.HalfOpen},
			step{at: 6 * time.Second, check: true, want: breaker.HalfOpen, grant: true}, // the next probe at once
			step{at: 6 * time.Second, probe: true, o: breaker.Success, want: breaker.Closed},
			step{at: 6 * time.Second, check: true, want: breaker.Closed},
		)},
		{"a failure between probe successes restarts the count", append(open,
			step{at: 6 * time.Second, check: true, want: breaker.HalfOpen, grant: true},
			step{at: 6 * time.Second, probe: true, o: breaker.Success, want: breaker.HalfOpen},
			step{at: 6 * time.Second, check: true, want: breaker.HalfOpen, grant: true},
			step{at: 6 * time.Second, probe: true, o: breaker.Failure, want: breaker.Open},
			step{at: 11 * time.Second, check: true, want: breaker.HalfOpen, grant: true},
			step{at: 11 * time.Second, probe: true, o: breaker.Success, want: breaker.HalfOpen},
		)},
		{"a probe that said nothing frees the slot", append(open,
			step{at: 6 * time.Second, check: true, want: breaker.HalfOpen, grant: true},
			step{at: 6 * time.Second, probe: true, o: breaker.Other, want: breaker.HalfOpen},
			step{at: 6 * time.Second, check: true, want: breaker.HalfOpen, grant: true},
		)},
		{"a lost probe is replaced after the interval", append(open,
			step{at: 6 * time.Second, check: true, want: breaker.HalfOpen, grant: true},
			step{at: 10 * time.Second, check: true, want: breaker.HalfOpen, wait: time.Second},
			step{at: 11 * time.Second, check: true, want: breaker.HalfOpen, grant: true},
		)},
		{"outcomes of calls let through before it opened are ignored", append(open,
			step{at: 2 * time.Second, w: breaker.Window{Attempts: 40, Failures: 1}, o: breaker.Success, want: breaker.Open},
			step{at: 2 * time.Second, w: breaker.Window{Attempts: 40, Failures: 40}, o: breaker.Failure, want: breaker.Open},
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var sh breaker.Shared
			var probe int64
			for i, s := range tt.steps {
				now := at(s.at)
				if s.check {
					next, d, changed := settings.Check(sh, now)
					require.Equal(t, s.wait, d.Wait, "step %d: wait", i)
					require.Equal(t, s.grant, d.Probe != 0, "step %d: probe let through", i)
					require.Equal(t, s.grant, changed, "step %d: only a probe let through changes the state", i)
					if d.Probe != 0 {
						probe = d.Probe
					}
					sh = next
				} else {
					p := int64(0)
					if s.probe {
						p = probe
					}
					next, changed := settings.Record(sh, s.w, p, s.o, now)
					require.Equal(t, changed, next != sh, "step %d: changed says whether it changed", i)
					if changed {
						require.Equal(t, sh.Version+1, next.Version, "step %d: every change bumps the version", i)
					}
					sh = next
				}
				require.Equal(t, s.want, sh.State, "step %d", i)
			}
		})
	}
}

// A probe's outcome counts only for the probe in flight: one replaced
// after its interval, or reported twice, changes nothing.
func TestStaleProbeIsIgnored(t *testing.T) {
	t.Parallel()
	sh, _ := settings.Record(breaker.Shared{}, breaker.Window{Attempts: 4, Failures: 4}, 0, breaker.Failure, t0)
	sh, first, _ := settings.Check(sh, at(5*time.Second))
	sh, second, _ := settings.Check(sh, at(10*time.Second))
	require.NotEqual(t, first.Probe, second.Probe)
	next, changed := settings.Record(sh, breaker.Window{}, first.Probe, breaker.Success, at(10*time.Second))
	require.False(t, changed)
	require.Equal(t, sh, next)
	sh, _ = settings.Record(sh, breaker.Window{}, second.Probe, breaker.Success, at(10*time.Second))
	require.Equal(t, 1, sh.Streak)
	_, changed = settings.Record(sh, breaker.Window{}, second.Probe, breaker.Success, at(10*time.Second))
	require.False(t, changed, "the same probe reported twice")
}

func TestSettingsDefaults(t *testing.T) {
	t.Parallel()
	require.Equal(t, breaker.Settings{Threshold: 50, MinAttempts: 20, Window: 10 * time.Second,
		ProbeInterval: 5 * time.Second, CloseAfter: 3}, breaker.Settings{}.WithDefaults())
	s := breaker.Settings{Threshold: 80, MinAttempts: 5, Window: time.Minute, ProbeInterval: time.Second, CloseAfter: 1}
	require.Equal(t, s, s.WithDefaults())
	require.Equal(t, "half_open", breaker.HalfOpen.String())
}
