package reliability_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/reliability"
	"github.com/meetops/meetops/internal/tasks"
)

// noMeetingLimits turns the Meeting rate limits off, so that every task is
// in flight at once and meets the login together.
var noMeetingLimits = []string{"RATELIMIT_MEETING_MGMT=off", "RATELIMIT_MEETING_CONTROL=off", "RATELIMIT_MEETING_VMR=off"}

// deferredMeeting is how many Meeting task attempts the worker deferred
// (its /metrics).
func deferredMeeting(t *testing.T, w *proctest.Worker) float64 {
	t.Helper()
	_, m := w.Get(t, "/metrics")
	n := 0.0
	for _, typ := range []string{tasks.TypeCancel, tasks.TypeHangUp} {
		n += proctest.Metric(m, fmt.Sprintf(`meetops_tasks_processed_total{outcome="deferred",type=%q}`, typ))
	}
	return n
}

// Scenario 17. The App ID login is refused once (401), then accepted,
// while 200 Meeting tasks (150 cancels, 50 hang-ups in 5 meetings) are in
// flight at once. Every task waiting on the refused login is deferred
// without spending a retry and completes after the next login: no dead
// letter, every effect once, no retry spent.
func TestAuthBlip(t *testing.T) {
	t.Parallel()
	row := report(t, "17 auth blip: App ID login 401 once")
	fixture, ops, effects := tokenFixture(t, 150, 5, 20)
	r := proctest.NewRig(t, redistest.Options{}, "-log-size", "16", "-fixture", fixture)
	r.Sim.SetFaults(t, `{"appauth": {"script": ["401"]}}`)
	w := proctest.StartWorker(t, r.WorkerEnv(append(noMeetingLimits, "LOG_LEVEL=warn")...))

	begin := time.Now()
	keys := r.Enqueue(t, ops, tasksDefault)
	r.WaitSettled(t, len(keys), 2*time.Minute)
	elapsed := time.Since(begin)

	infos := r.Infos(t, keys)
	lost, _ := proctest.Tally(t, infos)
	st := r.Sim.Stats(t)
	missing, dup, extra := proctest.Effects(t, st, "", effects)
	dead, retried := 0, 0
	for _, info := range infos {
		if info != nil && info.State == asynq.TaskStateArchived {
			dead++
		}
		if info != nil {
			retried += info.Retried
		}
	}
	refused := st.Requests["appauth"].ByStatus["401"]
	deferred := deferredMeeting(t, w)
	t.Logf("scenario 17: %d Meeting tasks, App ID login refused %d× then accepted (%d successful logins): %d dead letters, %d retries spent, "+
		"%g attempts deferred; all done in %s", len(keys), refused, st.Logins["appauth"], dead, retried, deferred, elapsed.Round(10*time.Millisecond))
	*row = reliability.Row{Scenario: row.Scenario, Tasks: len(keys), Lost: lost + missing, Duplicated: dup + extra,
		UpstreamCalls: proctest.Calls(st), Time: time.Since(r.Started),
		Note: fmt.Sprintf("1×401 on the login; %d dead letters, %d retries; %g attempts deferred; done in %s", dead, retried, deferred,
			elapsed.Round(100*time.Millisecond))}
	require.Equal(t, 1, refused, "the login was refused once")
	require.Zero(t, dead, "no dead letter")
	require.Zero(t, lost+missing, "lost tasks")
	require.Zero(t, dup+extra, "duplicate effects")
	require.Zero(t, retried, "deferrals spend no retry")
	require.Positive(t, deferred, "tasks met the refused login and were deferred")
}

// readyzProbe polls a worker's /readyz and keeps its transitions.
type readyzProbe struct {
	mu    sync.Mutex
	seen  []readyzState
	stop  chan struct{}
	ended chan struct{}
}

type readyzState struct {
	at   time.Time
	code int
	body string
}

func probeReadyz(w *proctest.Worker) *readyzProbe {
	p := &readyzProbe{stop: make(chan struct{}), ended: make(chan struct{})}
	c := &http.Client{Timeout: 2 * time.Second}
	go func() {
		defer close(p.ended)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			if resp, err := c.Get("http://" + w.HTTP + "/readyz"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				p.mu.Lock()
				if n := len(p.seen); n == 0 || p.seen[n-1].code != resp.StatusCode {
					p.seen = append(p.seen, readyzState{time.Now(), resp.StatusCode, strings.TrimSpace(string(b))})
				}
				p.mu.Unlock()
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// states stops the probe and returns the transitions it saw.
func (p *readyzProbe) states() []readyzState {
	close(p.stop)
	<-p.ended
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen
}

// Scenario 18. The App ID login is refused for good: the worker's App Key
// file holds a wrong key. The issue asks for 401 for 3 minutes against a
// 2-minute window; to keep `make test` short the window is scaled through
// the settings: AUTH_REJECT_COUNT=3 refusals over AUTH_REJECT_WINDOW=6s,
// retried every AUTH_RETRY_INTERVAL=2s. The 50 Meeting tasks are deferred
// (none dead-letters) until the window has passed since the first refusal;
// then the credentials are rejected, every task dead-letters with reason
// auth and status 401, and /readyz answers 503 naming the credential.
// Writing the right key into the file (a rotation) makes the worker ready
// again without a restart, and a new task completes.
func TestAuthRefusedForTheWindow(t *testing.T) {
	t.Parallel()
	row := report(t, "18 auth refused: App ID login 401 for the window")
	const window = 6 * time.Second
	const wrongKey = "wrong-app-key-SCENARIO18"
	fixture, ops, _ := tokenFixture(t, 41, 1, 20)
	later := ops[40] // enqueued after the recovery
	ops = append(ops[:40:40], ops[41:]...)
	r := proctest.NewRig(t, redistest.Options{}, "-log-size", "1000", "-fixture", fixture)
	keyFile := filepath.Join(t.TempDir(), "meeting_app_key")
	require.NoError(t, os.WriteFile(keyFile, []byte(wrongKey+"\n"), 0o600))
	env := r.WorkerEnv(append(noMeetingLimits, "LOG_LEVEL=info", "AUTH_REJECT_COUNT=3",
		"AUTH_REJECT_WINDOW="+window.String(), "AUTH_RETRY_INTERVAL=2s")...)
	for i, kv := range env {
		if strings.HasPrefix(kv, "MEETING_APP_KEY=") {
			env[i] = "MEETING_APP_KEY_FILE=" + keyFile
		}
	}
	w := proctest.StartWorker(t, env)
	probe := probeReadyz(w)

	begin := time.Now()
	keys := r.Enqueue(t, ops, tasksDefault)
	// Watch for the first dead letter. After the rejection each task
	// dead-letters when its deferral ends (the login backoff, up to 30 s),
	// later still on a loaded machine.
	var firstDead time.Time
	require.True(t, proctest.Poll(2*time.Minute, 20*time.Millisecond, func() bool {
		q := r.Queue()
		if q != nil && q.Archived > 0 && firstDead.IsZero() {
			firstDead = time.Now()
		}
		return q != nil && int(q.Archived) == len(keys)
	}), "every task dead-letters")
	allDead := time.Now()
	_, m := w.Get(t, "/metrics")
	gaugeRejected := proctest.Metric(m, `meetops_credentials_rejected{credential="meeting"}`)
	code, body := w.Get(t, "/readyz")

	var refusals []time.Time
	for _, e := range r.Sim.Log(t) {
		if e.Op == "appauth" && e.Status == http.StatusUnauthorized {
			refusals = append(refusals, e.Time)
		}
	}
	require.NotEmpty(t, refusals)
	firstRefusal := refusals[0]

	// Rotate the secret: the right key into the file.
	rotated := time.Now()
	require.NoError(t, os.WriteFile(keyFile, []byte(cloudsim.DemoCredentials().AppKey+"\n"), 0o600))
	require.True(t, proctest.Poll(30*time.Second, 20*time.Millisecond, func() bool {
		c, _ := w.Get(t, "/readyz")
		return c == http.StatusOK
	}), "ready again without a restart")
	recovered := time.Since(rotated)
	laterKey := r.Enqueue(t, []tasks.Op{later}, tasksDefault)[0]
	require.True(t, proctest.Poll(30*time.Second, 20*time.Millisecond, func() bool {
		info, err := r.Insp.GetTaskInfo(tasks.DefaultQueue, laterKey)
		return err == nil && info.State == asynq.TaskStateCompleted
	}), "a new task completes after the recovery")
	_, m = w.Get(t, "/metrics")
	gaugeAfter := proctest.Metric(m, `meetops_credentials_rejected{credential="meeting"}`)
	seen := probe.states()

	wrong := 0
	for _, info := range r.Infos(t, keys) {
		if info == nil || info.State != asynq.TaskStateArchived {
			wrong++
			continue
		}
		res := proctest.Result(t, info)
		if res.Reason != tasks.ReasonAuth || res.Status != http.StatusUnauthorized || info.Retried != 0 {
			wrong++
			t.Errorf("task %s: reason %q status %d retried %d", info.ID, res.Reason, res.Status, info.Retried)
		}
	}
	var notReadyAt, readyAgainAt time.Time
	var notReadyBody string
	for _, s := range seen {
		if s.code == http.StatusServiceUnavailable && notReadyAt.IsZero() {
			notReadyAt, notReadyBody = s.at, s.body
		}
		if s.code == http.StatusOK && !notReadyAt.IsZero() && readyAgainAt.IsZero() {
			readyAgainAt = s.at
		}
	}
	st := r.Sim.Stats(t)
	t.Logf("scenario 18: %d tasks; first refusal %s after the enqueue, %d refusals before the last task dead-lettered; "+
		"first dead letter %s after the first refusal (window %s), all dead %s after it; readyz 503 from %s after the first refusal (%q), "+
		"200 again %s after the rotation; gauge %g while rejected, %g after",
		len(keys), firstRefusal.Sub(begin).Round(time.Millisecond), len(refusals), firstDead.Sub(firstRefusal).Round(10*time.Millisecond), window,
		allDead.Sub(firstRefusal).Round(10*time.Millisecond), notReadyAt.Sub(firstRefusal).Round(10*time.Millisecond), notReadyBody,
		recovered.Round(10*time.Millisecond), gaugeRejected, gaugeAfter)
	*row = reliability.Row{Scenario: row.Scenario, Tasks: len(keys) + 1, Lost: wrong, UpstreamCalls: proctest.Calls(st), Time: time.Since(r.Started),
		Note: fmt.Sprintf("window %s (scaled from 2m): first dead letter %s after the first 401, all by %s; not ready meanwhile; ready %s after the key rotation",
			window, firstDead.Sub(firstRefusal).Round(100*time.Millisecond), allDead.Sub(firstRefusal).Round(100*time.Millisecond),
			recovered.Round(100*time.Millisecond))}

	require.GreaterOrEqual(t, firstDead.Sub(firstRefusal), window, "no task dead-letters before the window has passed")
	require.Zero(t, wrong, "every task dead-lettered with reason auth, status 401, no retry spent")
	require.GreaterOrEqual(t, len(refusals), 3, "AUTH_REJECT_COUNT refusals")
	require.Equal(t, http.StatusServiceUnavailable, code, "not ready while rejected")
	require.Contains(t, body, "credentials rejected: meeting (MEETING_APP_ID/MEETING_APP_KEY)")
	require.False(t, notReadyAt.IsZero(), "the probe saw /readyz not ready")
	require.GreaterOrEqual(t, notReadyAt.Sub(firstRefusal), window, "ready until the window had passed")
	require.False(t, readyAgainAt.IsZero(), "the probe saw /readyz ready again")
	require.Equal(t, 1.0, gaugeRejected)
	require.Zero(t, gaugeAfter)
	// AUTH_RETRY_INTERVAL (2 s) plus the worker's 1 s tick and the login
	// itself; the slack is for a loaded test machine.
	require.LessOrEqual(t, recovered, 10*time.Second, "recovered within AUTH_RETRY_INTERVAL")
	out := w.Output()
	require.Contains(t, out, `"login_state":"rejected"`)
	require.Contains(t, out, `"login_state":"ok"`)
	for _, secret := range []string{wrongKey, cloudsim.DemoCredentials().AppKey} {
		require.NotContains(t, out, secret, "no App Key in the worker's log")
		require.NotContains(t, body, secret)
	}
}
