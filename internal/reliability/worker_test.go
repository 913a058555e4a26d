package reliability_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/reliability"
	"github.com/meetops/meetops/internal/tasks"
)

func TestWorkerBinaryRunsAllFiveOperationsAndStopsCleanly(t *testing.T) {
	t.Parallel()
	r := proctest.NewSharedRig(t)
	fiveOperations(t, r, func(ops []tasks.Op) []string { return r.Enqueue(t, ops, tasks.TaskOptions{}) }, &reliability.Row{})
}

// fiveOps are one task of each operation, on objects of the simulator's
// demo world, and fiveOpsEffects the effects they must have.
var (
	fiveOps = []tasks.Op{
		tasks.Dismiss{AppID: "demo-app", RoomID: "room-001"},
		tasks.Disable{AppID: "demo-app-2"},
		tasks.Cancel{ConferenceID: "900000001"},
		tasks.HangUp{ConferenceID: "900000010", ParticipantIDs: []string{"p-001", "p-002"}},
		tasks.Reclaim{Account: "member-alice", VMRIDs: []string{"vmr-alice-1"}},
	}
	fiveOpsEffects = []string{"dismiss:demo-app/room-001", "disable:demo-app-2", "cancel:900000001",
		"hangup:900000010/p-001", "hangup:900000010/p-002", "reclaim:member-alice/vmr-alice-1"}
)

// fiveOperations runs fiveOps, enqueued with enqueue (which returns their
// keys), through a worker on the rig r, on any topology: every task
// completes with its effect once, the worker's metrics and dashboard see
// them, and SIGTERM stops it cleanly. It fills row's counts first.
func fiveOperations(t *testing.T, r *proctest.Rig, enqueue func([]tasks.Op) []string, row *reliability.Row) {
	w := proctest.StartWorker(t, r.WorkerEnv("SHUTDOWN_TIMEOUT=5s", "RATELIMIT_RTC_ROOMS=off", "RATELIMIT_RTC_APPS=off"))

	keys := enqueue(fiveOps)
	r.WaitSettled(t, len(keys), 30*time.Second)
	infos := r.Infos(t, keys)
	st := r.Sim.Stats(t)
	lost, _ := proctest.Tally(t, infos)
	missing, dup, extra := proctest.Effects(t, st, "", fiveOpsEffects)
	row.Tasks, row.Lost, row.Duplicated, row.UpstreamCalls = len(keys), lost+missing, dup+extra, proctest.Calls(st)
	for k, info := range infos {
		require.Equal(t, asynq.TaskStateCompleted, info.State, k)
	}
	for _, e := range fiveOpsEffects {
		require.Equal(t, 1, st.Effects[e], "simulator effect %s", e)
	}

	resp, err := http.Get("http://" + w.HTTP + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), `meetops_tasks_processed_total{outcome="succeeded",type="rtc:room:dismiss"} 1`)
	require.Contains(t, string(body), `meetops_upstream_request_duration_seconds_count{op="dismiss",status_class="2xx"} 1`)
	require.Contains(t, string(body), `asynq_tasks_processed_total`)

	// The dashboard's API answers with our readable payloads.
	resp, err = http.Get("http://" + w.HTTP + "/monitoring/api/queues/default/completed_tasks")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), `\"app_id\": \"demo-app\"`)
	require.Contains(t, string(body), `\"outcome\": \"succeeded\"`)

	require.NoError(t, w.Signal(syscall.SIGTERM))
	exitErr, exited := w.Wait(10 * time.Second)
	require.True(t, exited, "worker must exit within ShutdownTimeout after SIGTERM")
	require.NoError(t, exitErr, "clean exit, status 0")
	require.Contains(t, w.Output(), "worker stopped")
	for _, line := range strings.Split(strings.TrimSpace(w.Output()), "\n") {
		require.True(t, json.Valid([]byte(line)), "every log line is JSON: %q", line)
	}
}

func TestWorkerRejectsBadConfigurationAtStartup(t *testing.T) {
	t.Parallel()
	bin := proctest.Bin(t, "worker") // build first: the timeout is for the worker alone
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{
		"REDIS_URL=redis://127.0.0.1:1/0",
		"RTC_AK=AKONLY", // half-set: no SK, no project
		"MEETING_APP_ID=app", "MEETING_APP_KEY=SECRET-APP-KEY-XYZ",
		"WORKER_CONCURRENCY=zero", "RATELIMIT_RTC_ROOMS=fast", "LOG_LEVEL=loud",
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.ExitCode())
	text := string(out)
	for _, want := range []string{"RTC_SK", "WORKER_CONCURRENCY", "RATELIMIT_RTC_ROOMS", "LOG_LEVEL"} {
		require.Contains(t, text, want)
	}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		require.True(t, strings.HasPrefix(line, "worker: "), "one clear line per problem: %q", line)
	}
	require.NotContains(t, text, "SECRET-APP-KEY-XYZ")
	require.NotContains(t, text, "goroutine", "no stack trace")
}
