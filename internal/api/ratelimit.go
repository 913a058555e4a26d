package api

import (
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/meetops/meetops/internal/ratelimit"
)

// limiters holds one token bucket per token name, in this process: N/s
// refills N a second and holds at most N (a second's worth may come at
// once), N/m and N/h alike over their period. Several API processes each
// allow the rate (the limit is per token per process).
type limiters map[string]*rate.Limiter

func newLimiters(tokens []Token, l ratelimit.Limit) limiters {
	if l.Off() {
		return nil
	}
	m := make(limiters, len(tokens))
	for _, t := range tokens {
		m[t.Name] = rate.NewLimiter(rate.Limit(float64(l.Rate)/l.Period.Seconds()), l.Rate)
	}
	return m
}

// allow takes one request from name's budget; when it is spent it returns
// false and how many whole seconds until a request would be allowed (at
// least 1), for Retry-After.
func (m limiters) allow(name string, now time.Time) (bool, int) {
	lim, ok := m[name]
	if !ok {
		return true, 0
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, max(1, int(math.Ceil(d.Seconds())))
	}
	return true, 0
}
