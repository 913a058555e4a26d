package reliability_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/bulk"
	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/reliability"
	"github.com/meetops/meetops/internal/tasks"
)

// Scenarios 12–15: a primary failover, measured. Two workers drain a batch
// of failoverBatch dismissals (20 ms upstream latency, 10 tasks at once
// each) while `enqueue bulk` writes failoverBulk more, one line per round
// trip; then the primary that holds asynq's default queue is killed with
// SIGKILL — on Redis Cluster the primary of the {default} slot, on Sentinel
// the primary — and its replica is promoted (cluster-node-timeout, or the
// sentinels' down-after, of failoverTimeout). The killed node is started
// again once the promotion is seen, as its supervisor would, and rejoins as
// a replica. Neither the workers nor the bulk are restarted. Each topology runs once with REDIS_ACK_REPLICAS=0 and once
// with REDIS_ACK_REPLICAS=1 (every process), side by side in the table.
//
// What is counted, over the acknowledged tasks — the batch (written before
// the workers start and known to be on the replica) and every line the
// bulk's --report says was enqueued or a duplicate:
//
//   - lost: after the run settled, asynq does not know the task (it is
//     neither completed, dead-lettered, nor still queued, scheduled,
//     retrying or active), or it completed or dead-lettered without its
//     room ever being dismissed: an operation the producer was told was
//     enqueued that is not and will not be done. With ack 0
//     an enqueue the primary acknowledged but had not yet sent to its
//     replica can be lost (on loopback replication takes well under a
//     millisecond, so few if any are); with ack 1 none may be.
//   - stuck: tasks still pending, active, scheduled or retrying when the
//     run stopped waiting, settleAfterKill after the kill. A task whose
//     completion the outage swallowed stays active until its asynq lease
//     (30 s) expires; the workers' orphan recovery then requeues it and the
//     ledger completes it without an upstream call.
//   - duplicated: rooms the simulator dismissed more than once. A second
//     dismissal of a room has no effect (the simulator answers 404), so
//     the scenario also counts dismiss calls per room: a room called twice
//     is a task that ran again (its ledger entry lost, or it was delivered
//     again) and reached upstream; its outcome must be already_done, never
//     a second effect. Re-runs stopped by the ledger (ledger_hit) never
//     reach upstream. Both are reported; a re-run that dead-lettered (its
//     ledger entry lost entirely, so the 404 looked like a first attempt's)
//     is reported too.
//   - recovery: from the promotion (first seen by polling the nodes) to the
//     first dismissal the simulator logged after it, in the simulator's
//     request log (millisecond times). Dequeueing needs the {default} slot,
//     so that first dismissal is work the workers fetched from the new
//     primary. It must be at most maxFailoverRecovery.
//
// Asserted: with ack 1 no acknowledged enqueue lost; on both settings no
// duplicate effect, recovery within maxFailoverRecovery, both workers and
// the bulk still running (the bulk exits 0 by itself).
func TestFailover(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		scenario string
		topology redisconf.Topology
		ack      int
	}{
		{"12 failover: Redis Cluster, ack 0", redisconf.Cluster, 0},
		{"13 failover: Redis Cluster, ack 1", redisconf.Cluster, 1},
		{"14 failover: Sentinel, ack 0", redisconf.Sentinel, 0},
		{"15 failover: Sentinel, ack 1", redisconf.Sentinel, 1},
	} {
		t.Run(fmt.Sprintf("%s/ack=%d", tc.topology, tc.ack), func(t *testing.T) {
			t.Parallel()
			failover(t, tc.scenario, tc.topology, tc.ack)
		})
	}
}

const (
	// failoverBatch is how many dismissals the workers drain, and
	// failoverBulk how many the bulk writes during the failover.
	failoverBatch, failoverBulk = 5000, 5000
	// maxFailoverRecovery bounds the time from the promotion to the first
	// task completed after it.
	maxFailoverRecovery = 10 * time.Second
	// settleAfterKill is how long after the kill the tasks may take to
	// settle: four asynq leases.
	settleAfterKill = 2 * time.Minute
	// failoverTimeout is how long a primary may be unreachable before its
	// replica takes over (cluster-node-timeout, Sentinel's
	// down-after-milliseconds). With one second, on two cores loaded by
	// the whole test suite, the sentinels once failed over a second time,
	// to the restarted old primary before its sync had replaced its stale
	// data set: the workers then found done tasks pending again without
	// their ledger entries and dead-lettered them (404 on a first attempt),
	// and the restarted node stayed a primary.
	failoverTimeout = 2 * time.Second
)

// failoverMu serialises the busy part of the failover scenarios, from the
// first enqueue until processing resumed after the promotion: two of them
// at once on two cores would distort each other's timings. Their tails,
// waiting for asynq's leases, overlap.
var failoverMu sync.Mutex

// sample is one look at the default queue during a failover.
type sample struct {
	at               time.Time
	known, completed int
}

func failover(t *testing.T, scenario string, topology redisconf.Topology, ack int) {
	row := report(t, scenario)
	row.Failover = true
	var r *proctest.Rig
	simArgs := []string{"-log-size", "40000"}
	switch topology {
	case redisconf.Cluster:
		r = proctest.NewClusterRig(t, redistest.NewCluster(t, redistest.ClusterOptions{NodeTimeout: failoverTimeout}), simArgs...)
	case redisconf.Sentinel:
		r = proctest.NewSentinelRig(t, redistest.NewSentinel(t, redistest.SentinelOptions{DownAfter: failoverTimeout}), simArgs...)
	}
	ackEnv := []string{"REDIS_ACK_REPLICAS=" + strconv.Itoa(ack)}
	r.Sim.SetFaults(t, `{"dismiss": {"latency": "20ms"}}`)
	env := r.WorkerEnv(append([]string{"RATELIMIT_RTC_ROOMS=off", "LOG_LEVEL=warn", "WORKER_CONCURRENCY=10"}, ackEnv...)...)

	failoverMu.Lock()
	began := time.Now()
	busy := true
	done := func() {
		if busy {
			busy = false
			failoverMu.Unlock()
		}
	}
	defer done()

	// The batch, on the replica before anything happens.
	opsA, effA := proctest.Dismissals("fo-a", failoverBatch)
	first := r.RunCLI(t, ackEnv, "bulk", dismissalsFile(t, opsA), "-o", "json")
	require.Zero(t, first.Code, "the batch: %s", first.Stderr)
	require.Equal(t, failoverBatch, bulkRun(t, first).Enqueued)
	r.WaitReplicated(t, tasks.DefaultQueue)
	acked := map[string]string{} // key → effect key
	for i, op := range opsA {
		acked[keyOf(t, op)] = effA[i]
	}

	workers := []*proctest.Worker{proctest.StartWorker(t, env), proctest.StartWorker(t, env)}
	known := func(q *asynq.QueueInfo) int {
		return q.Pending + q.Active + q.Scheduled + q.Retry + q.Archived + q.Completed
	}
	require.True(t, proctest.Poll(time.Minute, 5*time.Millisecond, func() bool {
		q := r.Queue()
		return q != nil && q.Completed >= failoverBatch/10
	}), "the workers drain the batch")

	opsB, effB := proctest.Dismissals("fo-b", failoverBulk)
	reportB := filepath.Join(t.TempDir(), "report.jsonl")
	bulkB := r.StartCLI(t, ackEnv, "bulk", dismissalsFile(t, opsB), "--batch", "1", "--concurrency", "2", "--report", reportB, "-o", "json")
	require.True(t, proctest.Poll(time.Minute, 2*time.Millisecond, func() bool {
		q := r.Queue()
		return q != nil && known(q) >= failoverBatch+failoverBulk/10
	}), "the bulk writes")
	select {
	case <-bulkB.Exited():
		t.Fatalf("enqueue bulk finished before the failover; make it larger:\n%s", bulkB.Output())
	default:
	}
	q := r.Queue()
	require.NotNil(t, q)
	before := fmt.Sprintf("%d of %d completed, %d of %d written by the bulk", q.Completed, failoverBatch, known(q)-failoverBatch, failoverBulk)

	// Watch the queue from the kill on.
	var (
		samplesMu sync.Mutex
		samples   []sample
		stop      = make(chan struct{})
		sampled   = make(chan struct{})
	)
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond): // sampling interval
			}
			if q := r.Queue(); q != nil {
				samplesMu.Lock()
				samples = append(samples, sample{at: time.Now(), known: known(q), completed: q.Completed})
				samplesMu.Unlock()
			}
		}
	}()
	stopSampling := func() {
		select {
		case <-stop:
		default:
			close(stop)
			<-sampled
		}
	}
	defer stopSampling()

	killedAt := r.KillPrimary(t)
	promotedAt, newPrimary := r.WaitPromoted(t, 30*time.Second)
	t.Logf("killed the primary with %s; %s promoted %s after the kill", before, newPrimary, promotedAt.Sub(killedAt).Round(time.Millisecond))

	// The crashed node is restarted, as its supervisor would, and rejoins
	// as the new primary's replica. Until then no write can be acknowledged
	// by a replica: with REDIS_ACK_REPLICAS=1 the bulk keeps retrying.
	restartCtx, cancelRestart := context.WithTimeout(context.Background(), time.Minute)
	rejoined := make(chan struct{})
	var (
		rejoinedAt time.Time
		rejoinErr  error
	)
	go func() {
		defer close(rejoined)
		rejoinedAt, rejoinErr = r.RestartKilledPrimary(restartCtx)
	}()
	t.Cleanup(func() { cancelRestart(); <-rejoined }) // before the topology is closed

	// Processing again: the completed count grows after the promotion.
	var completedAgain time.Duration
	resumed := proctest.Poll(maxFailoverRecovery+20*time.Second, 20*time.Millisecond, func() bool {
		samplesMu.Lock()
		defer samplesMu.Unlock()
		completedAgain = growth(samples, promotedAt, func(s sample) int { return s.completed })
		return completedAgain >= 0
	})
	done() // the rest is mostly waiting

	bulkErr, exited := bulkB.Wait(2 * time.Minute)
	require.True(t, exited, "enqueue bulk finishes")
	bulkCode, _ := bulkB.ExitCode()
	var ackedB, unacked int
	for _, res := range readBulkReport(t, reportB) {
		switch res.Outcome {
		case bulk.Enqueued, bulk.Duplicate:
			acked[res.Key] = effB[res.Line-1]
			ackedB++
		default:
			unacked++
		}
	}

	// Settle: nothing left to do, or settleAfterKill has passed.
	settled := proctest.Poll(time.Until(killedAt.Add(settleAfterKill)), 100*time.Millisecond, func() bool {
		q := r.Queue()
		return q != nil && q.Pending+q.Active+q.Scheduled+q.Retry == 0
	})
	stopSampling()
	for i, w := range workers {
		select {
		case <-w.Exited():
			t.Errorf("worker %d exited during the failover:\n%s", i+1, tailLines(w.Output(), 10))
		default:
		}
	}

	<-rejoined
	require.NoError(t, rejoinErr, "the restarted node rejoins as a replica")
	f := measureFailover(t, r, acked, killedAt, promotedAt, workers)
	samplesMu.Lock()
	bulkResumed := growth(samples, promotedAt, func(s sample) int { return s.known })
	samplesMu.Unlock()

	note := fmt.Sprintf("%d acked (bulk %d, %d not acked); kill→promoted %s; after it: first dismissal +%s, completions counted +%s, bulk writing +%s, a replica again +%s; %s",
		len(acked), ackedB, unacked, promotedAt.Sub(killedAt).Round(10*time.Millisecond),
		f.recovery.Round(10*time.Millisecond), completedAgain.Round(10*time.Millisecond),
		bulkResumed.Round(10*time.Millisecond), rejoinedAt.Sub(promotedAt).Round(10*time.Millisecond), f.note())
	*row = reliability.Row{Scenario: row.Scenario, Tasks: len(acked), Lost: f.lost, Duplicated: f.duplicated,
		UpstreamCalls: f.calls, Time: time.Since(began), Failover: true, Stuck: f.stuck, Recovery: f.recovery, Note: note}
	t.Logf("%s: %s; lost %d, stuck %d, duplicated %d, recovery %s (settled: %v)", scenario, note, f.lost, f.stuck, f.duplicated, f.recovery, settled)

	require.Zero(t, bulkCode, "enqueue bulk rode out the failover without a rerun (%v):\n%s", bulkErr, tailLines(bulkB.Output(), 10))
	require.True(t, resumed, "the workers complete tasks again after the promotion")
	require.LessOrEqual(t, completedAgain, maxFailoverRecovery, "tasks completed again within %s of the promotion", maxFailoverRecovery)
	require.Positive(t, f.recovery, "a dismissal after the promotion")
	require.LessOrEqual(t, f.recovery, maxFailoverRecovery, "processing again within %s of the promotion", maxFailoverRecovery)
	require.Zero(t, f.duplicated, "no room dismissed twice")
	if ack > 0 {
		require.Zero(t, f.lost, "with REDIS_ACK_REPLICAS=%d no acknowledged enqueue is lost", ack)
	}
}

// growth returns how long after since the count of a sample first
// exceeded its count in the first sample taken after since, or -1 if it
// never did.
func growth(samples []sample, since time.Time, count func(sample) int) time.Duration {
	base := -1
	for _, s := range samples {
		switch {
		case s.at.Before(since):
		case base < 0:
			base = count(s)
		case count(s) > base:
			return s.at.Sub(since)
		}
	}
	return -1
}

// failoverFigures are what a failover scenario measured once it settled.
type failoverFigures struct {
	lost, stuck, deadLettered, duplicated, calls int
	recovery                                     time.Duration
	// reran counts rooms called more than once, by the outcome of their
	// task; ledgerHits re-runs the ledger stopped before upstream.
	reran      map[string]int
	ledgerHits int
	// orphans counts tasks the workers' orphan recovery requeued once
	// their asynq lease expired: their completion was lost with the
	// primary. lastDone is when the last task completed, after the kill.
	orphans  int
	lastDone time.Duration
	// late counts tasks completed more than 20 s after the kill.
	late int
}

func (f failoverFigures) note() string {
	var reran []string
	total := 0
	for outcome, n := range f.reran {
		reran = append(reran, fmt.Sprintf("%d %s", n, outcome))
		total += n
	}
	s := fmt.Sprintf("re-runs: %d stopped by the ledger, %d reached upstream", f.ledgerHits, total)
	if total > 0 {
		s += " (" + strings.Join(reran, ", ") + ")"
	}
	return s + fmt.Sprintf("; %d dead-lettered; %d requeued once their asynq lease expired; last done %s after the kill",
		f.deadLettered, f.orphans, f.lastDone.Round(time.Second))
}

// measureFailover classifies every acknowledged task (key → effect key)
// and reads the simulator's log and the workers' metrics.
func measureFailover(t *testing.T, r *proctest.Rig, acked map[string]string, killedAt, promotedAt time.Time, workers []*proctest.Worker) failoverFigures {
	t.Helper()
	f := failoverFigures{reran: map[string]int{}}
	st := r.Sim.Stats(t)
	f.calls = proctest.Calls(st)
	for k, n := range st.Effects {
		if n > 1 {
			f.duplicated++
			t.Errorf("room %s dismissed %d times", k, n)
		}
	}
	callsPerRoom := map[string]int{}
	var firstAfter time.Time
	for _, e := range r.Sim.Log(t) {
		if e.Op != "dismiss" {
			continue
		}
		callsPerRoom[e.Path]++
		if e.Status == 202 && e.Time.After(promotedAt) && (firstAfter.IsZero() || e.Time.Before(firstAfter)) {
			firstAfter = e.Time
		}
	}
	if !firstAfter.IsZero() {
		f.recovery = firstAfter.Sub(promotedAt)
	}
	keys := make([]string, 0, len(acked))
	for k := range acked {
		keys = append(keys, k)
	}
	for k, info := range r.Infos(t, keys) {
		effect := acked[k]
		dismissed := st.Effects[effect] > 0
		room := "/v2/apps/" + strings.Replace(strings.TrimPrefix(effect, "dismiss:"), "/", "/rooms/", 1) + "/dismiss"
		switch {
		case info == nil:
			f.lost++
			t.Logf("lost: %s (unknown to asynq; room dismissed: %v)", k, dismissed)
		case info.State == asynq.TaskStateCompleted || info.State == asynq.TaskStateArchived:
			if info.State == asynq.TaskStateArchived {
				f.deadLettered++
				t.Logf("dead-lettered: %s after %d calls: %s; the workers logged:\n%s", k, callsPerRoom[room], info.Result, linesWith(workers, k))
			}
			if !dismissed {
				f.lost++
				t.Logf("lost: %s (%s, room never dismissed): %s", k, info.State, info.Result)
			}
			if callsPerRoom[room] > 1 {
				f.reran[proctest.Result(t, info).Outcome]++
			}
			if info.State == asynq.TaskStateCompleted {
				d := info.CompletedAt.Sub(killedAt)
				f.lastDone = max(f.lastDone, d)
				if d > 20*time.Second {
					if f.late++; f.late <= 3 {
						t.Logf("late: %s completed %s after the kill, retried %d, last error %q, result %s", k, d.Round(time.Second), info.Retried, info.LastErr, info.Result)
					}
				}
			}
		default:
			f.stuck++
			t.Logf("stuck: %s %s (retried %d, last error %q)", k, info.State, info.Retried, info.LastErr)
		}
	}
	for _, w := range workers {
		select {
		case <-w.Exited():
			continue
		default:
		}
		_, m := w.Get(t, "/metrics")
		f.ledgerHits += int(proctest.Metric(m, `meetops_tasks_processed_total{outcome="ledger_hit",type="rtc:room:dismiss"}`))
		f.orphans += orphansRequeued(t, w.Output())
	}
	return f
}

// linesWith returns the workers' log lines that mention key.
func linesWith(workers []*proctest.Worker, key string) string {
	var b strings.Builder
	for i, w := range workers {
		for line := range strings.Lines(w.Output()) {
			if strings.Contains(line, key) {
				fmt.Fprintf(&b, "worker %d: %s", i+1, line)
			}
		}
	}
	return b.String()
}

// orphansRequeued adds up the tasks a worker's log says its orphan
// recovery requeued.
func orphansRequeued(t *testing.T, log string) int {
	t.Helper()
	n := 0
	for line := range strings.Lines(log) {
		if !strings.Contains(line, "asynq lease expired") {
			continue
		}
		var e struct {
			Tasks int `json:"tasks"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &e), "worker log line %q", line)
		n += e.Tasks
	}
	return n
}
