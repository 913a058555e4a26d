package bench

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/meetops/meetops/internal/breaker"
	"github.com/meetops/meetops/internal/tasks"
)

// breakerCost is scenario 11: the circuit breaker's cost per task when
// closed. Each step is one Redis round trip standing in for the
// executor's own Redis work (a real step makes three or more), with and
// without the breaker's calls of one task (Allow before the rate limit,
// Allow after it, Record of the success), in alternating blocks of 500 on
// the single node. The goal is the issue's: ≤ 5 µs of worker CPU per task.
func (e *env) breakerCost(ctx context.Context, n int) ([]Row, error) {
	rdb := e.single.rdb
	br := breaker.New(rdb, breaker.Options{})
	group := tasks.GroupRTCRooms
	step := func() error { return rdb.Incr(ctx, "meetops:bench:breaker-step").Err() }
	with := func() error {
		tk, wait, err := br.Allow(ctx, group)
		if err != nil || wait != 0 {
			return fmt.Errorf("closed breaker: wait %s, %v", wait, err)
		}
		if _, _, err := br.Allow(ctx, group); err != nil {
			return err
		}
		if err := step(); err != nil {
			return err
		}
		br.Record(ctx, tk, breaker.Success)
		return nil
	}
	var wall [2]time.Duration
	var cpu [2]time.Duration
	block := func(i int, f func() error, k int) error {
		start, c := time.Now(), processCPU()
		for range k {
			if err := f(); err != nil {
				return err
			}
		}
		wall[i] += time.Since(start)
		cpu[i] += processCPU() - c
		return nil
	}
	for range 100 {
		if err := with(); err != nil {
			return nil, err
		}
	}
	for done := 0; done < n; done += 500 {
		k := min(500, n-done)
		if err := block(0, step, k); err != nil {
			return nil, err
		}
		if err := block(1, with, k); err != nil {
			return nil, err
		}
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(n) }
	cpuDiff := us(cpu[1] - cpu[0])
	name := fmt.Sprintf("11 breaker closed, cost per task (%d steps of one Redis round trip, with vs without)", n)
	return []Row{
		{Scenario: name, Metric: "worker CPU µs/task", Ours: us(cpu[1]), Baseline: us(cpu[0]), Ratio: ratio(us(cpu[1]), us(cpu[0])),
			Goal: "≤ 5 µs more", Met: cpuDiff <= 5,
			Note: fmt.Sprintf("the breaker's calls add %.2f µs of CPU and %.2f µs of wall time per task (wall %.1f vs %.1f µs per step)",
				cpuDiff, us(wall[1]-wall[0]), us(wall[1]), us(wall[0]))},
	}, nil
}

// processCPU is this process's user + system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
