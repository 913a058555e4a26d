package reliability_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/reliability"
	"github.com/meetops/meetops/internal/tasks"
)

// tokenFixture writes a simulator fixture with scheduled meetings to cancel
// and meetings in progress to hang participants up from, and returns its
// path, the cancel and hang-up operations and their effect keys.
func tokenFixture(t *testing.T, cancels, confs, perConf int) (string, []tasks.Op, []string) {
	t.Helper()
	var f cloudsim.Fixture
	var ops []tasks.Op
	var effects []string
	for i := range cancels {
		id := fmt.Sprintf("91%08d", i)
		f.Conferences = append(f.Conferences, cloudsim.Conference{ID: id, State: cloudsim.ConfScheduled})
		ops = append(ops, tasks.Cancel{ConferenceID: id})
		effects = append(effects, "cancel:"+id)
	}
	for c := range confs {
		id := fmt.Sprintf("92%08d", c)
		conf := cloudsim.Conference{ID: id, State: cloudsim.ConfOngoing}
		for p := range perConf {
			conf.Participants = append(conf.Participants, fmt.Sprintf("q-%03d", p))
		}
		f.Conferences = append(f.Conferences, conf)
		for p := 0; p < perConf; p += 2 {
			pair := []string{fmt.Sprintf("q-%03d", p), fmt.Sprintf("q-%03d", p+1)}
			ops = append(ops, tasks.HangUp{ConferenceID: id, ParticipantIDs: pair})
			effects = append(effects, "hangup:"+id+"/"+pair[0], "hangup:"+id+"/"+pair[1])
		}
	}
	b, err := json.Marshal(f)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "fixture.json")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path, ops, effects
}

// Scenario 6. Every token the simulator issues lives 3 s (IAM, Meeting
// access, meeting control) while two worker processes — IAM + App ID and
// IAM + account — work through a batch spread over 12 s. No task
// dead-letters, every effect happens once, and each process logs in at
// most once per token lifetime: the client refreshes a token once 90 % of
// its life has passed, so per process and token the logins are at most
// ⌈elapsed / (0.9 · life)⌉ + 1, where the life of a Meeting access token is
// what its whole-second expireTime leaves of the 3 s (at least 2 s). Half-way
// every token is revoked and the next dismissal and cancel are refused as
// expired (401): each may cost a process one more login, and the refused
// requests succeed on their one retry with a fresh token.
func TestTokenExpiryMidBatch(t *testing.T) {
	t.Parallel()
	row := report(t, "6 token expiry (3s tokens)")
	const ttl = 3 * time.Second
	const spread = 12
	fixture, meetingOps, meetingEffects := tokenFixture(t, 150, 5, 20)
	r := proctest.NewRig(t, redistest.Options{}, "-log-size", "16", "-fixture", fixture,
		"-iam-token-ttl", ttl.String(), "-access-token-ttl", ttl.String(), "-control-token-ttl", ttl.String())
	off := []string{"RATELIMIT_RTC_ROOMS=off", "RATELIMIT_RTC_APPS=off", "RATELIMIT_MEETING_MGMT=off",
		"RATELIMIT_MEETING_CONTROL=off", "RATELIMIT_MEETING_VMR=off", "LOG_LEVEL=warn"}
	// Each process has a queue of its own, so both do their share of every
	// kind of task (on one shared queue the first to wake up can take a
	// whole second's burst).
	r.Queues = []string{"appid", "account"}
	begin := time.Now()
	proctest.StartWorker(t, r.WorkerEnvAuth("iam", "appid", append(off, "WORKER_QUEUES=appid")...))
	proctest.StartWorker(t, r.WorkerEnvAuth("iam", "account", append(off, "WORKER_QUEUES=account")...))

	dismissOps, dismissEffects := proctest.Dismissals("tok", 300)
	ops := append(dismissOps, meetingOps...)
	var keys []string
	for i, op := range ops {
		keys = append(keys, r.Enqueue(t, []tasks.Op{op}, tasks.TaskOptions{Queue: r.Queues[i%2],
			ProcessAt: begin.Add(time.Duration(i%spread) * time.Second)})...)
	}
	// Half-way, revoke every token (as a password change would) and have
	// the next dismissal and cancel refused as expired (401): each costs
	// the process that meets it one login.
	<-time.After(time.Until(begin.Add(spread / 2 * time.Second))) // when the fault strikes, not a synchronisation
	r.Sim.RevokeTokens(t)
	r.Sim.SetFaults(t, `{"dismiss": {"script": ["401"]}, "cancel": {"script": ["401"]}}`)
	r.WaitSettled(t, len(keys), 2*time.Minute)
	elapsed := time.Since(begin)

	infos := r.Infos(t, keys)
	lost, _ := proctest.Tally(t, infos)
	st := r.Sim.Stats(t)
	missing, dup, extra := proctest.Effects(t, st, "", append(dismissEffects, meetingEffects...))

	perProcess := func(life time.Duration) int { // +1 for the first login, +1 for the revocation, +1 for a refused request
		return int(math.Ceil(elapsed.Seconds()/(0.9*life.Seconds()))) + 3
	}
	bounds := map[string]int{
		"iam_token":     2 * perProcess(ttl),           // both processes
		"appauth":       perProcess(ttl - time.Second), // one process
		"account_auth":  perProcess(ttl - time.Second), // the other
		"control_token": 2 * 5 * perProcess(ttl),       // both processes, five meetings
	}
	over := 0
	for endpoint, bound := range bounds {
		if st.Logins[endpoint] > bound {
			over++
			t.Errorf("%s: %d logins, more than %d (one per token lifetime per process)", endpoint, st.Logins[endpoint], bound)
		}
		if st.Logins[endpoint] == 0 {
			over++
			t.Errorf("%s was never used", endpoint)
		}
	}
	expired := 0
	for op, o := range st.Requests {
		if op != "unknown" {
			expired += o.ByStatus["401"]
		}
	}
	t.Logf("scenario 6: %d tasks over %s with %s tokens: logins %v (bounds %v), %d requests refused as expired; lost %d, duplicated %d",
		len(keys), elapsed.Round(100*time.Millisecond), ttl, st.Logins, bounds, expired, lost+missing, dup+extra)
	*row = reliability.Row{Scenario: row.Scenario, Tasks: len(keys), Lost: lost + missing, Duplicated: dup + extra,
		UpstreamCalls: proctest.Calls(st), Time: time.Since(r.Started),
		Note: fmt.Sprintf("logins iam %d appauth %d account %d control %d; %d×401", st.Logins["iam_token"], st.Logins["appauth"],
			st.Logins["account_auth"], st.Logins["control_token"], expired)}
	require.Zero(t, lost+missing, "lost tasks (none may dead-letter)")
	require.Zero(t, dup+extra, "duplicate effects")
	require.Zero(t, over, "logins beyond one per token lifetime per process")
	require.GreaterOrEqual(t, expired, 2, "the scripted 401s were met (and cured by one refresh)")
}
