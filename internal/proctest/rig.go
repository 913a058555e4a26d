package proctest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/tasks"
)

// Rig is one binary-level test's world: a redis-server, the simulator
// process, and an asynq client and inspector on a fresh database. Workers
// and the enqueue CLI are started against it with WorkerEnv.
type Rig struct {
	// Redis is the rig's redis-server (dedicated, or the package's shared
	// one), DB the database the rig uses on it and RedisURL its URL.
	Redis    *redistest.Server
	DB       int
	RedisURL string
	// RDB, Client and Insp are a go-redis client, an asynq client and an
	// asynq inspector on that database.
	RDB    *redis.Client
	Client *asynq.Client
	Insp   *asynq.Inspector
	// Sim is the simulator process.
	Sim *Cloudsim
	// Started is when the rig was made.
	Started time.Time
	// Queues the test's tasks go to; empty means the default queue.
	Queues []string
}

// NewRig starts a dedicated redis-server with opts (for tests that stop,
// restart or configure it) and the simulator (demo world, plus simArgs).
func NewRig(t *testing.T, opts redistest.Options, simArgs ...string) *Rig {
	t.Helper()
	redistest.RequireReal(t)
	return newRig(t, redistest.New(t, opts), simArgs)
}

// NewSharedRig is NewRig on a fresh database of the package's shared
// redis-server (redistest.Main), for tests that leave Redis alone.
func NewSharedRig(t *testing.T, simArgs ...string) *Rig {
	t.Helper()
	return newRig(t, redistest.Shared(t), simArgs)
}

func newRig(t *testing.T, srv *redistest.Server, simArgs []string) *Rig {
	t.Helper()
	r := &Rig{Started: time.Now(), Redis: srv}
	r.DB = r.Redis.DB(t)
	r.RedisURL = r.Redis.URL(r.DB)
	r.RDB = redis.NewClient(r.Redis.Options(r.DB))
	t.Cleanup(func() { _ = r.RDB.Close() })
	r.Client = asynq.NewClientFromRedisClient(r.RDB)
	r.Insp = asynq.NewInspectorFromRedisClient(r.RDB)
	r.Sim = StartCloudsim(t, simArgs...)
	return r
}

// WorkerEnv is the worker environment for this rig: Redis, the simulator's
// endpoints and demo credentials (AK/SK and App ID), then extra (later
// entries win).
func (r *Rig) WorkerEnv(extra ...string) []string {
	return r.WorkerEnvAuth("aksk", "appid", extra...)
}

// WorkerEnvAuth is WorkerEnv with the authentication modes chosen: rtc
// "aksk" or "iam", meeting "appid" or "account" (each with the simulator's
// demo credentials).
func (r *Rig) WorkerEnvAuth(rtc, meeting string, extra ...string) []string {
	cr := cloudsim.DemoCredentials()
	env := []string{"REDIS_URL=" + r.RedisURL, "LOG_FORMAT=json",
		"RTC_ENDPOINT=" + r.Sim.URL, "IAM_ENDPOINT=" + r.Sim.URL, "MEETING_ENDPOINT=" + r.Sim.URL}
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

// Enqueue prepares and enqueues ops and returns their keys.
func (r *Rig) Enqueue(t *testing.T, ops []tasks.Op, o tasks.TaskOptions) []string {
	t.Helper()
	keys := make([]string, 0, len(ops))
	for _, op := range ops {
		p, err := tasks.Prepare(op, o)
		require.NoError(t, err)
		_, err = r.Client.Enqueue(p.Task)
		require.NoError(t, err, "enqueue %s", p.Key)
		keys = append(keys, p.Key)
	}
	return keys
}

// Queue returns the counters of the rig's queues (the default queue unless
// the test set Queues) added up, or nil while Redis does not answer (a
// restart) or a queue does not exist yet.
func (r *Rig) Queue() *asynq.QueueInfo {
	var sum asynq.QueueInfo
	for _, name := range r.QueueNames() {
		q, err := r.Insp.GetQueueInfo(name)
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

// QueueNames are the queues the test uses.
func (r *Rig) QueueNames() []string {
	if len(r.Queues) == 0 {
		return []string{tasks.DefaultQueue}
	}
	return r.Queues
}

// WaitSettled waits until n tasks of the default queue are completed or
// archived and none is pending, active, scheduled or retrying.
func (r *Rig) WaitSettled(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	var last *asynq.QueueInfo
	ok := Poll(timeout, 50*time.Millisecond, func() bool {
		q := r.Queue()
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

// Infos returns the task info of every key (nil for a key asynq does not
// know: a lost task).
func (r *Rig) Infos(t *testing.T, keys []string) map[string]*asynq.TaskInfo {
	t.Helper()
	out := make(map[string]*asynq.TaskInfo, len(keys))
	for _, k := range keys {
		out[k] = nil
		for _, q := range r.QueueNames() {
			info, err := r.Insp.GetTaskInfo(q, k)
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

// Result decodes a task's result JSON.
func Result(t *testing.T, info *asynq.TaskInfo) tasks.Result {
	t.Helper()
	var res tasks.Result
	require.NoError(t, json.Unmarshal(info.Result, &res), "result of %s: %q", info.ID, info.Result)
	return res
}

// Tally checks that every key completed with outcome succeeded or
// already_done and returns how many did not (lost) and how many completed
// as already_done.
func Tally(t *testing.T, infos map[string]*asynq.TaskInfo) (lost, alreadyDone int) {
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
		switch res := Result(t, info); res.Outcome {
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

// Effects compares the simulator's effect counts with the keys that must
// have happened exactly once: missing counts keys with no effect,
// duplicated keys with more than one, and extra counts effects of the
// operation prefix outside want (which must not happen either).
func Effects(t *testing.T, st SimStats, prefix string, want []string) (missing, duplicated, extra int) {
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

// Calls is the number of requests the simulator answered, over every
// operation.
func Calls(st SimStats) int {
	n := 0
	for _, o := range st.Requests {
		n += o.Total
	}
	return n
}

// Dismissals returns n dismiss operations on demo-app-bulk (whose rooms all
// exist until dismissed), rooms named prefix-0000…, and their effect keys.
func Dismissals(prefix string, n int) ([]tasks.Op, []string) {
	ops := make([]tasks.Op, n)
	keys := make([]string, n)
	for i := range n {
		room := fmt.Sprintf("%s-%04d", prefix, i)
		ops[i] = tasks.Dismiss{AppID: "demo-app-bulk", RoomID: room}
		keys[i] = "dismiss:demo-app-bulk/" + room
	}
	return ops, keys
}

// Poll calls cond every interval until it returns true (true) or timeout
// passes (false).
func Poll(timeout, interval time.Duration, cond func() bool) bool {
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

// ActiveKeys lists the IDs of every active task of the default queue.
func (r *Rig) ActiveKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	for page := 1; page <= 100; page++ {
		infos, err := r.Insp.ListActiveTasks(tasks.DefaultQueue, asynq.PageSize(500), asynq.Page(page))
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

// Metric returns the value of one Prometheus sample line ("name{labels}")
// in a /metrics body, or 0 when absent.
func Metric(body, sample string) float64 {
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
