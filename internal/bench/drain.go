package bench

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/meetops/meetops/internal/asynqdb"
	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/tasks"
)

// enqueueDismissals pre-enqueues n dismiss tasks into s for distinct rooms
// of the simulator's auto-room app, with 16 producers (not measured).
func (e *env) enqueueDismissals(ctx context.Context, s *store, prefix string, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				p, err := tasks.Prepare(tasks.Dismiss{AppID: cloudsim.DemoAppBulk, RoomID: prefix + strconv.Itoa(i)}, tasks.TaskOptions{Queue: queue})
				if err == nil {
					_, err = s.client.EnqueueContext(ctx, p.Task)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// drainRun is one measured drain.
type drainRun struct {
	elapsed   time.Duration
	peakRSS   int64
	redisUsed int64 // Redis used_memory growth over the run
	completed int
	workerCPU float64 // CPU seconds the worker process used draining
	redisCPU  float64 // CPU seconds the redis-servers used meanwhile
	// commands is what Redis ran meanwhile (INFO commandstats).
	commands map[string]cmdStat
	// memory is what Redis holds after it by key kind (verbose runs on
	// the single node only).
	memory map[string]memStat
}

func (d drainRun) perSec(n int) float64 { return float64(n) / d.elapsed.Seconds() }

// drainSpec says what one drain runs.
type drainSpec struct {
	role  string // "worker" or "bare"
	n     int
	env   []string        // extra worker environment
	fault *cloudsim.Fault // injected into dismiss, if set
	store *store          // where; nil: the single node
	// inBatch makes every task a member of one sealed batch, created
	// before the worker starts.
	inBatch bool
}

// runDrain enqueues n dismissals into a paused queue, starts a worker
// process in role, unpauses, and times until the queue is empty.
func (e *env) runDrain(ctx context.Context, d drainSpec) (drainRun, error) {
	var r drainRun
	role, n, s := d.role, d.n, d.store
	if s == nil {
		s = e.single
	}
	if err := e.reset(ctx, s); err != nil {
		return r, err
	}
	if d.fault != nil {
		if err := e.sim.SetFault(cloudsim.OpDismiss, *d.fault); err != nil {
			return r, err
		}
	}
	used0 := s.usedMemory(ctx)
	if err := s.insp.PauseQueue(queue); err != nil {
		return r, err
	}
	e.runs++ // rooms stay dismissed in the simulator: every run needs new ones
	prefix := fmt.Sprintf("%s-%d-", role, e.runs)
	if err := e.enqueueDismissals(ctx, s, prefix, n); err != nil {
		return r, fmt.Errorf("enqueue: %w", err)
	}
	if d.inBatch {
		if _, err := e.batchOf(ctx, s, prefix, n); err != nil {
			return r, err
		}
	}
	p, err := e.startRole(ctx, s, role, e.workerEnv(s, d.env...))
	if err != nil {
		return r, err
	}
	defer p.stop()
	cpu0, rcpu0 := p.cpuSeconds(), s.cpuSeconds(ctx)
	stats0, err := s.commandStats(ctx)
	if err != nil {
		return r, err
	}
	start := time.Now()
	if err := s.insp.UnpauseQueue(queue); err != nil {
		return r, err
	}
	pendingKey, activeKey := asynqdb.PendingKey(queue), asynqdb.ActiveKey(queue)
	deadline := start.Add(5 * time.Minute)
	for {
		pipe := s.rdb.Pipeline()
		pend, act := pipe.LLen(ctx, pendingKey), pipe.LLen(ctx, activeKey)
		if _, err := pipe.Exec(ctx); err != nil {
			return r, err
		}
		if pend.Val() == 0 && act.Val() == 0 {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("%s: queue not drained in 5 min (%d pending)", role, pend.Val())
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	r.elapsed = time.Since(start)
	r.workerCPU, r.redisCPU = p.cpuSeconds()-cpu0, s.cpuSeconds(ctx)-rcpu0
	stats1, err := s.commandStats(ctx)
	if err != nil {
		return r, err
	}
	r.commands = diffStats(stats0, stats1)
	r.peakRSS = p.peakRSS()
	r.completed = e.sim.Stats().EffectsOf(cloudsim.OpDismiss)
	if r.completed != n {
		return r, fmt.Errorf("%s: %d of %d rooms dismissed", role, r.completed, n)
	}
	r.redisUsed = s.usedMemory(ctx) - used0
	if e.verbose {
		if r.memory, err = s.memoryByKind(ctx); err != nil {
			return r, err
		}
	}
	return r, nil
}

// drain is scenario 2 (and 5): n pending dismissals through the full worker
// vs a bare asynq server making the same call; peak RSS and Redis bytes per
// completed task.
func (e *env) drain(ctx context.Context, n int) ([]Row, error) {
	bare, err := e.runDrain(ctx, drainSpec{role: "bare", n: n})
	if err != nil {
		return nil, err
	}
	ours, err := e.runDrain(ctx, drainSpec{role: "worker", n: n})
	if err != nil {
		return nil, err
	}
	e.singleDrain[n] = ours
	timeRatio := ratio(ours.elapsed.Seconds(), bare.elapsed.Seconds())
	if e.verbose {
		fmt.Fprintf(e.out, "Redis commands per task, drain of %d (INFO commandstats):\n", n)
		printStats(e.out, n, ours.commands, bare.commands)
		fmt.Fprintf(e.out, "Redis memory per task after the drain of %d, by key (MEMORY USAGE; used_memory growth: ours %d B, bare %d B):\n",
			n, ours.redisUsed/int64(n), bare.redisUsed/int64(n))
		printMemory(e.out, n, ours.memory, bare.memory)
	}
	perTask := float64(ours.redisUsed) / float64(n)
	barePerTask := float64(bare.redisUsed) / float64(n)
	workerRatio, redisRatio := ratio(ours.workerCPU, bare.workerCPU), ratio(ours.redisCPU, bare.redisCPU)
	return []Row{
		{Scenario: "2 drain " + strconv.Itoa(n), Metric: "tasks/s", Ours: ours.perSec(n), Baseline: bare.perSec(n),
			Ratio: ratio(ours.perSec(n), bare.perSec(n)), Goal: "time ≤ 1.25× bare", Met: timeRatio <= 1.25,
			Note: fmt.Sprintf("ours %s vs bare %s: %.2f× the bare time; baseline is a bare asynq server whose handler makes the same signed HTTP call", ours.elapsed.Round(time.Millisecond), bare.elapsed.Round(time.Millisecond), timeRatio)},
		{Scenario: "2 drain " + strconv.Itoa(n), Metric: "worker CPU µs/task", Ours: ours.workerCPU / float64(n) * 1e6, Baseline: bare.workerCPU / float64(n) * 1e6,
			Ratio: workerRatio, Goal: "≤ 1.3× bare", Met: workerRatio <= 1.3},
		{Scenario: "2 drain " + strconv.Itoa(n), Metric: "Redis CPU µs/task", Ours: ours.redisCPU / float64(n) * 1e6, Baseline: bare.redisCPU / float64(n) * 1e6,
			Ratio: redisRatio, Goal: "≤ 1.5× bare", Met: redisRatio <= 1.5},
		{Scenario: "5 memory", Metric: "worker peak RSS MiB", Ours: float64(ours.peakRSS) / (1 << 20), Baseline: float64(bare.peakRSS) / (1 << 20),
			Ratio: ratio(float64(ours.peakRSS), float64(bare.peakRSS)), Goal: "report", Met: true},
		{Scenario: "5 memory", Metric: "Redis bytes/completed task", Ours: perTask, Baseline: barePerTask,
			Ratio: ratio(perTask, barePerTask), Goal: "≤ 800 all-in", Met: perTask <= 800,
			Note: "default 24 h retention; ours includes the ledger entry and the task result; baseline is the same asynq task with neither (-v prints them by key)"},
	}, nil
}

// latency50 is scenario 3: 50 ms upstream latency at concurrency 200,
// throughput against a bare asynq server's in the same conditions (the
// note gives both against the Little's-law limit, 200 / 50 ms = 4,000/s).
func (e *env) latency50(ctx context.Context, n int) ([]Row, error) {
	const conc, latency = 200, 50 * time.Millisecond
	spec := drainSpec{n: n, env: []string{"WORKER_CONCURRENCY=" + strconv.Itoa(conc)}, fault: &cloudsim.Fault{Latency: latency}}
	spec.role = "worker"
	ours, err := e.runDrain(ctx, spec)
	if err != nil {
		return nil, err
	}
	spec.role = "bare"
	bare, err := e.runDrain(ctx, spec)
	if err != nil {
		return nil, err
	}
	limit := float64(conc) / latency.Seconds()
	got, ref := ours.perSec(n), bare.perSec(n)
	return []Row{{Scenario: "3 latency 50ms c=200", Metric: "tasks/s", Ours: got, Baseline: ref,
		Ratio: ratio(got, ref), Goal: "≥ 0.9 of bare", Met: ratio(got, ref) >= 0.9,
		Note: fmt.Sprintf("baseline is a bare asynq server making the same call; the Little's-law limit concurrency/latency is %.0f/s (ours %.2f of it, bare %.2f); worker CPU ours %.0f vs bare %.0f µs/task",
			limit, got/limit, ref/limit, ours.workerCPU/float64(n)*1e6, bare.workerCPU/float64(n)*1e6)}}, nil
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func sortDurations(d []time.Duration) { sort.Slice(d, func(i, j int) bool { return d[i] < d[j] }) }
