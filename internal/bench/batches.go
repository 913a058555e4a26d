package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/meetops/meetops/internal/batch"
	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/tasks"
)

// batchOf makes the n dismissals enqueueDismissals made with prefix the
// members of one sealed batch, as enqueue bulk does, and returns its ID.
func (e *env) batchOf(ctx context.Context, s *store, prefix string, n int) (string, error) {
	store := batch.New(s.rdb, batch.Options{})
	id, err := store.Create(ctx, batch.Spec{Label: "bench", Origin: "bench"})
	if err != nil {
		return "", err
	}
	const chunk = 1000
	for start := 0; start < n; start += chunk {
		ms := make([]batch.Member, 0, chunk)
		for i := start; i < min(start+chunk, n); i++ {
			key := tasks.Key(tasks.Dismiss{AppID: cloudsim.DemoAppBulk, RoomID: prefix + strconv.Itoa(i)})
			ms = append(ms, batch.Member{Key: key, Index: i, Line: i + 1})
		}
		if _, err := store.Add(ctx, id, ms); err != nil {
			return "", err
		}
	}
	if _, err := store.Seal(ctx, id); err != nil {
		return "", err
	}
	return id, nil
}

// batches is scenario 9, the cost of batch records: Redis bytes per
// member, the worker's CPU per task with every task a batch member against
// none (the same drain otherwise), and the time to read a batch's progress
// at 100,000 members against 10.
func (e *env) batches(ctx context.Context, drainN, members int) ([]Row, error) {
	plain, err := e.runDrain(ctx, drainSpec{role: "worker", n: drainN})
	if err != nil {
		return nil, err
	}
	inBatch, err := e.runDrain(ctx, drainSpec{role: "worker", n: drainN, inBatch: true})
	if err != nil {
		return nil, err
	}
	cpuPlain, cpuBatch := plain.workerCPU/float64(drainN)*1e6, inBatch.workerCPU/float64(drainN)*1e6

	s := e.single
	if err := e.reset(ctx, s); err != nil {
		return nil, err
	}
	used0 := s.usedMemory(ctx)
	big, err := e.batchOf(ctx, s, "members-", members)
	if err != nil {
		return nil, err
	}
	perMember := float64(s.usedMemory(ctx)-used0) / float64(members)
	small, err := e.batchOf(ctx, s, "few-", 10)
	if err != nil {
		return nil, err
	}
	store := batch.New(s.rdb, batch.Options{})
	read := func(id string) (time.Duration, error) {
		var ds []time.Duration
		for range 2000 {
			t0 := time.Now()
			if _, err := store.Get(ctx, id); err != nil {
				return 0, err
			}
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		return percentile(ds, 50), nil
	}
	bigRead, err := read(big)
	if err != nil {
		return nil, err
	}
	smallRead, err := read(small)
	if err != nil {
		return nil, err
	}
	sc := "9 batches"
	return []Row{
		{Scenario: sc, Metric: "Redis bytes/batch member", Ours: perMember, Baseline: 0, Goal: "report", Met: true,
			Note: fmt.Sprintf("%d members: their state and position in the batch, and the batch in each key's member index", members)},
		{Scenario: sc + " drain " + strconv.Itoa(drainN), Metric: "worker CPU µs/task in a batch", Ours: cpuBatch, Baseline: cpuPlain,
			Ratio: ratio(cpuBatch, cpuPlain), Goal: "≤ 1.10× (none)", Met: cpuBatch <= 1.10*cpuPlain,
			Note: "baseline: the same drain, the tasks in no batch"},
		{Scenario: sc, Metric: "batch status µs (p50)", Ours: float64(bigRead.Microseconds()), Baseline: float64(smallRead.Microseconds()),
			Ratio: ratio(float64(bigRead), float64(smallRead)), Goal: "O(1): ≈ 1× a 10-member batch", Met: float64(bigRead) <= 2*float64(smallRead)+float64(200*time.Microsecond),
			Note: fmt.Sprintf("a %d-member batch vs a 10-member one: one HGETALL whatever the size", members)},
	}, nil
}
