package retry_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/retry"
)

func fixed(r float64) func() float64 { return func() float64 { return r } }

func TestScheduleDelayTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		s          retry.Schedule
		n          int
		retryAfter time.Duration
		want       time.Duration
	}{
		{"first retry, no jitter", retry.Schedule{Rand: fixed(0.5)}, 0, 0, 2 * time.Second},
		{"second retry doubles", retry.Schedule{Rand: fixed(0.5)}, 1, 0, 4 * time.Second},
		{"fifth retry", retry.Schedule{Rand: fixed(0.5)}, 4, 0, 32 * time.Second},
		{"lowest jitter is -50%", retry.Schedule{Rand: fixed(0)}, 2, 0, 4 * time.Second},
		{"highest jitter approaches +50%", retry.Schedule{Rand: fixed(0.999)}, 2, 0, 11992 * time.Millisecond},
		{"cap at 10 min", retry.Schedule{Rand: fixed(0.5)}, 9, 0, 10 * time.Minute},
		{"cap holds for huge n", retry.Schedule{Rand: fixed(0.5)}, 1000, 0, 10 * time.Minute},
		{"capped delay is still jittered", retry.Schedule{Rand: fixed(0)}, 11, 0, 5 * time.Minute},
		{"Retry-After longer wins", retry.Schedule{Rand: fixed(0.5)}, 0, 30 * time.Second, 30 * time.Second},
		{"Retry-After shorter loses", retry.Schedule{Rand: fixed(0.5)}, 3, time.Second, 16 * time.Second},
		{"per-type override", retry.Schedule{Initial: 100 * time.Millisecond, Max: time.Second, Rand: fixed(0.5)}, 3, 0, 800 * time.Millisecond},
		{"override cap", retry.Schedule{Initial: 100 * time.Millisecond, Max: time.Second, Rand: fixed(0.5)}, 5, 0, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.s.Delay(tt.n, tt.retryAfter))
		})
	}
}

func TestScheduleBoundsAndDefaults(t *testing.T) {
	t.Parallel()
	var s retry.Schedule
	require.Equal(t, 12, s.Retries())
	require.Equal(t, 7, retry.Schedule{MaxRetries: 7}.Retries())
	for n := range 15 {
		d := s.Delay(n, 0) // real random source
		require.GreaterOrEqual(t, d, s.MinDelay(n), "retry %d", n)
		require.LessOrEqual(t, d, s.MaxDelay(n), "retry %d", n)
	}
	require.Equal(t, 15*time.Minute, s.MaxDelay(20))
	require.Equal(t, time.Second, s.MinDelay(0))
}
