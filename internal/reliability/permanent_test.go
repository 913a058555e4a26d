package reliability_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/reliability"
	"github.com/meetops/meetops/internal/tasks"
)

// permanentCase is one permanent failure: a task, the dead letter it must
// become, and how to recognise its upstream requests in the simulator log.
type permanentCase struct {
	name   string
	op     tasks.Op    // nil: a raw task with payload (invalid)
	raw    *asynq.Task // for invalid payloads
	faults string      // faults in force while it runs ("" none)
	reason string      // dead-letter reason
	status int         // HTTP status in the result (0: none)
	code   string      // error code in the result
	match  func(e proctest.SimLogEntry) bool
	calls  int // upstream requests it may make (matched by match)
}

// Scenario 4. Each documented permanent class dead-letters at once: one
// upstream call (two for a 401 with a token: it is refreshed once; an AK/SK
// request is not resent), no retry, and a dead letter with the right reason,
// status and code in the task result and in meetops' dead-letter store. An
// invalid payload never reaches upstream. (The simulator cannot inject a
// 403; the "other 4xx" class is covered by 400 MMC.111072012 and 404 on
// disable.)
func TestPermanentErrorsDeadLetterAtOnce(t *testing.T) {
	t.Parallel()
	row := report(t, "4 permanent errors (4xx, auth, invalid)")
	r := proctest.NewRig(t, redistest.Options{}, "-log-size", "1000")
	w := proctest.StartWorker(t, r.WorkerEnv("RATELIMIT_RTC_ROOMS=off", "RATELIMIT_RTC_APPS=off", "LOG_LEVEL=info"))
	path := func(p string) func(e proctest.SimLogEntry) bool {
		return func(e proctest.SimLogEntry) bool { return e.Path == p }
	}
	conf := func(op, id string) func(e proctest.SimLogEntry) bool {
		return func(e proctest.SimLogEntry) bool { return e.Op == op && strings.Contains(e.Query, "conferenceID="+id) }
	}
	cases := []permanentCase{
		{name: "dismiss 404 (room gone)", op: tasks.Dismiss{AppID: "demo-app", RoomID: "room-404"},
			reason: tasks.ReasonHTTP4xx, status: 404, code: "RTC.00001003", match: path("/v2/apps/demo-app/rooms/room-404/dismiss"), calls: 1},
		{name: "disable 400 RTC.00001016 (app deactivated)", op: tasks.Disable{AppID: "demo-app-disabled"},
			reason: tasks.ReasonHTTP4xx, status: 400, code: "RTC.00001016", match: path("/v2/apps/demo-app-disabled/disable"), calls: 1},
		{name: "dismiss 400 RTC.00001016 (app deactivated)", op: tasks.Dismiss{AppID: "demo-app-disabled", RoomID: "room-001"},
			reason: tasks.ReasonHTTP4xx, status: 400, code: "RTC.00001016", match: path("/v2/apps/demo-app-disabled/rooms/room-001/dismiss"), calls: 1},
		{name: "disable 404 (other 4xx: no such app)", op: tasks.Disable{AppID: "demo-app-missing"},
			reason: tasks.ReasonHTTP4xx, status: 404, code: "RTC.00001003", match: path("/v2/apps/demo-app-missing/disable"), calls: 1},
		{name: "cancel MMC.111070005 (no such meeting)", op: tasks.Cancel{ConferenceID: "900000404"},
			reason: tasks.ReasonHTTP4xx, status: 400, code: "MMC.111070005", match: conf("cancel", "900000404"), calls: 1},
		{name: "cancel MMC.111072006 (meeting ended)", op: tasks.Cancel{ConferenceID: "900000020"},
			reason: tasks.ReasonHTTP4xx, status: 400, code: "MMC.111072006", match: conf("cancel", "900000020"), calls: 1},
		{name: "cancel MMC.111072012 (other 4xx: in progress)", op: tasks.Cancel{ConferenceID: "900000010"},
			reason: tasks.ReasonHTTP4xx, status: 400, code: "MMC.111072012", match: conf("cancel", "900000010"), calls: 1},
		{name: "reclaim MMC.111070006 (VMR not assigned)", op: tasks.Reclaim{Account: "member-alice", VMRIDs: []string{"vmr-unassigned-1"}},
			reason: tasks.ReasonHTTP4xx, status: 400, code: "MMC.111070006", match: path("/v1/usg/dcs/corp/vmr/recycle-from-member/member-alice"), calls: 1},
		{name: "hangup MMC.111072006 (meeting ended)", op: tasks.HangUp{ConferenceID: "900000021", ParticipantIDs: []string{"p-001"}},
			reason: tasks.ReasonHTTP4xx, status: 400, code: "MMC.111072006",
			match: func(e proctest.SimLogEntry) bool {
				return e.Op != "appauth" && strings.Contains(e.Query, "conferenceID=900000021")
			}, calls: 0 /* checked below: at most one request per step, the failing one last */},
		{name: "invalid payload (never sent)", raw: asynq.NewTask(tasks.TypeDismiss, []byte(`{"app_id":"demo-app","room_id":".."}`),
			asynq.TaskID("invalid-dot-room"), asynq.Retention(time.Hour)),
			reason: tasks.ReasonInvalidPayload, match: func(e proctest.SimLogEntry) bool { return strings.Contains(e.Path, "/rooms/..") }, calls: 0},
		// AK/SK: a fresh signature cannot cure a refused one, and repeated
		// failures lock the key (APIG.0301), so the client does not resend.
		{name: "dismiss 401 (auth, AK/SK: not resent)", op: tasks.Dismiss{AppID: "demo-app", RoomID: "room-002"},
			faults: `{"dismiss": {"script": ["401", "401"]}}`,
			reason: tasks.ReasonAuth, status: 401, code: "APIG.0307", match: path("/v2/apps/demo-app/rooms/room-002/dismiss"), calls: 1},
		{name: "cancel 401 twice (auth, token refreshed once)", op: tasks.Cancel{ConferenceID: "900000002"},
			faults: `{"cancel": {"script": ["401", "401"]}}`,
			reason: tasks.ReasonAuth, status: 401, code: "USG.000000004", match: conf("cancel", "900000002"), calls: 2},
	}

	dl := deadletter.New(r.RDB, deadletter.Options{})
	lost, dup := 0, 0
	// Cases without faults run together; each one with a fault script runs
	// alone, so its script meets its own task.
	keys := map[string]string{}
	var plain []permanentCase
	for _, c := range cases {
		if c.faults == "" {
			keys[c.name] = c.enqueue(t, r)
			plain = append(plain, c)
		}
	}
	for _, c := range plain {
		c.wait(t, r, keys[c.name])
	}
	for _, c := range cases {
		if c.faults != "" {
			r.Sim.SetFaults(t, c.faults)
			keys[c.name] = c.enqueue(t, r)
			c.wait(t, r, keys[c.name])
			r.Sim.ClearFaults(t)
		}
	}
	for _, c := range cases {
		key := keys[c.name]
		info, err := r.Insp.GetTaskInfo(tasks.DefaultQueue, key)
		require.NoError(t, err, c.name)
		ok := info.State == asynq.TaskStateArchived && info.Retried == 0
		res := proctest.Result(t, info)
		ok = ok && res.Outcome == tasks.OutcomeDeadLetter && res.Reason == c.reason && res.Status == c.status &&
			res.ErrorCode == c.code && res.Attempts == 1
		rec, err := dl.Get(ctx(t), key)
		ok = ok && err == nil && rec.Reason == c.reason && string(rec.Result) == string(info.Result) &&
			rec.Type == info.Type && rec.Queue == tasks.DefaultQueue
		if !ok {
			lost++
			t.Errorf("%s: state %s retried %d result %s; dead-letter record %+v (%v)", c.name, info.State, info.Retried, info.Result, rec, err)
		}
		var seen []proctest.SimLogEntry
		for _, e := range r.Sim.Log(t) {
			if c.match(e) {
				seen = append(seen, e)
			}
		}
		if c.op != nil && c.op.Name() == "hangup" {
			// conf_detail and control_token (or the hang-up) once each,
			// stopping at the failure.
			perOp := map[string]int{}
			for _, e := range seen {
				perOp[e.Op]++
			}
			var last proctest.SimLogEntry
			if len(seen) > 0 {
				last = seen[len(seen)-1]
			}
			if perOp["conf_detail"] > 1 || perOp["control_token"] > 1 || perOp["hangup"] > 1 || last.ErrorCode != c.code {
				dup++
				t.Errorf("%s: upstream requests %v, last %+v", c.name, perOp, last)
			}
			t.Logf("%-45s → %s %d %s; upstream %v", c.name, res.Reason, res.Status, res.ErrorCode, perOp)
			continue
		}
		if len(seen) != c.calls {
			dup++
			t.Errorf("%s: %d upstream requests, want %d: %+v", c.name, len(seen), c.calls, seen)
		}
		t.Logf("%-45s → %s %d %s; %d upstream call(s)", c.name, res.Reason, res.Status, res.ErrorCode, len(seen))
	}
	st := r.Sim.Stats(t)
	_, m := w.Get(t, "/metrics")
	counted := 0.0
	for _, typ := range []string{tasks.TypeDismiss, tasks.TypeDisable, tasks.TypeCancel, tasks.TypeHangUp, tasks.TypeReclaim} {
		for _, reason := range []string{tasks.ReasonHTTP4xx, tasks.ReasonAuth, tasks.ReasonInvalidPayload} {
			counted += proctest.Metric(m, fmt.Sprintf(`meetops_dead_letters_total{reason=%q,type=%q}`, reason, typ))
		}
	}
	*row = reliability.Row{Scenario: row.Scenario, Tasks: len(cases), Lost: lost, Duplicated: dup,
		UpstreamCalls: proctest.Calls(st), Time: time.Since(r.Started),
		Note: fmt.Sprintf("%d classes → dead letter on attempt 1; %g counted in /metrics", len(cases), counted)}
	require.Equal(t, float64(len(cases)), counted, "every dead letter counted in meetops_dead_letters_total")
	require.Zero(t, lost, "dead letters missing or wrong")
	require.Zero(t, dup, "upstream called more than allowed")
	require.Zero(t, st.Effects["dismiss:demo-app/room-404"]+st.Effects["cancel:900000010"], "no effect from a refused call")
}

// enqueue enqueues the case's task and returns its key.
func (c permanentCase) enqueue(t *testing.T, r *proctest.Rig) string {
	t.Helper()
	task, key := c.raw, "invalid-dot-room"
	if task == nil {
		p, err := tasks.Prepare(c.op, tasks.TaskOptions{})
		require.NoError(t, err)
		task, key = p.Task, p.Key
	}
	_, err := r.Client.Enqueue(task)
	require.NoError(t, err, c.name)
	return key
}

// wait waits until the case's task is archived (or, wrongly, completed).
func (c permanentCase) wait(t *testing.T, r *proctest.Rig, key string) {
	t.Helper()
	require.True(t, proctest.Poll(30*time.Second, 20*time.Millisecond, func() bool {
		info, err := r.Insp.GetTaskInfo(tasks.DefaultQueue, key)
		return err == nil && (info.State == asynq.TaskStateArchived || info.State == asynq.TaskStateCompleted)
	}), "%s: task settles", c.name)
}
