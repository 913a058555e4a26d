package breaker_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meetops/meetops/internal/breaker"
	"github.com/meetops/meetops/internal/redistest"
)

// cpuTime is the process's user + system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkClosedBreakerCost is the breaker's cost per task when closed:
// an executor step with the breaker's calls (Allow before the rate limit,
// Allow again after it, Record of the success) against the same step
// without them, on real Redis. The step stands in for the executor's own
// Redis work by one round trip (a real step makes three or more, so the
// ratio is an upper bound). It reports wall and CPU µs per step of both,
// their difference and the ratio; run with
//
//	go test -run '^$' -bench ClosedBreakerCost ./internal/breaker
func BenchmarkClosedBreakerCost(b *testing.B) {
	rdb := redistest.Client(b)
	ctx := context.Background()
	br := breaker.New(rdb, breaker.Options{})
	step := func(rdb *redis.Client) {
		if err := rdb.Incr(ctx, "step").Err(); err != nil {
			b.Fatal(err)
		}
	}
	withBreaker := func() {
		tk, wait, err := br.Allow(ctx, group)
		if err != nil || wait != 0 {
			b.Fatalf("closed breaker: wait %s, %v", wait, err)
		}
		if _, _, err := br.Allow(ctx, group); err != nil {
			b.Fatal(err)
		}
		step(rdb)
		br.Record(ctx, tk, breaker.Success)
	}
	for range 100 { // warm up: the first Allow reads the state
		withBreaker()
	}
	// The two are measured in alternating blocks, so that drift (the
	// machine's other load, Redis's) falls on both alike.
	var wall0, cpu0, wall1, cpu1 time.Duration
	block := func(f func(), n int, wall, cpu *time.Duration) {
		start, c := time.Now(), cpuTime(b)
		for range n {
			f()
		}
		*wall += time.Since(start)
		*cpu += cpuTime(b) - c
	}
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(500, b.N-done)
		block(func() { step(rdb) }, n, &wall0, &cpu0)
		block(withBreaker, n, &wall1, &cpu1)
		done += n
	}
	per := func(d time.Duration) time.Duration { return d / time.Duration(b.N) }
	wall0, cpu0, wall1, cpu1 = per(wall0), per(cpu0), per(wall1), per(cpu1)
	b.StopTimer()
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(wall0), "µs/step-without")
	b.ReportMetric(us(wall1), "µs/step-closed")
	b.ReportMetric(us(wall1-wall0), "µs-wall-diff")
	b.ReportMetric(us(cpu1-cpu0), "µs-cpu-diff")
	b.ReportMetric(float64(wall1)/float64(wall0), "ratio")
}

// BenchmarkClosedBreakerLocal is the breaker's calls of one task alone
// (no step), in parallel as a worker's slots make them: the local copy's
// cost, with the flushes to Redis amortised.
func BenchmarkClosedBreakerLocal(b *testing.B) {
	br := breaker.New(redistest.Client(b), breaker.Options{})
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tk, _, err := br.Allow(ctx, group)
			if err != nil {
				b.Fatal(err)
			}
			_, _, _ = br.Allow(ctx, group)
			br.Record(ctx, tk, breaker.Success)
		}
	})
}
