package reliability_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/reliability"
	"github.com/meetops/meetops/internal/tasks"
)

// Distinctive secrets of the secrets scenario besides the simulator's demo
// credentials (cmd/cloudsim has no flags for its own; its fixture sets the
// meeting passwords).
const (
	chairPassword = `Chair<7f>&"3a\91 c2e4`
	guestPassword = "Guest-b81d22f07a"
	dashUser      = "ops"
	dashPassword  = "dash-pw-0c9e7d51aa"
	// The scenario's IAM and Meeting account passwords hold characters
	// that JSON and URLs escape, so a leak in an escaped form shows.
	iamPassword     = `Pa<ss>&"w\ord-iam 9d%2F+e1`
	meetingPassword = `Pa<ss>&"w\ord-mtg 44%2F+7b`
)

// secretCredentials are the simulator's credentials in the scenario: the
// demo ones with the hostile passwords.
func secretCredentials() cloudsim.Credentials {
	cr := cloudsim.DemoCredentials()
	cr.IAMPassword, cr.Password = iamPassword, meetingPassword
	return cr
}

// escapedForms lists the forms a secret takes when text that carries it is
// escaped: the inside of a JSON string with and without HTML escaping, and
// URL-encoded as a query value and as a path segment.
func escapedForms(secret string) []string {
	var forms []string
	for _, html := range []bool{true, false} {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		_ = enc.Encode(secret)
		forms = append(forms, strings.Trim(strings.TrimSpace(b.String()), `"`))
	}
	return append(forms, url.QueryEscape(secret), url.PathEscape(secret))
}

// secretScanner finds configured secrets, and tokens by their shape, in
// text.
type secretScanner struct {
	literal map[string]string // secret → name
	shapes  map[string]*regexp.Regexp
}

func newSecretScanner() *secretScanner {
	cr := secretCredentials()
	s := &secretScanner{literal: map[string]string{
		cr.SK:          "RTC_SK",
		cr.IAMPassword: "IAM_PASSWORD",
		cr.AppKey:      "MEETING_APP_KEY",
		cr.Password:    "MEETING_PASSWORD",
		chairPassword:  "chair password",
		guestPassword:  "guest password",
		dashPassword:   "DASHBOARD_PASSWORD",
		base64.StdEncoding.EncodeToString([]byte(cr.Account + ":" + cr.Password)): "Basic credential (account)",
		base64.StdEncoding.EncodeToString([]byte(dashUser + ":" + dashPassword)):  "Basic credential (dashboard)",
	}, shapes: map[string]*regexp.Regexp{
		// The simulator's token formats: IAM "MIIsim" + 80 hex; access
		// and control tokens "stb" + 36 or 48 hex.
		"IAM token":                     regexp.MustCompile(`MIIsim[0-9a-f]{80}`),
		"access or control token (stb)": regexp.MustCompile(`stb[0-9a-f]{36}`),
	}}
	// Escaped once (an echoed body in an error message) and twice (that
	// message inside a JSON log line or task result).
	for secret, name := range maps.Clone(s.literal) {
		for _, once := range escapedForms(secret) {
			for _, form := range append(escapedForms(once), once) {
				if form != secret {
					s.literal[form] = name + " (escaped)"
				}
			}
		}
	}
	return s
}

// scan returns one finding per secret found in text, naming where.
func (s *secretScanner) scan(where, text string) []string {
	var found []string
	for secret, name := range s.literal {
		if strings.Contains(text, secret) {
			found = append(found, fmt.Sprintf("%s in %s", name, where))
		}
	}
	for name, re := range s.shapes {
		if m := re.FindString(text); m != "" {
			found = append(found, fmt.Sprintf("%s in %s (%.12s…)", name, where, m))
		}
	}
	return found
}

// secretsFixture seeds apps, meetings (with the distinctive passwords) and
// VMRs for both authentication modes.
func secretsFixture(t *testing.T) string {
	t.Helper()
	f := cloudsim.Fixture{
		Apps: []cloudsim.App{{ID: "sec-app-aksk"}, {ID: "sec-app-iam"}},
		Conferences: []cloudsim.Conference{
			{ID: "930000001", State: cloudsim.ConfScheduled, ChairPassword: chairPassword, GuestPassword: guestPassword},
			{ID: "930000002", State: cloudsim.ConfScheduled, ChairPassword: chairPassword, GuestPassword: guestPassword},
			{ID: "930000010", State: cloudsim.ConfOngoing, ChairPassword: chairPassword, GuestPassword: guestPassword,
				Participants: []string{"s-1", "s-2", "s-3", "s-4"}},
		},
		VMRs: []cloudsim.VMRAssignment{{Account: "sec-member", VMRIDs: []string{"sec-vmr-1", "sec-vmr-2"}}},
	}
	b, err := json.Marshal(f)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "fixture.json")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// Scenario 8. The worker runs in both authentication setups — AK/SK + App
// ID (the SK from RTC_SK_FILE) and IAM + account, with passwords holding
// characters JSON and URLs escape — through successes of all five
// operations, 401s (refused logins and refused requests), 503 retries,
// upstreams that echo the request (its body, query and credential headers)
// in a 400, as JSON and as text, 4xx and invalid-payload dead letters, with
// debug logging and the dashboard behind basic auth. Every log line, task
// result and last error, dead-letter record, /metrics, the dashboard API
// answers, `enqueue dead list` and the simulator's log are scanned: no
// configured secret and no token appears, raw, JSON-escaped or URL-encoded.
func TestNoSecretLeaks(t *testing.T) {
	t.Parallel()
	row := report(t, "8 secrets (2 auth setups, failures)")
	credsFile := filepath.Join(t.TempDir(), "credentials.json")
	credsJSON, err := json.Marshal(secretCredentials())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(credsFile, credsJSON, 0o600))
	r := proctest.NewRig(t, redistest.Options{}, "-log-size", "5000", "-fixture", secretsFixture(t), "-credentials", credsFile)
	scanner := newSecretScanner()
	require.NotEmpty(t, scanner.scan("cloudsim banner", r.Sim.Output()), "the scanner finds the demo secrets the simulator prints")

	skFile := filepath.Join(t.TempDir(), "rtc-sk")
	require.NoError(t, os.WriteFile(skFile, []byte(cloudsim.DemoCredentials().SK+"\n"), 0o600))
	common := []string{"LOG_LEVEL=debug", "DASHBOARD_USER=" + dashUser, "DASHBOARD_PASSWORD=" + dashPassword,
		"RATELIMIT_RTC_ROOMS=off", "RATELIMIT_RTC_APPS=off", "RATELIMIT_MEETING_MGMT=off",
		"RATELIMIT_MEETING_CONTROL=off", "RATELIMIT_MEETING_VMR=off"}
	var findings []string
	var keys []string
	var workers []*proctest.Worker
	for _, mode := range []struct {
		name, rtc, meeting, suffix, loginOp string
		app, cancelConf, hangup             string
	}{
		{name: "AK/SK + App ID", rtc: "aksk", meeting: "appid", suffix: "a", loginOp: "appauth",
			app: "sec-app-aksk", cancelConf: "930000001", hangup: "s-1"},
		{name: "IAM + account", rtc: "iam", meeting: "account", suffix: "b", loginOp: "account_auth",
			app: "sec-app-iam", cancelConf: "930000002", hangup: "s-2"},
	} {
		env := r.WorkerEnvAuth(mode.rtc, mode.meeting, common...)
		for i, kv := range env { // the scenario's passwords, not the demo ones
			switch {
			case strings.HasPrefix(kv, "IAM_PASSWORD="):
				env[i] = "IAM_PASSWORD=" + iamPassword
			case strings.HasPrefix(kv, "MEETING_PASSWORD="):
				env[i] = "MEETING_PASSWORD=" + meetingPassword
			}
		}
		if mode.rtc == "aksk" { // the SK from a file instead
			for i, kv := range env {
				if strings.HasPrefix(kv, "RTC_SK=") {
					env[i] = "RTC_SK_FILE=" + skFile
				}
			}
		}
		// First the failures: the first login refused, a request refused
		// twice (401), a 503 then success.
		faults := fmt.Sprintf(`{%q: {"script": ["401"]}, "cancel": {"script": ["401", "401"]},
			"dismiss": {"script": ["503"]}, "iam_token": {"script": ["401"]}}`, mode.loginOp)
		r.Sim.SetFaults(t, faults)
		w := proctest.StartWorker(t, env)
		workers = append(workers, w)
		ops := []tasks.Op{
			tasks.Cancel{ConferenceID: "900000001"}, // meets the refused login
			tasks.Disable{AppID: mode.app},          // meets the refused IAM login (IAM setup)
			tasks.Dismiss{AppID: "demo-app-bulk", RoomID: "sec-" + mode.suffix},
			tasks.Cancel{ConferenceID: mode.cancelConf},
			tasks.HangUp{ConferenceID: "930000010", ParticipantIDs: []string{mode.hangup}},
			tasks.Reclaim{Account: "sec-member", VMRIDs: []string{"sec-vmr-" + map[string]string{"a": "1", "b": "2"}[mode.suffix]}},
			tasks.Dismiss{AppID: "demo-app", RoomID: "room-404"},                     // 404 dead letter
			tasks.Cancel{ConferenceID: "900000404"},                                  // MMC.111070005 dead letter
			tasks.Dismiss{AppID: "demo-app-bulk", RoomID: "sec-more-" + mode.suffix}, // after the retry
		}
		if mode.suffix == "b" {
			ops[0] = tasks.Cancel{ConferenceID: "900000002"}
		}
		for i, op := range ops { // keys of their own: both setups run some of the same operations
			keys = append(keys, r.Enqueue(t, []tasks.Op{op}, tasks.TaskOptions{Key: fmt.Sprintf("sec-%s-%d", mode.suffix, i)})...)
			if i == 2 {
				// The first meeting and RTC tasks meet the refused logins
				// alone: tasks waiting on one shared login share its
				// refusal, and the others must log in successfully.
				r.WaitSettled(t, len(keys), time.Minute)
			}
		}
		raw := asynq.NewTask(tasks.TypeCancel, []byte(`{"conference_id":"930000099\u0007"}`),
			asynq.TaskID("sec-invalid-"+mode.suffix), asynq.Retention(time.Hour))
		_, err := r.Client.Enqueue(raw)
		require.NoError(t, err)
		keys = append(keys, "sec-invalid-"+mode.suffix)
		r.WaitSettled(t, len(keys), time.Minute)
		require.NoError(t, w.Signal(os.Interrupt))
		_, exited := w.Wait(20 * time.Second)
		require.True(t, exited)
		r.Sim.ClearFaults(t)
	}

	// Then echoes: the login requests (the IAM and Meeting passwords, the
	// account's Basic credential), the control-token request (the chair
	// password) and a cancel (the access token) each answered once by an
	// upstream that repeats what it received, as JSON and as text. One
	// task at a time, on a fresh worker (no token cached yet).
	r.Sim.SetFaults(t, `{"iam_token": {"script": ["echo", "echo_text"]}, "account_auth": {"script": ["echo", "echo_text"]},
		"control_token": {"script": ["echo", "echo_text"]}, "cancel": {"script": ["echo"]}}`)
	echoEnv := r.WorkerEnvAuth("iam", "account", common...)
	for i, kv := range echoEnv {
		switch {
		case strings.HasPrefix(kv, "IAM_PASSWORD="):
			echoEnv[i] = "IAM_PASSWORD=" + iamPassword
		case strings.HasPrefix(kv, "MEETING_PASSWORD="):
			echoEnv[i] = "MEETING_PASSWORD=" + meetingPassword
		}
	}
	echoWorker := proctest.StartWorker(t, echoEnv)
	workers = append(workers, echoWorker)
	for i, op := range []tasks.Op{
		tasks.Disable{AppID: "sec-echo-1"}, tasks.Disable{AppID: "sec-echo-2"}, // the IAM echoes
		tasks.Cancel{ConferenceID: "940000001"}, tasks.Cancel{ConferenceID: "940000002"}, // the account echoes
		tasks.Cancel{ConferenceID: "940000003"},                                  // the cancel echo (a valid access token now)
		tasks.HangUp{ConferenceID: "930000010", ParticipantIDs: []string{"s-3"}}, // the control-token echoes
		tasks.HangUp{ConferenceID: "930000010", ParticipantIDs: []string{"s-4"}},
	} {
		keys = append(keys, r.Enqueue(t, []tasks.Op{op}, tasks.TaskOptions{Key: fmt.Sprintf("sec-echo-%d", i), MaxRetry: tasks.NoRetry})...)
		r.WaitSettled(t, len(keys), time.Minute)
	}
	require.NoError(t, echoWorker.Signal(os.Interrupt))
	_, exited := echoWorker.Wait(20 * time.Second)
	require.True(t, exited)
	echoes := 0
	for _, e := range r.Sim.Log(t) {
		if strings.HasPrefix(e.Fault, "echo") {
			echoes++
		}
	}
	require.Equal(t, 7, echoes, "every echo was answered")
	r.Sim.ClearFaults(t)

	st := r.Sim.Stats(t)
	q := r.Queue()
	require.NotNil(t, q)
	require.Positive(t, q.Completed)
	require.Positive(t, q.Archived)
	require.Positive(t, st.Requests["cancel"].ByStatus["401"], "a refused request happened")
	for _, login := range []string{"iam_token", "appauth", "account_auth", "control_token"} {
		require.Positive(t, st.Logins[login], "%s was used (control_token: with the chair password)", login)
	}

	for i, w := range workers {
		findings = append(findings, scanner.scan(fmt.Sprintf("worker %d log", i+1), w.Output())...)
		require.Contains(t, w.Output(), `"level":"debug"`, "debug logging was on")
	}
	results := 0
	for _, info := range r.Infos(t, keys) {
		if info == nil {
			continue
		}
		results++
		findings = append(findings, scanner.scan("result of "+info.ID, string(info.Result))...)
		findings = append(findings, scanner.scan("last error of "+info.ID, info.LastErr)...)
	}
	require.Equal(t, len(keys), results)
	dead := 0
	require.NoError(t, deadletter.New(r.RDB, deadletter.Options{}).Each(ctx(t), deadletter.Filter{}, func(rec deadletter.Record) error {
		dead++
		findings = append(findings, scanner.scan("dead letter "+rec.Key, string(rec.Result)+rec.Reason+rec.Type)...)
		return nil
	}))
	require.Equal(t, q.Archived, dead, "every dead letter is in the store")

	// A fresh worker serves /metrics and the dashboard over the same Redis.
	w := proctest.StartWorker(t, r.WorkerEnv(common...))
	_, m := w.Get(t, "/metrics")
	findings = append(findings, scanner.scan("/metrics", m)...)
	status, _ := w.Get(t, "/monitoring/api/queues")
	require.Equal(t, http.StatusUnauthorized, status, "the dashboard asks for credentials")
	for _, path := range []string{"/monitoring/api/queues", "/monitoring/api/queues/default/archived_tasks",
		"/monitoring/api/queues/default/completed_tasks", "/monitoring/api/queues/default/retry_tasks",
		"/monitoring/api/servers"} {
		body := dashGet(t, w, path)
		findings = append(findings, scanner.scan(path, body)...)
	}
	require.Contains(t, dashGet(t, w, "/monitoring/api/queues/default/archived_tasks"), "dead letter (", "the dashboard shows the dead letters")
	cli := proctest.Start(t, proctest.Bin(t, "enqueue"), nil, "dead", "list", "-o", "json", "--redis-url", r.RedisURL)
	_, exited = cli.Wait(30 * time.Second)
	require.True(t, exited)
	require.Contains(t, cli.Output(), "room-404", "the CLI lists the dead letters")
	findings = append(findings, scanner.scan("enqueue dead list", cli.Output())...)
	simLog, _ := json.Marshal(r.Sim.Log(t))
	findings = append(findings, scanner.scan("cloudsim request log", string(simLog))...)
	findings = append(findings, scanner.scan("worker 3 log", w.Output())...)

	for _, f := range findings {
		t.Errorf("secret leaked: %s", f)
	}
	t.Logf("scenario 8: %d tasks (%d completed, %d dead letters) in two auth setups; scanned %d log lines, results, dead letters, /metrics, 5 dashboard answers, the CLI and the simulator log: %d findings",
		len(keys), q.Completed, q.Archived, strings.Count(workers[0].Output()+workers[1].Output()+w.Output(), "\n"), len(findings))
	*row = reliability.Row{Scenario: row.Scenario, Tasks: len(keys), Lost: len(keys) - results,
		UpstreamCalls: proctest.Calls(st), Time: time.Since(r.Started),
		Note: fmt.Sprintf("%d leaks (raw, JSON-escaped, URL-encoded) in logs/results/dead letters/metrics/dashboard; %d echoing answers", len(findings), echoes)}
}

// dashGet fetches a dashboard API path with the basic-auth credentials and
// requires a 200.
func dashGet(t *testing.T, w *proctest.Worker, path string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+w.HTTP+path, nil)
	require.NoError(t, err)
	req.SetBasicAuth(dashUser, dashPassword)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, b)
	return string(b)
}
