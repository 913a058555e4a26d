package apiclient

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The login gate's decisions, step by step on an injected clock: refusals
// reject only once RejectCount of them in a row span RejectWindow;
// transient failures back off but never count; a success forgets it all;
// a rejected credential stays rejected, tried again every RetryInterval.
func TestLoginGate(t *testing.T) {
	t.Parallel()
	type step struct {
		at       time.Duration // since the start
		event    string        // "refuse", "transient", "ok", "admit"
		status   LoginStatus   // after the step
		retryIn  time.Duration // the LoginError's RetryIn (refuse, transient, admit when refused)
		admitted bool          // admit: may log in
	}
	p := LoginPolicy{RejectCount: 3, RejectWindow: 10 * time.Second, RetryInterval: 30 * time.Second}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"one refusal is a blip", []step{
			{at: 0, event: "refuse", status: LoginFailing, retryIn: time.Second},
			{at: 500 * time.Millisecond, event: "admit", status: LoginFailing, retryIn: 500 * time.Millisecond},
			{at: time.Second, event: "admit", status: LoginFailing, admitted: true},
			{at: time.Second, event: "ok", status: LoginOK},
			{at: time.Second, event: "admit", status: LoginOK, admitted: true},
		}},
		{"three quick refusals are not the window", []step{
			{at: 0, event: "refuse", status: LoginFailing, retryIn: time.Second},
			{at: time.Second, event: "refuse", status: LoginFailing, retryIn: 2 * time.Second},
			{at: 3 * time.Second, event: "refuse", status: LoginFailing, retryIn: 4 * time.Second},
			{at: 7 * time.Second, event: "refuse", status: LoginFailing, retryIn: 8 * time.Second},
			// The fifth refusal is 10 s after the first: rejected.
			{at: 10 * time.Second, event: "refuse", status: LoginRejected, retryIn: 30 * time.Second},
			{at: 20 * time.Second, event: "admit", status: LoginRejected, retryIn: 20 * time.Second},
			{at: 40 * time.Second, event: "admit", status: LoginRejected, admitted: true},
			{at: 40 * time.Second, event: "refuse", status: LoginRejected, retryIn: 30 * time.Second},
			{at: 70 * time.Second, event: "transient", status: LoginRejected, retryIn: 30 * time.Second},
			{at: 100 * time.Second, event: "ok", status: LoginOK},
			{at: 100 * time.Second, event: "refuse", status: LoginFailing, retryIn: time.Second},
		}},
		{"a long window needs the count too", []step{
			{at: 0, event: "refuse", status: LoginFailing, retryIn: time.Second},
			{at: 60 * time.Second, event: "refuse", status: LoginFailing, retryIn: 2 * time.Second},
			{at: 120 * time.Second, event: "refuse", status: LoginRejected, retryIn: 30 * time.Second},
		}},
		{"transient failures neither count nor break the run", []step{
			{at: 0, event: "transient", status: LoginFailing, retryIn: time.Second},
			{at: time.Second, event: "transient", status: LoginFailing, retryIn: 2 * time.Second},
			{at: 3 * time.Second, event: "refuse", status: LoginFailing, retryIn: 4 * time.Second},
			{at: 7 * time.Second, event: "transient", status: LoginFailing, retryIn: 8 * time.Second},
			{at: 15 * time.Second, event: "refuse", status: LoginFailing, retryIn: 16 * time.Second},
			{at: 31 * time.Second, event: "transient", status: LoginFailing, retryIn: 30 * time.Second},
			{at: 61 * time.Second, event: "refuse", status: LoginRejected, retryIn: 30 * time.Second},
		}},
		{"a success ends the run", []step{
			{at: 0, event: "refuse", status: LoginFailing, retryIn: time.Second},
			{at: time.Second, event: "refuse", status: LoginFailing, retryIn: 2 * time.Second},
			{at: 3 * time.Second, event: "ok", status: LoginOK},
			{at: 11 * time.Second, event: "refuse", status: LoginFailing, retryIn: time.Second},
			{at: 12 * time.Second, event: "refuse", status: LoginFailing, retryIn: 2 * time.Second},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &fakeClock{t: testEpoch}
			var states []LoginStatus
			l := newLogins(p, clock.Now, func(st LoginState) { states = append(states, st.Status) })
			var want []LoginStatus
			last := LoginOK
			for i, s := range tc.steps {
				clock.Advance(testEpoch.Add(s.at).Sub(clock.Now()))
				cause := &Error{Op: "meeting_auth", Status: http.StatusUnauthorized}
				var err error
				switch s.event {
				case "refuse":
					err = l.failed(CredentialMeeting, cause, true, 0)
				case "transient":
					err = l.failed(CredentialMeeting, &Error{Op: "meeting_auth", Status: 503}, false, 0)
				case "ok":
					l.succeeded(CredentialMeeting)
				case "admit":
					err = l.admit(CredentialMeeting)
					require.Equal(t, s.admitted, err == nil, "step %d: admitted", i)
				}
				if err != nil {
					var le *LoginError
					require.ErrorAs(t, err, &le, "step %d", i)
					require.Equal(t, s.status == LoginRejected, le.Rejected, "step %d: rejected", i)
					require.Equal(t, s.retryIn, le.RetryIn, "step %d: retry in", i)
					require.Equal(t, CredentialMeeting, le.Credential)
				}
				rejected := l.rejected()
				require.Equal(t, s.status == LoginRejected, len(rejected) == 1, "step %d: rejected list %v", i, rejected)
				if s.status != last {
					want = append(want, s.status)
				}
				last = s.status
			}
			require.Equal(t, want, states, "one report per change")
		})
	}
}

func TestLoginBackoff(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 100: 30 * time.Second} {
		require.Equal(t, want, loginBackoff(n), "after %d failures", n)
	}
}

// What the gate counts: 401 and 403 from the login itself are refusals;
// no answer, 5xx, 408 and 429 are transient; anything else, and an error
// of another exchange (the conference detail inside a control-token
// fetch), is neither.
func TestLoginFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err                error
		refused, transient bool
	}{
		{&Error{Op: "meeting_auth", Status: 401}, true, false},
		{&Error{Op: "meeting_auth", Status: 403}, true, false},
		{&Error{Op: "meeting_auth", Err: context.DeadlineExceeded}, false, true},
		{&Error{Op: "meeting_auth", Status: 502}, false, true},
		{&Error{Op: "meeting_auth", Status: 429, RetryAfter: 5 * time.Second}, false, true},
		{&Error{Op: "meeting_auth", Status: 408}, false, true},
		{&Error{Op: "meeting_auth", Status: 400}, false, false},
		{&Error{Op: "conf_detail", Status: 401}, false, false},
		{errors.New("unexpected"), false, false},
	} {
		refused, transient, _ := loginFailure("meeting_auth", tc.err)
		require.Equal(t, tc.refused, refused, "%v", tc.err)
		require.Equal(t, tc.transient, transient, "%v", tc.err)
	}
	_, _, ra := loginFailure("meeting_auth", &Error{Op: "meeting_auth", Status: 429, RetryAfter: 5 * time.Second})
	require.Equal(t, 5*time.Second, ra)
}

// requireLoginError asserts err is a *LoginError for credential and
// returns it.
func requireLoginError(t *testing.T, err error, credential string) *LoginError {
	t.Helper()
	var le *LoginError
	require.ErrorAs(t, err, &le)
	require.Equal(t, credential, le.Credential)
	return le
}

// The App ID login refused once (as the issue measured it): every call
// sharing that login is told to come back in 1 s, not refused; calls in
// the backoff do not log in; the next login succeeds and so do the calls.
func TestLoginRefusedOnceDefersItsCallers(t *testing.T) {
	t.Parallel()
	var states []LoginState
	var mu sync.Mutex
	client, bundle := setup(t, func(c *Config) {
		c.OnLoginState = func(st LoginState) { mu.Lock(); states = append(states, st); mu.Unlock() }
	})
	entered := make(chan struct{})
	release := make(chan struct{})
	bundle.cloud.handle("meeting_auth", func(w http.ResponseWriter, c call, n int) {
		if n == 1 {
			close(entered)
			<-release
			writeError(w, http.StatusUnauthorized, "USG.206010025", "App ID authentication failed")
			return
		}
		bundle.cloud.defaultHandler(w, c, n)
	})
	const callers = 5
	errs := make(chan error, callers)
	go func() { _, err := client.CancelConference(context.Background(), "c0", "", false); errs <- err }()
	<-entered
	for i := 1; i < callers; i++ {
		go func() { _, err := client.CancelConference(context.Background(), "c", "", false); errs <- err }()
	}
	// The others join the login in flight, or (if they come after its
	// answer) meet its backoff: either way they are told the same.
	close(release)
	for range callers {
		err := <-errs
		le := requireLoginError(t, err, CredentialMeeting)
		require.False(t, le.Rejected)
		require.Equal(t, time.Second, le.RetryIn)
		e := requireAPIError(t, err)
		require.Equal(t, "meeting_auth", e.Op)
		require.Equal(t, http.StatusUnauthorized, e.Status)
	}
	require.Equal(t, 1, bundle.cloud.count("meeting_auth"), "one shared login")

	_, err := client.CancelConference(context.Background(), "c", "", false)
	require.Equal(t, time.Second, requireLoginError(t, err, CredentialMeeting).RetryIn, "within the backoff: no login")
	require.Equal(t, 1, bundle.cloud.count("meeting_auth"))
	require.Zero(t, bundle.cloud.count("cancel"), "no operation was sent")

	bundle.clock.Advance(time.Second)
	_, err = client.CancelConference(context.Background(), "c", "", false)
	require.NoError(t, err)
	require.Equal(t, 2, bundle.cloud.count("meeting_auth"))
	require.Empty(t, client.Rejected())
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, states, 2)
	require.Equal(t, LoginFailing, states[0].Status)
	require.Equal(t, 1, states[0].Refusals)
	require.Equal(t, LoginOK, states[1].Status)
}

// Refused for the whole window: the calls are deferred until the window
// has passed, then refused at once as rejected, without a login. Relogin
// tries again every RetryInterval with the secret re-read; once the
// rotated secret is in the file, the login succeeds and the rejection
// ends without a new Client.
func TestLoginRejectedAfterTheWindowAndRecovers(t *testing.T) {
	t.Parallel()
	const oldKey = "OLD-APP-KEY-SECRET-11aa"
	var rotated atomic.Bool
	var reloads atomic.Int32
	var mu sync.Mutex
	var states []LoginStatus
	client, bundle := setup(t, func(c *Config) {
		c.MeetingAppKey = oldKey // the fake cloud accepts testAppKey only
		c.Login = LoginPolicy{RejectCount: 3, RejectWindow: 6 * time.Second, RetryInterval: 30 * time.Second}
		c.ReloadSecret = func(field string) string {
			if field != "MeetingAppKey" {
				return "wrong field " + field // fails the login
			}
			reloads.Add(1)
			if rotated.Load() {
				return testAppKey
			}
			return ""
		}
		c.OnLoginState = func(st LoginState) { mu.Lock(); states = append(states, st.Status); mu.Unlock() }
	})
	ctx := context.Background()
	var seen []string
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		_, err := client.CancelConference(ctx, "c", "", false)
		le := requireLoginError(t, err, CredentialMeeting)
		require.False(t, le.Rejected, "refusal %d: %s after the first, within the window", i+1, time.Duration(1<<i-1)*time.Second)
		require.Equal(t, wait, le.RetryIn)
		require.Empty(t, client.Rejected())
		seen = append(seen, err.Error())
		bundle.clock.Advance(wait)
	}
	// 7 s after the first refusal, past the 6 s window: rejected.
	_, err := client.CancelConference(ctx, "c", "", false)
	le := requireLoginError(t, err, CredentialMeeting)
	require.True(t, le.Rejected)
	require.Equal(t, http.StatusUnauthorized, requireAPIError(t, err).Status)
	seen = append(seen, err.Error())
	require.Equal(t, 4, bundle.cloud.count("meeting_auth"))
	rejected := client.Rejected()
	require.Len(t, rejected, 1)
	require.Equal(t, CredentialMeeting, rejected[0].Credential)
	require.Equal(t, 4, rejected[0].Refusals)
	require.Equal(t, testEpoch, rejected[0].Since)

	// Rejected: refused at once, no login; Relogin waits for its interval.
	bundle.clock.Advance(10 * time.Second)
	_, err = client.CancelConference(ctx, "c", "", false)
	require.True(t, requireLoginError(t, err, CredentialMeeting).Rejected)
	client.Relogin(ctx)
	require.Equal(t, 4, bundle.cloud.count("meeting_auth"))

	bundle.clock.Advance(20 * time.Second) // 30 s after the rejection
	client.Relogin(ctx)
	require.Equal(t, 5, bundle.cloud.count("meeting_auth"), "tried again, still the old secret")
	require.Len(t, client.Rejected(), 1)

	rotated.Store(true)
	bundle.clock.Advance(29 * time.Second)
	client.Relogin(ctx)
	require.Equal(t, 5, bundle.cloud.count("meeting_auth"), "not due yet")
	bundle.clock.Advance(time.Second)
	client.Relogin(ctx)
	require.Equal(t, 6, bundle.cloud.count("meeting_auth"))
	require.Empty(t, client.Rejected(), "the rotated secret was accepted")
	_, err = client.CancelConference(ctx, "c", "", false)
	require.NoError(t, err)
	require.Equal(t, 6, bundle.cloud.count("meeting_auth"), "the cancel used Relogin's token")
	require.Positive(t, reloads.Load())

	mu.Lock()
	require.Equal(t, []LoginStatus{LoginFailing, LoginRejected, LoginOK}, states)
	mu.Unlock()
	for _, msg := range seen {
		require.NotContains(t, msg, oldKey)
		require.NotContains(t, msg, testAppKey)
	}
}

// A 5xx or timeout from the IAM login is transient however long it lasts,
// and a Retry-After stretches the backoff.
func TestIAMLoginOutageNeverRejects(t *testing.T) {
	t.Parallel()
	client, bundle := setup(t, iamMode, func(c *Config) {
		c.Login = LoginPolicy{RejectCount: 1, RejectWindow: time.Second}
	})
	bundle.cloud.handle("iam_token", func(w http.ResponseWriter, _ call, _ int) {
		w.Header().Set("Retry-After", "7")
		writeError(w, http.StatusServiceUnavailable, "IAM.0001", "busy")
	})
	for range 20 {
		_, err := client.DismissRoom(context.Background(), "app", "room")
		le := requireLoginError(t, err, CredentialIAM)
		require.False(t, le.Rejected)
		require.GreaterOrEqual(t, le.RetryIn, 7*time.Second)
		bundle.clock.Advance(le.RetryIn)
	}
	require.Equal(t, 20, bundle.cloud.count("iam_token"))
	require.Empty(t, client.Rejected())
}

// A 401 on the operation itself is a stale token, as before: refreshed
// once in the same call, and a second 401 is the call's own auth error,
// not a login failure.
func TestOperation401IsNotALoginFailure(t *testing.T) {
	t.Parallel()
	client, bundle := setup(t)
	bundle.cloud.handle("cancel", func(w http.ResponseWriter, _ call, _ int) {
		writeError(w, http.StatusUnauthorized, "USG.000000004", "token expired")
	})
	_, err := client.CancelConference(context.Background(), "c", "", false)
	var le *LoginError
	require.False(t, errors.As(err, &le), "%v", err)
	require.Equal(t, "cancel", requireAPIError(t, err).Op)
	require.Equal(t, []string{"meeting_auth", "cancel", "meeting_auth", "cancel"}, bundle.cloud.routeSequence())
	require.Empty(t, client.Rejected())
}

// A refused control token defers the hang-ups of that conference only,
// and never counts as a rejected worker credential.
func TestControlTokenRefusalIsPerConference(t *testing.T) {
	t.Parallel()
	client, bundle := setup(t, func(c *Config) {
		c.Login = LoginPolicy{RejectCount: 1, RejectWindow: time.Nanosecond}
	})
	bundle.cloud.handle("control_token", func(w http.ResponseWriter, c call, n int) {
		if c.query.Get("conferenceID") == "bad" {
			writeError(w, http.StatusUnauthorized, "MMC.111070004", "wrong password")
			return
		}
		bundle.cloud.defaultHandler(w, c, n)
	})
	ctx := context.Background()
	_, err := client.HangUpParticipants(ctx, "bad", []string{"p"})
	require.False(t, requireLoginError(t, err, "control:bad").Rejected, "the first refusal is never the window")
	bundle.clock.Advance(time.Second)
	_, err = client.HangUpParticipants(ctx, "bad", []string{"p"})
	require.True(t, requireLoginError(t, err, "control:bad").Rejected)
	_, err = client.HangUpParticipants(ctx, "good", []string{"p"})
	require.NoError(t, err)
	require.Empty(t, client.Rejected(), "a conference's control token is not the worker's credential")
	all := client.logins.rejected()
	require.Len(t, all, 1)
	require.Equal(t, "control:bad", all[0].Credential)
}
