package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/batch"
	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/executor"
	"github.com/meetops/meetops/internal/ledger"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/retry"
	"github.com/meetops/meetops/internal/syncbuf"
	"github.com/meetops/meetops/internal/tasks"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// delayRecord is one retry delay asynq asked the policy for.
type delayRecord struct {
	n     int
	delay time.Duration
}

type testBundle struct {
	sim     *cloudsim.Sim
	rdb     *redis.Client
	client  *asynq.Client
	insp    *asynq.Inspector
	ledger  *ledger.Ledger
	dead    *deadletter.Store
	batches *batch.Store
	api     executor.API
	policy  retry.Policy
	// breaker, when set before startServer, is the handler's Deps.Breaker.
	breaker executor.Breaker

	mu     sync.Mutex
	delays []delayRecord
}

type setupOpts struct {
	// queues overrides the server's queues.
	queues map[string]int
	// noServer skips starting the asynq server (a test starts its own).
	noServer bool
	// rtcIAM uses IAM token mode instead of AK/SK.
	rtcIAM bool
	// limiter paces the server's tasks, with comeBackEarly.
	limiter       executor.Limiter
	comeBackEarly time.Duration
	// log, when set, receives the handler's log lines (JSON), else none.
	log io.Writer
}

// fastSchedule keeps the real shape (×2 per retry, ±50 % jitter, cap) at a
// scale a test can wait for; Rand 0.5 makes the jitter exactly zero.
var fastSchedule = retry.Schedule{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, Rand: func() float64 { return 0.5 }}

func setup(t *testing.T, o setupOpts) *testBundle {
	t.Helper()
	sim := cloudsim.New(cloudsim.Options{})
	sim.Demo()
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	t.Cleanup(sim.Close)

	creds := sim.Credentials()
	cfg := apiclient.Config{
		RTCEndpoint: ts.URL, MeetingEndpoint: ts.URL, IAMEndpoint: ts.URL,
		MeetingAppID: creds.AppID, MeetingAppKey: creds.AppKey, MeetingUserID: creds.UserID,
		Timeout: 2 * time.Second,
	}
	if o.rtcIAM {
		cfg.IAMUser, cfg.IAMPassword, cfg.IAMDomain, cfg.IAMProjectID = creds.IAMUser, creds.IAMPassword, creds.IAMDomain, creds.IAMProjectID
	} else {
		cfg.RTCAK, cfg.RTCSK, cfg.RTCProjectID = creds.AK, creds.SK, creds.ProjectID
	}
	api, err := apiclient.New(cfg)
	require.NoError(t, err)

	rdb := redistest.Client(t)
	b := &testBundle{
		sim: sim, rdb: rdb, api: api,
		client:  asynq.NewClientFromRedisClient(rdb),
		insp:    asynq.NewInspectorFromRedisClient(rdb),
		ledger:  ledger.New(rdb, ledger.Options{Subscribers: batch.MemberIndexKey}),
		dead:    deadletter.New(rdb, deadletter.Options{}),
		batches: batch.New(rdb, batch.Options{}),
		policy:  retry.Policy{Default: fastSchedule, Rand: func() float64 { return 0 }},
	}
	if !o.noServer {
		b.startServer(t, api, o)
	}
	return b
}

// startServer runs an asynq server wired as the worker wires it, with the
// fast schedule and a recorder of the delays asynq asked for.
func (b *testBundle) startServer(t *testing.T, api executor.API, o setupOpts) {
	t.Helper()
	queues := o.queues
	if queues == nil {
		queues = map[string]int{"default": 1}
	}
	srv := asynq.NewServerFromRedisClient(b.rdb, asynq.Config{
		Concurrency: 4,
		Queues:      queues,
		RetryDelayFunc: func(n int, err error, task *asynq.Task) time.Duration {
			d := b.policy.RetryDelay(n, err, task)
			b.mu.Lock()
			b.delays = append(b.delays, delayRecord{n, d})
			b.mu.Unlock()
			return d
		},
		IsFailure:                retry.IsFailure,
		TaskCheckInterval:        10 * time.Millisecond,
		DelayedTaskCheckInterval: 20 * time.Millisecond,
		ShutdownTimeout:          2 * time.Second,
		LogLevel:                 asynq.FatalLevel,
	})
	logger := zerolog.Nop()
	if o.log != nil {
		logger = zerolog.New(o.log)
	}
	mux := asynq.NewServeMux()
	executor.Register(mux, executor.Deps{
		API: api, Ledger: b.ledger, DeadLetters: b.dead, Logger: logger,
		LeaseWait: 50 * time.Millisecond, Batches: b.batches, Breaker: b.breaker,
		Limiter: o.limiter, Priorities: queues, ComeBackEarly: o.comeBackEarly,
	})
	require.NoError(t, srv.Start(mux))
	t.Cleanup(srv.Shutdown)
}

func (b *testBundle) enqueue(t *testing.T, op tasks.Op, o tasks.TaskOptions) string {
	t.Helper()
	p, err := tasks.Prepare(op, o)
	require.NoError(t, err)
	_, err = b.client.Enqueue(p.Task)
	require.NoError(t, err)
	return p.Key
}

// wait polls until the task is completed or archived and returns it.
func (b *testBundle) wait(t *testing.T, queue, key string) *asynq.TaskInfo {
	t.Helper()
	var info *asynq.TaskInfo
	require.Eventually(t, func() bool {
		var err error
		info, err = b.insp.GetTaskInfo(queue, key)
		return err == nil && (info.State == asynq.TaskStateCompleted || info.State == asynq.TaskStateArchived)
	}, 20*time.Second, 5*time.Millisecond, "task %s never finished", key)
	return info
}

func result(t *testing.T, info *asynq.TaskInfo) tasks.Result {
	t.Helper()
	var r tasks.Result
	require.NoError(t, json.Unmarshal(info.Result, &r), "result %q", info.Result)
	return r
}

func TestEachOperationSucceeds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		op           tasks.Op
		simOp        string
		effects      []string
		status       int
		appState     string
		loginsAtMost map[string]int
	}{
		{tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: "room-001"}, "dismiss", []string{"dismiss:demo-app/room-001"}, 202, "", nil},
		{tasks.Disable{AppID: cloudsim.DemoApp2}, "disable", []string{"disable:demo-app-2"}, 200, "DEACTIVATION", nil},
		{tasks.Cancel{ConferenceID: cloudsim.DemoConfScheduled}, "cancel", []string{"cancel:900000001"}, 200, "", nil},
		{tasks.HangUp{ConferenceID: cloudsim.DemoConfOngoing, ParticipantIDs: []string{"p-002", "p-001"}}, "hangup",
			[]string{"hangup:900000010/p-001", "hangup:900000010/p-002"}, 200, "", nil},
		{tasks.Reclaim{Account: cloudsim.DemoVMRAccount, VMRIDs: []string{"vmr-alice-1", "vmr-alice-2"}}, "reclaim",
			[]string{"reclaim:member-alice/vmr-alice-1", "reclaim:member-alice/vmr-alice-2"}, 200, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.op.Name(), func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{})
			key := b.enqueue(t, tt.op, tasks.TaskOptions{})
			info := b.wait(t, "default", key)
			require.Equal(t, asynq.TaskStateCompleted, info.State)
			r := result(t, info)
			require.Equal(t, tasks.OutcomeSucceeded, r.Outcome)
			require.Equal(t, tt.status, r.Status)
			require.Equal(t, 1, r.Attempts)
			require.NotEmpty(t, r.RequestID)
			require.Equal(t, tt.appState, r.AppState)
			st := b.sim.Stats()
			require.Equal(t, 1, st.Count(tt.simOp))
			for _, e := range tt.effects {
				require.Equal(t, 1, st.Effect(e), e)
			}
			entry, err := b.ledger.Get(context.Background(), key)
			require.NoError(t, err)
			require.Equal(t, ledger.Succeeded, entry.State)
		})
	}
}

func TestTransientFailuresRetryOnSchedule(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	require.NoError(t, b.sim.SetFault("dismiss", cloudsim.Fault{Script: []string{"503", "503", "ok"}}))
	key := b.enqueue(t, tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: "room-002"}, tasks.TaskOptions{})
	info := b.wait(t, "default", key)
	require.Equal(t, asynq.TaskStateCompleted, info.State)
	r := result(t, info)
	require.Equal(t, tasks.OutcomeSucceeded, r.Outcome)
	require.Equal(t, 3, r.Attempts)
	require.Equal(t, 3, b.sim.Stats().Count("dismiss"))
	require.Equal(t, 1, b.sim.Stats().Effect("dismiss:demo-app/room-002"))
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Equal(t, []delayRecord{{0, 20 * time.Millisecond}, {1, 40 * time.Millisecond}}, b.delays,
		"delays must follow the schedule: initial, then doubled")
}

// Every line an attempt logs names the task, its type, the attempt and the
// idempotency key.
func TestLogLinesCarryTheAttempt(t *testing.T) {
	t.Parallel()
	var logs syncbuf.Buffer
	b := setup(t, setupOpts{log: &logs})
	require.NoError(t, b.sim.SetFault("dismiss", cloudsim.Fault{Script: []string{"503", "ok"}}))
	key := b.enqueue(t, tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: "room-001"}, tasks.TaskOptions{})
	require.Equal(t, asynq.TaskStateCompleted, b.wait(t, "default", key).State)

	type line struct {
		Level, Message, TaskID, Type, Key, Outcome string
		Attempt                                    int
	}
	var got []line
	for _, raw := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l struct {
			Level   string `json:"level"`
			Message string `json:"message"`
			TaskID  string `json:"task_id"`
			Type    string `json:"type"`
			Key     string `json:"key"`
			Outcome string `json:"outcome"`
			Attempt int    `json:"attempt"`
		}
		require.NoError(t, json.Unmarshal([]byte(raw), &l), raw)
		got = append(got, line(l))
	}
	require.Equal(t, []line{
		{Level: "info", Message: "transient failure; will retry", TaskID: key, Type: tasks.TypeDismiss, Key: key, Attempt: 1},
		{Level: "info", Message: "task done", TaskID: key, Type: tasks.TypeDismiss, Key: key, Outcome: tasks.OutcomeSucceeded, Attempt: 2},
	}, got)
}

func TestThrottleHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	require.NoError(t, b.sim.SetFault("cancel", cloudsim.Fault{Script: []string{"429", "ok"}, RetryAfter: 1}))
	key := b.enqueue(t, tasks.Cancel{ConferenceID: cloudsim.DemoConfScheduled2}, tasks.TaskOptions{})
	info := b.wait(t, "default", key)
	require.Equal(t, asynq.TaskStateCompleted, info.State)
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Len(t, b.delays, 1)
	require.GreaterOrEqual(t, b.delays[0].delay, time.Second, "the next delay must be at least Retry-After")
}

func TestPermanentErrorsDeadLetterAfterOneCall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		op     tasks.Op
		simOp  string
		status int
		code   string
	}{
		{"dismiss missing app", tasks.Dismiss{AppID: cloudsim.DemoAppMissing, RoomID: "room-001"}, "dismiss", 404, "RTC.00001003"},
		{"dismiss missing room first attempt", tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: cloudsim.DemoRoomMissing}, "dismiss", 404, "RTC.00001003"},
		{"dismiss in disabled app", tasks.Dismiss{AppID: cloudsim.DemoAppDisabled, RoomID: "room-001"}, "dismiss", 400, "RTC.00001016"},
		{"disable missing app", tasks.Disable{AppID: cloudsim.DemoAppMissing}, "disable", 404, "RTC.00001003"},
		{"disable disabled app first attempt", tasks.Disable{AppID: cloudsim.DemoAppDisabled}, "disable", 400, "RTC.00001016"},
		{"cancel missing conference", tasks.Cancel{ConferenceID: cloudsim.DemoConfMissing}, "cancel", 400, "MMC.111070005"},
		{"cancel ended conference", tasks.Cancel{ConferenceID: cloudsim.DemoConfEnded}, "cancel", 400, "MMC.111072006"},
		{"hang up in ended conference", tasks.HangUp{ConferenceID: cloudsim.DemoConfEnded, ParticipantIDs: []string{"p-001"}}, "control_token", 400, "MMC.111072006"},
		{"reclaim unassigned vmr", tasks.Reclaim{Account: cloudsim.DemoVMRAccount, VMRIDs: []string{cloudsim.DemoVMRUnassigned}}, "reclaim", 400, "MMC.111070006"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{})
			key := b.enqueue(t, tt.op, tasks.TaskOptions{})
			info := b.wait(t, "default", key)
			require.Equal(t, asynq.TaskStateArchived, info.State)
			require.Equal(t, 0, info.Retried)
			require.Equal(t, 1, b.sim.Stats().Count(tt.simOp), "exactly one upstream call")
			r := result(t, info)
			require.Equal(t, tasks.Result{Outcome: tasks.OutcomeDeadLetter, Reason: tasks.ReasonHTTP4xx, Status: tt.status,
				ErrorCode: tt.code, ErrorMsg: r.ErrorMsg, RequestID: r.RequestID, Attempts: 1}, r)
			require.NotEmpty(t, r.RequestID)
			rec, err := b.dead.Get(context.Background(), key)
			require.NoError(t, err, "the dead letter is kept in meetops' own store")
			require.Equal(t, tt.op.TaskType(), rec.Type)
			require.Equal(t, "default", rec.Queue)
			require.Equal(t, tasks.ReasonHTTP4xx, rec.Reason)
			require.JSONEq(t, string(tasks.Canonical(tt.op)), string(rec.Payload))
			require.JSONEq(t, string(info.Result), string(rec.Result))
		})
	}
}

func TestInvalidPayloadNeverReachesUpstream(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	task := asynq.NewTask(tasks.TypeDismiss, []byte(`{"app_id":"demo-app","room_id":"","evil":1}`),
		asynq.TaskID("bad-1"), asynq.Retention(time.Hour))
	_, err := b.client.Enqueue(task)
	require.NoError(t, err)
	info := b.wait(t, "default", "bad-1")
	require.Equal(t, asynq.TaskStateArchived, info.State)
	r := result(t, info)
	require.Equal(t, tasks.ReasonInvalidPayload, r.Reason)
	require.Contains(t, r.ErrorMsg, "evil")
	require.Zero(t, b.sim.Stats().Count("dismiss"))
	rec, err := b.dead.Get(context.Background(), "bad-1")
	require.NoError(t, err)
	require.Equal(t, tasks.ReasonInvalidPayload, rec.Reason)
}

// A payload over the cap, written straight into Redis (no producer would
// build one), is refused before it is decoded, and the dead letter keeps a
// prefix of it, not all of it.
func TestOversizedPayloadIsRefusedUndecoded(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	huge := []byte(`{"app_id":"` + strings.Repeat("a", tasks.MaxPayloadBytes) + `","room_id":"r"}`)
	_, err := b.client.Enqueue(asynq.NewTask(tasks.TypeDismiss, huge, asynq.TaskID("huge-1"), asynq.Retention(time.Hour)))
	require.NoError(t, err)
	info := b.wait(t, "default", "huge-1")
	require.Equal(t, asynq.TaskStateArchived, info.State)
	r := result(t, info)
	require.Equal(t, tasks.ReasonInvalidPayload, r.Reason)
	require.Contains(t, r.ErrorMsg, "over the limit of 262144")
	require.Zero(t, b.sim.Stats().Count("dismiss"))
	rec, err := b.dead.Get(context.Background(), "huge-1")
	require.NoError(t, err)
	require.Less(t, len(rec.Payload), 2<<10, "a prefix only")
	require.Contains(t, string(rec.Payload), fmt.Sprintf("(%d bytes in all; truncated)", len(huge)))
	require.True(t, json.Valid(rec.Payload))
}

func TestLedgerSucceededSkipsUpstream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{})
	op := tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: "room-003"}
	// An earlier delivery of the same key (here: in another queue) took
	// effect, but this task was never marked done.
	_, lease, err := b.ledger.Begin(ctx, tasks.Key(op))
	require.NoError(t, err)
	stored := tasks.Result{Outcome: tasks.OutcomeSucceeded, Status: 202, Attempts: 1}
	require.NoError(t, b.ledger.Succeed(ctx, lease, stored.Compact(), ledger.HashField{}))

	info := b.wait(t, "default", b.enqueue(t, op, tasks.TaskOptions{}))
	require.Equal(t, asynq.TaskStateCompleted, info.State)
	require.Equal(t, stored, result(t, info))
	require.Zero(t, b.sim.Stats().Count("dismiss"), "upstream must not be called again")
}

// A worker dies after the upstream call succeeded and the ledger recorded
// it, before asynq marked the task done: the redelivery completes without
// calling upstream and keeps the full result the first delivery wrote.
func TestRedeliveryAfterSuccessKeepsTheFullResult(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{noServer: true})
	op := tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: "room-007"}
	key := b.enqueue(t, op, tasks.TaskOptions{})
	_, lease, err := b.ledger.Begin(ctx, key)
	require.NoError(t, err)
	full := tasks.Result{Outcome: tasks.OutcomeSucceeded, Status: 202, RequestID: "first-delivery", Attempts: 1}
	require.NoError(t, b.ledger.Succeed(ctx, lease, full.Compact(),
		ledger.HashField{Key: "asynq:{default}:t:" + key, Field: "result", Value: full.JSON()}))

	ts := httptest.NewServer(b.sim)
	t.Cleanup(ts.Close)
	creds := b.sim.Credentials()
	api, err := apiclient.New(apiclient.Config{RTCEndpoint: ts.URL, RTCAK: creds.AK, RTCSK: creds.SK, RTCProjectID: creds.ProjectID})
	require.NoError(t, err)
	b.startServer(t, api, setupOpts{})
	info := b.wait(t, "default", key)
	require.Equal(t, asynq.TaskStateCompleted, info.State)
	require.Equal(t, full, result(t, info))
	require.Zero(t, b.sim.Stats().Count("dismiss"))
}

func TestAlreadyDoneAfterAnAttemptThatMayHaveReachedUpstream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name  string
		op    tasks.Op
		code  string
		setup func(*cloudsim.Sim)
	}{
		{"dismiss gone", tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: cloudsim.DemoRoomMissing}, "RTC.00001003", nil},
		{"disable deactivated", tasks.Disable{AppID: cloudsim.DemoAppDisabled}, "RTC.00001016", nil},
		{"cancel missing", tasks.Cancel{ConferenceID: cloudsim.DemoConfMissing}, "MMC.111070005", nil},
		{"cancel ended", tasks.Cancel{ConferenceID: cloudsim.DemoConfEnded}, "MMC.111072006", nil},
		{"hangup ended", tasks.HangUp{ConferenceID: cloudsim.DemoConfEnded, ParticipantIDs: []string{"p-001"}}, "MMC.111072006", nil},
		{"reclaim unassigned", tasks.Reclaim{Account: cloudsim.DemoVMRAccount, VMRIDs: []string{cloudsim.DemoVMRUnassigned}}, "MMC.111070006", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{})
			// A previous attempt started (and may have reached upstream).
			_, lease, err := b.ledger.Begin(ctx, tasks.Key(tt.op))
			require.NoError(t, err)
			require.NoError(t, b.ledger.Release(ctx, lease))

			info := b.wait(t, "default", b.enqueue(t, tt.op, tasks.TaskOptions{}))
			require.Equal(t, asynq.TaskStateCompleted, info.State)
			r := result(t, info)
			require.Equal(t, tasks.OutcomeAlreadyDone, r.Outcome)
			require.Equal(t, tt.code, r.ErrorCode)
			require.Equal(t, 2, r.Attempts)
		})
	}
}

// The effect happens, the answer is lost (503 after the change): the retry
// meets the "already done" answer and completes, with one effect upstream.
func TestLostAnswerCompletesAsAlreadyDone(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	require.NoError(t, b.sim.SetFault("dismiss", cloudsim.Fault{Script: []string{"503"}, AfterEffect: true}))
	info := b.wait(t, "default", b.enqueue(t, tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: "room-004"}, tasks.TaskOptions{}))
	require.Equal(t, asynq.TaskStateCompleted, info.State)
	r := result(t, info)
	require.Equal(t, tasks.OutcomeAlreadyDone, r.Outcome)
	require.Equal(t, 404, r.Status)
	require.Equal(t, 1, b.sim.Stats().Effect("dismiss:demo-app/room-004"))
	require.Equal(t, 2, b.sim.Stats().Count("dismiss"))
}

// forgetfulAPI is the upstream client of a worker whose Redis fails over
// during its first dismissal: the call takes effect, the answer is lost,
// and the ledger's "started" record goes with the old primary.
type forgetfulAPI struct {
	executor.API
	rdb   *redis.Client
	calls atomic.Int32
}

func (f *forgetfulAPI) DismissRoom(ctx context.Context, appID, roomID string) (apiclient.Response, error) {
	r, err := f.API.DismissRoom(ctx, appID, roomID)
	if f.calls.Add(1) == 1 {
		key := tasks.Key(tasks.Dismiss{AppID: appID, RoomID: roomID})
		if derr := f.rdb.Del(ctx, "meetops:l:{"+key+"}").Err(); derr != nil {
			return r, derr
		}
	}
	return r, err
}

// A retry whose ledger record was lost still counts the "already done"
// answer as its first attempt's success: asynq's retry count says an
// earlier attempt ran. (Before, it dead-lettered as a genuine 404.)
func TestRetryWithoutItsLedgerRecordCompletesAsAlreadyDone(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noServer: true})
	b.startServer(t, &forgetfulAPI{API: b.api, rdb: b.rdb}, setupOpts{})
	require.NoError(t, b.sim.SetFault("dismiss", cloudsim.Fault{Script: []string{"503"}, AfterEffect: true}))
	info := b.wait(t, "default", b.enqueue(t, tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: "room-004"}, tasks.TaskOptions{}))
	require.Equal(t, asynq.TaskStateCompleted, info.State, "not a dead letter")
	r := result(t, info)
	require.Equal(t, tasks.OutcomeAlreadyDone, r.Outcome)
	require.Equal(t, 1, b.sim.Stats().Effect("dismiss:demo-app/room-004"))
}

func TestRetriesExhaustedDeadLetters(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	require.NoError(t, b.sim.SetFault("disable", cloudsim.Fault{Rate: 1, Fail: "503"}))
	key := b.enqueue(t, tasks.Disable{AppID: cloudsim.DemoApp}, tasks.TaskOptions{MaxRetry: 2})
	info := b.wait(t, "default", key)
	require.Equal(t, asynq.TaskStateArchived, info.State)
	require.Equal(t, 3, b.sim.Stats().Count("disable"), "1 attempt + 2 retries, then no more")
	r := result(t, info)
	require.Equal(t, tasks.ReasonRetriesExhausted, r.Reason)
	require.Equal(t, 503, r.Status)
	require.Equal(t, 3, r.Attempts)
	rec, err := b.dead.Get(context.Background(), key)
	require.NoError(t, err)
	require.Equal(t, tasks.ReasonRetriesExhausted, rec.Reason)
	e, err := b.ledger.Get(context.Background(), key)
	require.NoError(t, err)
	require.Equal(t, ledger.Started, e.State, "an exhausted task may have reached upstream; the ledger must say so")
}

func TestExpiredTokenRefreshesOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	// The first cancel logs in; then the token is revoked, as a password
	// change or expiry would.
	info := b.wait(t, "default", b.enqueue(t, tasks.Cancel{ConferenceID: cloudsim.DemoConfScheduled}, tasks.TaskOptions{}))
	require.Equal(t, asynq.TaskStateCompleted, info.State)
	require.Equal(t, 1, b.sim.Stats().Logins["appauth"])
	b.sim.RevokeTokens()
	info = b.wait(t, "default", b.enqueue(t, tasks.Cancel{ConferenceID: cloudsim.DemoConfScheduled2}, tasks.TaskOptions{}))
	require.Equal(t, asynq.TaskStateCompleted, info.State)
	r := result(t, info)
	require.Equal(t, 1, r.Attempts, "the refresh happens inside the same attempt")
	require.Equal(t, 2, b.sim.Stats().Logins["appauth"], "exactly one refresh")
}

func TestAuthFailureDeadLettersWithReasonAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{rtcIAM: true})
	require.NoError(t, b.sim.SetFault("dismiss", cloudsim.Fault{Rate: 1, Fail: "401"}))
	key := b.enqueue(t, tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: "room-005"}, tasks.TaskOptions{})
	info := b.wait(t, "default", key)
	require.Equal(t, asynq.TaskStateArchived, info.State)
	r := result(t, info)
	require.Equal(t, tasks.ReasonAuth, r.Reason)
	require.Equal(t, 401, r.Status)
	require.Equal(t, 2, b.sim.Stats().Count("dismiss"), "one call, one refresh, one more call; then stop")
	require.Equal(t, 2, b.sim.Stats().Logins["iam_token"])
}

// The same key delivered twice at once (here: enqueued in two queues and
// consumed by two servers) takes effect once: the lease defers the second
// delivery, which then finds the ledger entry succeeded.
func TestRacingWorkersTakeEffectOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noServer: true})
	require.NoError(t, b.sim.SetFault("dismiss", cloudsim.Fault{Latency: 300 * time.Millisecond}))
	creds := b.sim.Credentials()
	op := tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: "room-006"}
	key := tasks.Key(op)
	for _, q := range []string{"q1", "q2"} {
		p, err := tasks.Prepare(op, tasks.TaskOptions{Queue: q})
		require.NoError(t, err)
		_, err = b.client.Enqueue(p.Task)
		require.NoError(t, err)
	}
	ts := httptest.NewServer(b.sim)
	t.Cleanup(ts.Close)
	for _, q := range []string{"q1", "q2"} {
		api, err := apiclient.New(apiclient.Config{RTCEndpoint: ts.URL, RTCAK: creds.AK, RTCSK: creds.SK, RTCProjectID: creds.ProjectID})
		require.NoError(t, err)
		b.startServer(t, api, setupOpts{queues: map[string]int{q: 1}})
	}
	i1, i2 := b.wait(t, "q1", key), b.wait(t, "q2", key)
	require.Equal(t, asynq.TaskStateCompleted, i1.State)
	require.Equal(t, asynq.TaskStateCompleted, i2.State)
	require.Equal(t, 1, b.sim.Stats().Effect("dismiss:demo-app/room-006"))
	require.Equal(t, 1, b.sim.Stats().Count("dismiss"), "the second delivery must not call upstream")
	require.Equal(t, 0, i1.Retried+i2.Retried, "waiting for a lease does not spend a retry")
}

// An attempt asynq cancels (shutdown during a hung upstream call) frees its
// key at once and is never dead-lettered by the handler, even when it was
// the task's last attempt.
func TestInterruptedAttemptReleasesTheKeyAndIsNoDeadLetter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{noServer: true})
	require.NoError(t, b.sim.SetFault("dismiss", cloudsim.Fault{Rate: 1, Fail: "hang"}))
	key := b.enqueue(t, tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: "room-008"}, tasks.TaskOptions{MaxRetry: tasks.NoRetry})

	ts := httptest.NewServer(b.sim)
	t.Cleanup(ts.Close)
	creds := b.sim.Credentials()
	api, err := apiclient.New(apiclient.Config{RTCEndpoint: ts.URL, RTCAK: creds.AK, RTCSK: creds.SK, RTCProjectID: creds.ProjectID, Timeout: time.Minute})
	require.NoError(t, err)
	srv := asynq.NewServerFromRedisClient(b.rdb, asynq.Config{
		Queues: map[string]int{"default": 1}, TaskCheckInterval: 10 * time.Millisecond,
		ShutdownTimeout: 200 * time.Millisecond, LogLevel: asynq.FatalLevel, IsFailure: retry.IsFailure,
	})
	mux := asynq.NewServeMux()
	executor.Register(mux, executor.Deps{API: api, Ledger: b.ledger, DeadLetters: b.dead, Logger: zerolog.Nop()})
	require.NoError(t, srv.Start(mux))
	require.Eventually(t, func() bool { return b.sim.Stats().Count("dismiss") == 1 }, 10*time.Second, 5*time.Millisecond,
		"the attempt reaches the hanging upstream")
	srv.Shutdown()

	require.Eventually(t, func() bool {
		n, err := b.rdb.Exists(ctx, "meetops:lease:{"+key+"}").Result()
		return err == nil && n == 0
	}, 10*time.Second, 5*time.Millisecond, "the key's lease is released, not left to expire")
	e, err := b.ledger.Get(ctx, key)
	require.NoError(t, err)
	require.Equal(t, ledger.Started, e.State, "the call may have reached upstream")
	n, err := b.dead.Count(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "an interrupted attempt is not a dead letter")
}

// A batch's members move at their tasks' terminal outcomes — succeeded, a
// dead letter (with its reason), an invalid payload (which never took the
// lease) — and a redelivery that finds the ledger says succeeded records
// the outcome in a batch that had not heard of it. The batch completes once
// sealed with nothing pending.
func TestBatchMembersMoveAtTerminalOutcomes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{})
	ok := tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: "room-005"}
	gone := tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: "room-404"}
	id, err := b.batches.Create(ctx, batch.Spec{Label: "t"})
	require.NoError(t, err)
	_, err = b.batches.Add(ctx, id, []batch.Member{{Key: tasks.Key(ok), Index: 0}, {Key: tasks.Key(gone), Index: 1}, {Key: "bad-payload", Index: 2}})
	require.NoError(t, err)
	_, err = b.batches.Seal(ctx, id)
	require.NoError(t, err)

	b.wait(t, "default", b.enqueue(t, ok, tasks.TaskOptions{}))
	b.wait(t, "default", b.enqueue(t, gone, tasks.TaskOptions{}))
	_, err = b.client.Enqueue(asynq.NewTask(tasks.TypeDismiss, []byte(`{"app_id":""}`), asynq.TaskID("bad-payload"), asynq.Retention(time.Hour)))
	require.NoError(t, err)
	b.wait(t, "default", "bad-payload")
	p, err := b.batches.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, []int{3, 0, 1, 0, 2}, []int{p.Total, p.Pending, p.Succeeded, p.AlreadyDone, p.Dead})
	require.True(t, p.Complete)
	var states []batch.State
	require.NoError(t, b.batches.Members(ctx, id, func(m batch.Member) error { states = append(states, m.State); return nil }))
	require.Equal(t, []batch.State{batch.Succeeded, batch.DeadWith(tasks.ReasonHTTP4xx), batch.DeadWith(tasks.ReasonInvalidPayload)}, states)

	// A batch that joined after the task succeeded, without hearing of it
	// (its worker died before recording it): the same key redelivered in
	// another queue meets the ledger's "succeeded" and records it.
	late, err := b.batches.Create(ctx, batch.Spec{Label: "late"})
	require.NoError(t, err)
	_, err = b.batches.Add(ctx, late, []batch.Member{{Key: tasks.Key(ok)}})
	require.NoError(t, err)
	_, err = b.batches.Seal(ctx, late)
	require.NoError(t, err)
	b.startServer(t, b.api, setupOpts{queues: map[string]int{"other": 1}})
	b.wait(t, "other", b.enqueue(t, ok, tasks.TaskOptions{Queue: "other"}))
	p, err = b.batches.Get(ctx, late)
	require.NoError(t, err)
	require.Equal(t, 1, p.Succeeded)
	require.True(t, p.Complete)
	require.Equal(t, 2, b.sim.Stats().Count("dismiss"), "room-005 and room-404 once each: the redelivery called nothing")
}

// A batch that takes a task as member while its attempt is in flight (after
// the worker read the task's batches at Begin) still hears its outcome:
// the finish script's answer names it, and it is moved after the others.
func TestBatchJoinedDuringTheAttemptHearsTheOutcome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{})
	op := tasks.Dismiss{AppID: cloudsim.DemoApp, RoomID: "room-006"}
	key := tasks.Key(op)
	early, err := b.batches.Create(ctx, batch.Spec{Label: "early"})
	require.NoError(t, err)
	_, err = b.batches.Add(ctx, early, []batch.Member{{Key: key}})
	require.NoError(t, err)
	_, err = b.batches.Seal(ctx, early)
	require.NoError(t, err)
	require.NoError(t, b.sim.SetFault(cloudsim.OpDismiss, cloudsim.Fault{Latency: 500 * time.Millisecond}))
	// Redis knows the transition script already (else the pipelined
	// EVALSHA fails and every batch is moved by the fallback).
	_, err = b.batches.Transition(ctx, []string{early}, "not-a-member", batch.Succeeded)
	require.NoError(t, err)

	b.enqueue(t, op, tasks.TaskOptions{})
	require.Eventually(t, func() bool {
		e, err := b.ledger.Get(ctx, key)
		return err == nil && e.State == ledger.Started
	}, 10*time.Second, 5*time.Millisecond, "the attempt is in flight")
	late, err := b.batches.Create(ctx, batch.Spec{Label: "late"})
	require.NoError(t, err)
	_, err = b.batches.Add(ctx, late, []batch.Member{{Key: key}})
	require.NoError(t, err)
	_, err = b.batches.Seal(ctx, late)
	require.NoError(t, err)

	b.wait(t, "default", key)
	for _, id := range []string{early, late} {
		p, err := b.batches.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, 1, p.Succeeded, "batch %s", id)
		require.True(t, p.Complete, "batch %s", id)
	}
}
