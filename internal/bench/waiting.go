package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/ratelimit"
	"github.com/meetops/meetops/internal/tasks"
)

// waiting is the churn scenario: Redis commands per second while n tasks
// wait on a 1/s rate-limit group (one worker, RATELIMIT_RTC_ROOMS=1/s),
// against the same worker holding the same n tasks scheduled one second
// apart in asynq, so that it runs one per second too and otherwise only
// polls: the difference is what waiting for the limiter costs. Bare asynq
// on the same schedule, and idle, are the second row. Each rate is
// measured over window (for ours once every task has been taken and told
// its turn).
func (e *env) waiting(ctx context.Context, n int, window time.Duration) ([]Row, error) {
	var stats []map[string]cmdStat // of each measured window, with -v
	rate := func(p *proc) (float64, int, error) {
		s0, _ := e.single.commandStats(ctx)
		c0, t0, done0 := e.single.commandsProcessed(ctx), time.Now(), e.sim.Stats().EffectsOf(cloudsim.OpDismiss)
		select { // measuring a rate over a fixed window, not synchronising
		case <-time.After(window):
		case <-p.exited:
			return 0, 0, fmt.Errorf("worker exited")
		}
		r, done := float64(e.single.commandsProcessed(ctx)-c0)/time.Since(t0).Seconds(), e.sim.Stats().EffectsOf(cloudsim.OpDismiss)-done0
		s1, _ := e.single.commandStats(ctx)
		stats = append(stats, diffStats(s0, s1))
		return r, done, nil
	}

	// Ours: every task asks the limiter, is told its turn and deferred.
	if err := e.reset(ctx, e.single); err != nil {
		return nil, err
	}
	p, err := e.startRole(ctx, e.single, "worker", e.workerEnv(e.single, "RATELIMIT_RTC_ROOMS=1/s", "LOG_LEVEL=warn"))
	if err != nil {
		return nil, err
	}
	e.runs++ // rooms stay dismissed in the simulator: every run needs new ones
	if err := e.enqueueDismissals(ctx, e.single, fmt.Sprintf("wait-%d-", e.runs), n); err != nil {
		p.stop()
		return nil, err
	}
	// Taken and told: every task not yet run is in the group's waiting
	// room (read from it directly; asynq's queue counters flicker as
	// tasks come back for their turns).
	deadline := time.Now().Add(5 * time.Minute)
	for {
		waiting, err := e.single.rdb.ZCard(ctx, ratelimit.WaitersKey(tasks.GroupRTCRooms)).Result()
		done := e.sim.Stats().EffectsOf(cloudsim.OpDismiss)
		if err == nil && int(waiting)+done >= n-2 {
			break
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("the worker did not take every waiting task within 5 minutes (%d waiting, %d done, of %d; %v)", waiting, done, n, err)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	ours, oursDone, err := rate(p)
	p.stop()
	if err != nil {
		return nil, err
	}

	// The same worker with the tasks scheduled 1 s apart by asynq instead
	// (no limiter): the same work per second, without the waiting room.
	sched, schedDone, err := e.scheduled(ctx, "worker", n, rate, nil)
	if err != nil {
		return nil, err
	}
	// Bare asynq: idle, then the same schedule.
	var idle float64
	bare, bareDone, err := e.scheduled(ctx, "bare", n, rate, func(p *proc) (err error) {
		idle, _, err = rate(p)
		return err
	})
	if err != nil {
		return nil, err
	}
	if e.verbose {
		fmt.Fprintf(e.out, "Redis commands per second of the waiting window (ours vs the same worker with the tasks scheduled in asynq):\n")
		printStats(e.out, int(window.Seconds()), stats[0], stats[1])
	}
	name := fmt.Sprintf("8 %d tasks waiting on a 1/s group", n)
	return []Row{
		{Scenario: name, Metric: "Redis commands/s", Ours: ours, Baseline: sched, Ratio: ratio(ours, sched), Goal: "≤ 2×", Met: ours <= 2*sched,
			Note: fmt.Sprintf("baseline: the same worker, the tasks scheduled 1 s apart in asynq instead of waiting for the limiter; tasks run in the %s window: %d and %d",
				window, oursDone, schedDone)},
		{Scenario: name, Metric: "vs bare asynq", Ours: ours, Baseline: bare, Ratio: ratio(ours, bare), Goal: "report", Met: true,
			Note: fmt.Sprintf("bare asynq with the same schedule (%d run); idle bare asynq %.1f/s", bareDone, idle)},
	}, nil
}

// scheduled starts role (after idle, when not nil, has measured it idle),
// enqueues n dismissals scheduled 1 s apart and measures rate.
func (e *env) scheduled(ctx context.Context, role string, n int, rate func(*proc) (float64, int, error), idle func(*proc) error) (float64, int, error) {
	if err := e.reset(ctx, e.single); err != nil {
		return 0, 0, err
	}
	e.runs++
	p, err := e.startRole(ctx, e.single, role, e.workerEnv(e.single, "LOG_LEVEL=warn"))
	if err != nil {
		return 0, 0, err
	}
	defer p.stop()
	if idle != nil {
		if err := idle(p); err != nil {
			return 0, 0, err
		}
	}
	for i := range n {
		pr, err := tasks.Prepare(tasks.Dismiss{AppID: cloudsim.DemoAppBulk, RoomID: fmt.Sprintf("wait-%s-%d-%d", role, e.runs, i)}, tasks.TaskOptions{Queue: queue})
		if err != nil {
			return 0, 0, err
		}
		if _, err := e.single.client.EnqueueContext(ctx, pr.Task, asynq.ProcessIn(time.Duration(i+1)*time.Second)); err != nil {
			return 0, 0, err
		}
	}
	return rate(p)
}
