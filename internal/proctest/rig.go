package proctest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/tasks"
)

// Rig is one binary-level test's world: its Redis — a fresh database of a
// redis-server, or the whole of a Redis Cluster or a Sentinel-managed
// primary — the simulator process, and a go-redis client, an asynq client
// and an asynq inspector on that Redis. Workers and the enqueue CLI are
// started against it with WorkerEnv, RedisEnv, RunCLI and StartCLI, which
// give them the rig's topology as every meetops process reads it
// (REDIS_URL, or REDIS_CLUSTER_ADDRS, or REDIS_SENTINEL_ADDRS and
// REDIS_SENTINEL_MASTER).
type Rig struct {
	// Topology is the kind of Redis the rig runs on.
	Topology redisconf.Topology
	// Redis is the rig's redis-server on a single-server rig (dedicated,
	// or the package's shared one), DB the database the rig uses on it and
	// RedisURL its URL. They are nil, 0 and "" on a Cluster or Sentinel rig.
	Redis    *redistest.Server
	DB       int
	RedisURL string
	// Cluster is the rig's Redis Cluster on a cluster rig, nil otherwise.
	Cluster *redistest.Cluster
	// Sentinel is the rig's Sentinel topology on a Sentinel rig, nil
	// otherwise.
	Sentinel *redistest.Sentinel
	// RedisConfig is the rig's Redis as a meetops process is configured
	// for it; RedisEnv spells it as environment variables.
	RedisConfig redisconf.Config
	// RDB, Client and Insp are a go-redis client for the topology (built
	// by redisconf, as the processes build theirs: a cluster client on a
	// cluster, a failover client on Sentinel), an asynq client and an
	// asynq inspector on it.
	RDB    redis.UniversalClient
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
	return newServerRig(t, redistest.New(t, opts), simArgs)
}

// NewSharedRig is NewRig on a fresh database of the package's shared
// redis-server (redistest.Main), for tests that leave Redis alone.
func NewSharedRig(t *testing.T, simArgs ...string) *Rig {
	t.Helper()
	return newServerRig(t, redistest.Shared(t), simArgs)
}

// NewClusterRig is a rig on the Redis Cluster c, with the simulator (demo
// world, plus simArgs). A cluster has only database 0, so the rig takes
// the whole cluster: it waits until no other rig of the test binary uses c
// (a test must not make two rigs on one cluster at once), then deletes
// every key on it. Tests sharing a cluster (redistest.SharedCluster) thus
// run one after another, each on an empty cluster.
func NewClusterRig(t *testing.T, c *redistest.Cluster, simArgs ...string) *Rig {
	t.Helper()
	claim(t, c, c.Flush)
	cfg := redisconf.Config{ClusterAddrs: c.Addrs()}
	if c.Password() != "" {
		// Cluster nodes take their credentials from REDIS_URL, whose host
		// is ignored.
		cfg.URL = (&url.URL{Scheme: "redis", User: url.UserPassword("", c.Password()), Host: "cluster.invalid:6379", Path: "/0"}).String()
	}
	r := &Rig{Started: time.Now(), Topology: redisconf.Cluster, Cluster: c}
	r.connect(t, cfg, simArgs)
	return r
}

// NewSentinelRig is a rig on the Sentinel-managed primary of x (database
// 0), with the simulator (demo world, plus simArgs). Like NewClusterRig it
// takes the whole topology: it waits until no other rig of the test binary
// uses x, then deletes every key on it.
func NewSentinelRig(t *testing.T, x *redistest.Sentinel, simArgs ...string) *Rig {
	t.Helper()
	claim(t, x, x.Flush)
	cfg := redisconf.Config{SentinelAddrs: x.SentinelAddrs(), SentinelMaster: x.MasterName(), SentinelPassword: x.SentinelPassword()}
	if x.Password() != "" {
		cfg.URL = (&url.URL{Scheme: "redis", User: url.UserPassword("", x.Password()), Host: "sentinel.invalid:6379", Path: "/0"}).String()
	}
	r := &Rig{Started: time.Now(), Topology: redisconf.Sentinel, Sentinel: x}
	r.connect(t, cfg, simArgs)
	return r
}

// topologyLocks holds one mutex per Cluster or Sentinel that a rig has
// claimed: the rig holds it until its test ends.
var topologyLocks sync.Map

// claim waits until no other rig holds topology, holds it until t ends,
// and empties it with flush.
func claim(t *testing.T, topology any, flush func(context.Context) error) {
	t.Helper()
	mu, _ := topologyLocks.LoadOrStore(topology, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	t.Cleanup(mu.(*sync.Mutex).Unlock) // registered first, so it runs last
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, flush(ctx), "empty the topology for the rig")
}

func newServerRig(t *testing.T, srv *redistest.Server, simArgs []string) *Rig {
	t.Helper()
	r := &Rig{Started: time.Now(), Topology: redisconf.Single, Redis: srv}
	r.DB = r.Redis.DB(t)
	r.RedisURL = r.Redis.URL(r.DB)
	r.connect(t, redisconf.Config{URL: r.RedisURL}, simArgs)
	return r
}

// connect makes the rig's clients for cfg and starts the simulator.
func (r *Rig) connect(t *testing.T, cfg redisconf.Config, simArgs []string) {
	t.Helper()
	r.RedisConfig = cfg
	rdb, err := cfg.NewClient(redisconf.ClientOptions{})
	require.NoError(t, err, "the rig's Redis client")
	r.RDB = rdb
	t.Cleanup(func() { _ = r.RDB.Close() })
	r.Client = asynq.NewClientFromRedisClient(r.RDB)
	r.Insp = asynq.NewInspectorFromRedisClient(r.RDB)
	r.Sim = StartCloudsim(t, simArgs...)
}

// RedisEnv is the environment that points a meetops process (worker or
// enqueue) at the rig's Redis: REDIS_URL on a single server;
// REDIS_CLUSTER_ADDRS (and REDIS_URL for a password) on a cluster;
// REDIS_SENTINEL_ADDRS, REDIS_SENTINEL_MASTER (REDIS_SENTINEL_PASSWORD,
// REDIS_URL for passwords) on Sentinel.
func (r *Rig) RedisEnv() []string {
	c := r.RedisConfig
	var env []string
	if c.URL != "" {
		env = append(env, redisconf.EnvURL+"="+c.URL)
	}
	if len(c.ClusterAddrs) > 0 {
		env = append(env, redisconf.EnvClusterAddrs+"="+strings.Join(c.ClusterAddrs, ","))
	}
	if len(c.SentinelAddrs) > 0 {
		env = append(env, redisconf.EnvSentinelAddrs+"="+strings.Join(c.SentinelAddrs, ","),
			redisconf.EnvSentinelMaster+"="+c.SentinelMaster)
	}
	if c.SentinelPassword != "" {
		env = append(env, redisconf.EnvSentinelPassword+"="+c.SentinelPassword)
	}
	if c.AckReplicas > 0 {
		env = append(env, redisconf.EnvAckReplicas+"="+strconv.Itoa(c.AckReplicas))
	}
	return env
}

// WorkerEnv is the worker environment for this rig: Redis (RedisEnv), the
// simulator's endpoints and demo credentials (AK/SK and App ID), then
// extra (later entries win).
func (r *Rig) WorkerEnv(extra ...string) []string {
	return r.WorkerEnvAuth("aksk", "appid", extra...)
}

// WorkerEnvAuth is WorkerEnv with the authentication modes chosen: rtc
// "aksk" or "iam", meeting "appid" or "account" (each with the simulator's
// demo credentials).
func (r *Rig) WorkerEnvAuth(rtc, meeting string, extra ...string) []string {
	cr := cloudsim.DemoCredentials()
	env := append(r.RedisEnv(), "LOG_FORMAT=json",
		"RTC_ENDPOINT="+r.Sim.URL, "IAM_ENDPOINT="+r.Sim.URL, "MEETING_ENDPOINT="+r.Sim.URL)
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
