package retry

import (
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Default schedule values: 2 s doubling to at most 10 min, 12 retries.
const (
	DefaultInitial    = 2 * time.Second
	DefaultMax        = 10 * time.Minute
	DefaultMaxRetries = 12
	// Randomization is the ± fraction applied to every delay.
	Randomization = 0.5
)

// Schedule is an exponential backoff schedule: delay(n) = min(Max,
// Initial·2ⁿ), randomised by ±50 %, and never less than the upstream's
// Retry-After. The zero value is the default schedule.
type Schedule struct {
	// Initial is the base delay before the first retry; 0 means 2 s.
	Initial time.Duration
	// Max caps the un-randomised delay; 0 means 10 min.
	Max time.Duration
	// MaxRetries is the retry budget of a task; 0 means 12.
	MaxRetries int
	// Rand returns a number in [0, 1) for the jitter; nil means math/rand.
	Rand func() float64
}

func (s Schedule) withDefaults() Schedule {
	if s.Initial <= 0 {
		s.Initial = DefaultInitial
	}
	if s.Max <= 0 {
		s.Max = DefaultMax
	}
	if s.MaxRetries <= 0 {
		s.MaxRetries = DefaultMaxRetries
	}
	if s.Rand == nil {
		s.Rand = rand.Float64
	}
	return s
}

// Retries returns the retry budget (MaxRetries or its default).
func (s Schedule) Retries() int { return s.withDefaults().MaxRetries }

// Base returns the un-randomised delay before retry n (n counts from 0):
// min(Max, Initial·2ⁿ), as computed by backoff.ExponentialBackOff.
func (s Schedule) Base(n int) time.Duration {
	s = s.withDefaults()
	b := &backoff.ExponentialBackOff{
		InitialInterval:     s.Initial,
		RandomizationFactor: 0, // jitter is applied by Delay with s.Rand
		Multiplier:          2,
		MaxInterval:         s.Max,
		MaxElapsedTime:      0,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	d := b.NextBackOff()
	for range n {
		d = b.NextBackOff()
		if d >= s.Max {
			break
		}
	}
	return d
}

// Delay returns the randomised delay before retry n, at least retryAfter.
func (s Schedule) Delay(n int, retryAfter time.Duration) time.Duration {
	s = s.withDefaults()
	base := float64(s.Base(n))
	d := time.Duration(base * (1 - Randomization + 2*Randomization*s.Rand()))
	return max(d, retryAfter)
}

// MaxDelay is the longest Delay(n, 0) can return: the cap plus its jitter.
func (s Schedule) MaxDelay(n int) time.Duration {
	return time.Duration(float64(s.Base(n)) * (1 + Randomization))
}

// MinDelay is the shortest Delay(n, 0) can return.
func (s Schedule) MinDelay(n int) time.Duration {
	return time.Duration(float64(s.Base(n)) * (1 - Randomization))
}
