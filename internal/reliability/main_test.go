package reliability_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/reliability"
	"github.com/meetops/meetops/internal/tasks"
)

// summary collects every scenario's figures; TestMain prints it.
var summary reliability.Table

// TestMain runs the scenarios, then prints the summary table to stdout (go
// test shows it with -v or when a test fails) and, when
// MEETOPS_RELIABILITY_REPORT names a file, writes it there too.
func TestMain(m *testing.M) {
	code := m.Run()
	_ = summary.Fprint(os.Stdout)
	if path := os.Getenv("MEETOPS_RELIABILITY_REPORT"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = summary.Fprint(f)
			_ = f.Close()
		}
	}
	os.Exit(code)
}

// rig is one scenario's world: a dedicated redis-server, the simulator
// process, and an asynq client and inspector on a fresh database.
type rig struct {
	redis    *redistest.Server
	db       int
	redisURL string
	rdb      *redis.Client
	client   *asynq.Client
	insp     *asynq.Inspector
	sim      *proctest.Cloudsim
	started  time.Time
	// queues the scenario's tasks go to; empty means the default queue.
	queues []string
}

// newRig starts a dedicated redis-server with opts and the simulator (demo
// world, plus simArgs).
func newRig(t *testing.T, opts redistest.Options, simArgs ...string) *rig {
	t.Helper()
	redistest.RequireReal(t)
	r := &rig{started: time.Now()}
	r.redis = redistest.New(t, opts)
	r.db = r.redis.DB(t)
	r.redisURL = r.redis.URL(r.db)
	r.rdb = redis.NewClient(r.redis.Options(r.db))
	t.Cleanup(func() { _ = r.rdb.Close() })
	r.client = asynq.NewClientFromRedisClient(r.rdb)
	r.insp = asynq.NewInspectorFromRedisClient(r.rdb)
	r.sim = proctest.StartCloudsim(t, simArgs...)
	return r
}

// workerEnv is the worker environment for this rig: Redis, the simulator's
// endpoints and demo credentials (AK/SK and App ID), then extra (later
// entries win).
func (r *rig) workerEnv(extra ...string) []string {
	return r.workerEnvAuth("aksk", "appid", extra...)
}

// workerEnvAuth is workerEnv with the authentication modes chosen: rtc
// "aksk" or "iam", meeting "appid" or "account" (each with the simulator's
// demo credentials).
func (r *rig) workerEnvAuth(rtc, meeting string, extra ...string) []string {
	cr := cloudsim.DemoCredentials()
	env := []string{"REDIS_URL=" + r.redisURL, "LOG_FORMAT=json",
		"RTC_ENDPOINT=" + r.sim.URL, "IAM_ENDPOINT=" + r.sim.URL, "MEETING_ENDPOINT=" + r.sim.URL}
	switch rtc {
	case "aksk":
		env = append(env, "RTC_AK="+cr.AK, "RTC_SK="+cr.SK, "RTC_PROJECT_ID="+cr.ProjectID)
	case "iam":
		env = append(env, "IAM_USER="+cr.IAMUser, "IAM_PASSWORD="+cr.IAMPassword,
			"IAM_DOMAIN="+cr.IAMDomain, "IAM_PROJECT_ID="+cr.IAMProjectID)
	default:
		panic("rtc mode " + rtc)
	}
	switch meeting {
	case "appid":
		env = append(env, "MEETING_APP_ID="+cr.AppID, "MEETING_APP_KEY="+cr.AppKey, "MEETING_USER_ID="+cr.UserID)
	case "account":
		env = append(env, "MEETING_ACCOUNT="+cr.Account, "MEETING_PASSWORD="+cr.Password)
	default:
		panic("meeting mode " + meeting)
	}
	return append(env, extra...)
}

// enqueue prepares and enqueues ops and returns their keys.
func (r *rig) enqueue(t *testing.T, ops []tasks.Op, o tasks.TaskOptions) []string {
	t.Helper()
	keys := make([]string, 0, len(ops))
	for _, op := range ops {
		p, err := tasks.Prepare(op, o)
		require.NoError(t, err)
		_, err = r.client.Enqueue(p.Task)
		require.NoError(t, err, "enqueue %s", p.Key)
		keys = append(keys, p.Key)
	}
	return keys
}

// queue returns the counters of the rig's queues (the default queue unless
// the scenario set queues) added up, or nil while Redis does not answer (a
// restart) or a queue does not exist yet.
func (r *rig) queue() *asynq.QueueInfo {
	var sum asynq.QueueInfo
	for _, name := range r.queueNames() {
		q, err := r.insp.GetQueueInfo(name)
		if err != nil {
			return nil
		}
		sum.Pending += q.Pending
		sum.Active += q.Active
		sum.Scheduled += q.Scheduled
		sum.Retry += q.Retry
		sum.Archived += q.Archived
		sum.Completed += q.Completed
	}
	return &sum
}

// queueNames are the queues the scenario uses.
func (r *rig) queueNames() []string {
	if len(r.queues) == 0 {
		return []string{tasks.DefaultQueue}
	}
	return r.queues
}

// waitSettled waits until n tasks of the default queue are completed or
// archived and none is pending, active, scheduled or retrying.
func (r *rig) waitSettled(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	var last *asynq.QueueInfo
	ok := poll(timeout, 50*time.Millisecond, func() bool {
		q := r.queue()
		if q == nil {
			return false
		}
		last = q
		return q.Completed+q.Archived >= n && q.Pending+q.Active+q.Scheduled+q.Retry == 0
	})
	if !ok {
		if last != nil {
			t.Fatalf("tasks did not settle within %s: completed %d archived %d pending %d active %d scheduled %d retry %d (want %d done)",
				timeout, last.Completed, last.Archived, last.Pending, last.Active, last.Scheduled, last.Retry, n)
		}
		t.Fatalf("tasks did not settle within %s (queue unreadable)", timeout)
	}
}

// infos returns the task info of every key (nil for a key asynq does not
// know: a lost task).
func (r *rig) infos(t *testing.T, keys []string) map[string]*asynq.TaskInfo {
	t.Helper()
	out := make(map[string]*asynq.TaskInfo, len(keys))
	for _, k := range keys {
		out[k] = nil
		for _, q := range r.queueNames() {
			info, err := r.insp.GetTaskInfo(q, k)
			if err == nil {
				out[k] = info
				break
			}
			if !errors.Is(err, asynq.ErrQueueNotFound) {
				require.ErrorIs(t, err, asynq.ErrTaskNotFound, "task %s", k)
			}
		}
	}
	return out
}

// result decodes a task's result JSON.
func result(t *testing.T, info *asynq.TaskInfo) tasks.Result {
	t.Helper()
	var res tasks.Result
	require.NoError(t, json.Unmarshal(info.Result, &res), "result of %s: %q", info.ID, info.Result)
	return res
}

// tally checks that every key completed with outcome succeeded or
// already_done and returns how many did not (lost) and how many completed
// as already_done.
func tally(t *testing.T, infos map[string]*asynq.TaskInfo) (lost, alreadyDone int) {
	t.Helper()
	for k, info := range infos {
		if info == nil || info.State != asynq.TaskStateCompleted {
			lost++
			if info == nil {
				t.Errorf("task %s: lost (unknown to asynq)", k)
			} else {
				t.Errorf("task %s: state %s, last error %q, result %s", k, info.State, info.LastErr, info.Result)
			}
			continue
		}
		switch res := result(t, info); res.Outcome {
		case tasks.OutcomeSucceeded:
		case tasks.OutcomeAlreadyDone:
			alreadyDone++
		default:
			lost++
			t.Errorf("task %s: completed with outcome %q", k, res.Outcome)
		}
	}
	return lost, alreadyDone
}

// effects compares the simulator's effect counts with the keys that must
// have happened exactly once: missing counts keys with no effect,
// duplicated keys with more than one, and extra counts effects of the
// operation prefix outside want (which must not happen either).
func effects(t *testing.T, st proctest.SimStats, prefix string, want []string) (missing, duplicated, extra int) {
	t.Helper()
	wanted := make(map[string]bool, len(want))
	for _, k := range want {
		wanted[k] = true
		switch n := st.Effects[k]; {
		case n == 0:
			missing++
			t.Errorf("effect %s never happened", k)
		case n > 1:
			duplicated++
			t.Errorf("effect %s happened %d times", k, n)
		}
	}
	for k, n := range st.Effects {
		if strings.HasPrefix(k, prefix) && !wanted[k] {
			extra += n
			t.Errorf("unexpected effect %s (%d)", k, n)
		}
	}
	return missing, duplicated, extra
}

// calls is the number of requests the simulator answered, over every
// operation.
func calls(st proctest.SimStats) int {
	n := 0
	for _, o := range st.Requests {
		n += o.Total
	}
	return n
}

// dismissals returns n dismiss operations on demo-app-bulk (whose rooms all
// exist until dismissed), rooms named prefix-0000…, and their effect keys.
func dismissals(prefix string, n int) ([]tasks.Op, []string) {
	ops := make([]tasks.Op, n)
	keys := make([]string, n)
	for i := range n {
		room := fmt.Sprintf("%s-%04d", prefix, i)
		ops[i] = tasks.Dismiss{AppID: "demo-app-bulk", RoomID: room}
		keys[i] = "dismiss:demo-app-bulk/" + room
	}
	return ops, keys
}

// poll calls cond every interval until it returns true (true) or timeout
// passes (false).
func poll(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval) // polling interval, bounded by the deadline
	}
}

// activeKeys lists the IDs of every active task of the default queue.
func (r *rig) activeKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	for page := 1; page <= 100; page++ {
		infos, err := r.insp.ListActiveTasks(tasks.DefaultQueue, asynq.PageSize(500), asynq.Page(page))
		require.NoError(t, err)
		for _, info := range infos {
			keys = append(keys, info.ID)
		}
		if len(infos) < 500 {
			break
		}
	}
	return keys
}

// metric returns the value of one Prometheus sample line ("name{labels}")
// in a /metrics body, or 0 when absent.
func metric(body, sample string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return 0
}

// ctx returns a context cancelled at test cleanup.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return c
}

// tasksDefault are the default task options.
var tasksDefault = tasks.TaskOptions{}

// keyOf is the derived idempotency key of op.
func keyOf(t *testing.T, op tasks.Op) string {
	t.Helper()
	p, err := tasks.Prepare(op, tasks.TaskOptions{})
	require.NoError(t, err)
	return p.Key
}

// report returns the scenario's summary row, which the test fills in as it
// goes; it is added to the summary when the test ends — marked failed if it
// failed, and with the test's time if the test did not set one.
func report(t *testing.T, scenario string) *reliability.Row {
	row := &reliability.Row{Scenario: scenario}
	start := time.Now()
	t.Cleanup(func() {
		if row.Time == 0 {
			row.Time = time.Since(start)
		}
		row.Failed = t.Failed()
		summary.Add(*row)
	})
	return row
}
