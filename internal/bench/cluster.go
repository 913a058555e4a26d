package bench

import (
	"context"
	"fmt"
	"time"
)

// clusterCost is scenario 10: scenario 1's bulk enqueue and scenario 2's
// drain (the full worker) on a Redis Cluster of three primaries with a
// replica each, against the same on the single node in the same run
// (scenarios 1 and 2's figures when they ran, else measured here). On one
// machine a cluster cannot be faster: a queue lives in one hash slot, so on
// one primary; the replicas copy every write and the ledger's keys are
// spread over all three primaries, on the same cores. The figures show
// what the cluster costs. The cluster is stopped afterwards, so that the
// later scenarios have the machine to themselves again.
func (e *env) clusterCost(ctx context.Context, nBulk, nDrain int) ([]Row, error) {
	fmt.Fprintln(e.out, "   starting a cluster of 3 primaries + 3 replicas")
	c, err := newClusterStore()
	if err != nil {
		return nil, err
	}
	e.cluster = c
	defer func() {
		c.close()
		e.cluster = nil
	}()

	single, ok := e.singleBulk[nBulk]
	if !ok {
		if single, err = e.runBulk(ctx, e.single, nBulk); err != nil {
			return nil, err
		}
	}
	clustered, err := e.runBulk(ctx, c, nBulk)
	if err != nil {
		return nil, err
	}

	singleDrain, ok := e.singleDrain[nDrain]
	if !ok {
		if singleDrain, err = e.runDrain(ctx, drainSpec{role: "worker", n: nDrain}); err != nil {
			return nil, err
		}
	}
	clusterDrain, err := e.runDrain(ctx, drainSpec{role: "worker", n: nDrain, store: c})
	if err != nil {
		return nil, err
	}

	bulkName, drainName := fmt.Sprintf("10 cluster bulk %d", nBulk), fmt.Sprintf("10 cluster drain %d", nDrain)
	clusterRate, singleRate := float64(nBulk)/clustered.Seconds(), float64(nBulk)/single.Seconds()
	perTask := func(sec float64) float64 { return sec / float64(nDrain) * 1e6 }
	return []Row{
		{Scenario: bulkName, Metric: "ops/s", Ours: clusterRate, Baseline: singleRate, Ratio: ratio(clusterRate, singleRate),
			Goal: "report", Met: true,
			Note: fmt.Sprintf("ours: the enqueue binary on Redis Cluster (3 primaries + 3 replicas, one machine), %s; baseline: the same on the single node, %s; one queue is one hash slot, so one primary takes every task",
				clustered.Round(time.Millisecond), single.Round(time.Millisecond))},
		{Scenario: drainName, Metric: "tasks/s", Ours: clusterDrain.perSec(nDrain), Baseline: singleDrain.perSec(nDrain),
			Ratio: ratio(clusterDrain.perSec(nDrain), singleDrain.perSec(nDrain)), Goal: "report", Met: true,
			Note: fmt.Sprintf("ours: the full worker on the cluster, %s; baseline: the full worker on the single node, %s (%.2f× the time)",
				clusterDrain.elapsed.Round(time.Millisecond), singleDrain.elapsed.Round(time.Millisecond),
				ratio(clusterDrain.elapsed.Seconds(), singleDrain.elapsed.Seconds()))},
		{Scenario: drainName, Metric: "worker CPU µs/task", Ours: perTask(clusterDrain.workerCPU), Baseline: perTask(singleDrain.workerCPU),
			Ratio: ratio(clusterDrain.workerCPU, singleDrain.workerCPU), Goal: "report", Met: true},
		{Scenario: drainName, Metric: "Redis CPU µs/task", Ours: perTask(clusterDrain.redisCPU), Baseline: perTask(singleDrain.redisCPU),
			Ratio: ratio(clusterDrain.redisCPU, singleDrain.redisCPU), Goal: "report", Met: true,
			Note: "all six nodes of the cluster (replication included) vs the single node"},
	}, nil
}
