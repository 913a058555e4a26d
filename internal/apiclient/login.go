package apiclient

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Defaults of [LoginPolicy], applied to its zero-valued fields.
const (
	DefaultLoginRejectCount   = 3
	DefaultLoginRejectWindow  = 2 * time.Minute
	DefaultLoginRetryInterval = 30 * time.Second
)

const (
	// loginBackoffMin and loginBackoffMax bound the wait between failed
	// logins of one credential.
	loginBackoffMin = time.Second
	loginBackoffMax = 30 * time.Second
	// loginIdleForget is how long the state of a conference's control
	// token is kept when nobody asks for it.
	loginIdleForget = time.Hour
	// credentialControlKeyPrefix starts the credential (and token cache
	// key) of a conference's control token.
	credentialControlKeyPrefix = "control:"
)

// Credentials the client logs in with, as [LoginError.Credential] and
// [LoginState.Credential] name them. A conference's control token is
// "control:<conferenceID>".
const (
	// CredentialIAM is the IAM user (IAMUser, IAMPassword).
	CredentialIAM = "iam"
	// CredentialMeeting is the Meeting App ID (MeetingAppID, MeetingAppKey)
	// or account (MeetingAccount, MeetingPassword).
	CredentialMeeting = "meeting"
)

// LoginPolicy says when refused logins make a credential rejected. A
// login is refused when the login endpoint itself answers 401 or 403; a
// 5xx, 408, 429, timeout or transport error from it is a transient
// failure. After either the next login waits a backoff (1 s, doubling, at
// most 30 s, at least a Retry-After) and the calls that needed the login
// fail with a [*LoginError] that is not Rejected. A credential becomes
// rejected at a refusal when at least RejectCount logins in a row have been
// refused (transient failures between them neither count nor break the
// run) and the first of them lies RejectWindow or more in the past; a
// successful login ends the run. While rejected, calls fail at once with a
// Rejected *LoginError and a login is tried again every RetryInterval
// (by [Client.Relogin], or by the first call after it).
type LoginPolicy struct {
	// RejectCount is how many refusals in a row a rejection needs;
	// default DefaultLoginRejectCount.
	RejectCount int
	// RejectWindow is how long the refusals must have gone on; default
	// DefaultLoginRejectWindow.
	RejectWindow time.Duration
	// RetryInterval is how often a rejected credential is tried again;
	// default DefaultLoginRetryInterval.
	RetryInterval time.Duration
}

func (p LoginPolicy) withDefaults() LoginPolicy {
	if p.RejectCount <= 0 {
		p.RejectCount = DefaultLoginRejectCount
	}
	if p.RejectWindow <= 0 {
		p.RejectWindow = DefaultLoginRejectWindow
	}
	if p.RetryInterval <= 0 {
		p.RetryInterval = DefaultLoginRetryInterval
	}
	return p
}

// LoginStatus is where a credential stands.
type LoginStatus int

// Login statuses.
const (
	// LoginOK: the last login succeeded (or none was needed yet).
	LoginOK LoginStatus = iota
	// LoginFailing: the last login failed; the next one waits a backoff
	// and the calls needing it are told to come back (not Rejected).
	LoginFailing
	// LoginRejected: refusals went on for the policy's window; calls
	// needing the credential fail as Rejected until a login succeeds.
	LoginRejected
)

// String returns "ok", "failing" or "rejected".
func (s LoginStatus) String() string {
	switch s {
	case LoginOK:
		return "ok"
	case LoginFailing:
		return "failing"
	case LoginRejected:
		return "rejected"
	}
	return "unknown"
}

// LoginState is a credential's login state, as [Config.OnLoginState]
// receives it on every change and [Client.Rejected] lists it.
type LoginState struct {
	// Credential is CredentialIAM, CredentialMeeting or
	// "control:<conferenceID>".
	Credential string
	// Status is the new status.
	Status LoginStatus
	// Refusals counts the refused logins in a row (0 once one succeeds).
	Refusals int
	// Since is when the run of failures began (zero when LoginOK).
	Since time.Time
	// Err is the last login's failure (an [*Error], free of secrets); nil
	// when LoginOK.
	Err error
}

// LoginError is what a call gets when the login it needs failed or may
// not be tried yet. Err is the login's own failure, an [*Error] whose Op is
// "iam_token", "meeting_auth" or "control_token".
//
// A LoginError that is not Rejected is transient: the caller should come
// back after RetryIn, when the next login may be tried, without counting it
// as the task's failure. A Rejected one means the credential is refused for
// good until a login succeeds again.
type LoginError struct {
	// Credential names the credential (see LoginState.Credential).
	Credential string
	// Rejected: the credential is rejected (see LoginPolicy).
	Rejected bool
	// RetryIn is how long until the next login may be tried.
	RetryIn time.Duration
	// Err is the login's failure.
	Err error
}

// Error describes the failure without any secret.
func (e *LoginError) Error() string {
	state := "login failed; next login in " + e.RetryIn.Round(time.Millisecond).String()
	if e.Rejected {
		state = "credentials rejected"
	}
	return fmt.Sprintf("apiclient: %s: %s: %v", e.Credential, state, e.Err)
}

// Unwrap returns the login's failure.
func (e *LoginError) Unwrap() error { return e.Err }

// loginFailure sorts a login's error: refused (401/403 from the login
// endpoint itself), transient (no answer, timeout, 5xx, 408, 429), or
// neither (any other answer: returned to the callers as is). retryAfter is
// the answer's Retry-After.
func loginFailure(op string, err error) (refused, transient bool, retryAfter time.Duration) {
	var e *Error
	if !errors.As(err, &e) || e.Op != op {
		return false, false, 0
	}
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return true, false, 0
	case e.Status == 0 || e.Status >= 500 || e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests:
		return false, true, e.RetryAfter
	}
	return false, false, 0
}

// gate is one credential's login state.
type gate struct {
	status   LoginStatus
	refusals int       // refused logins in a row
	first    time.Time // the first of them
	since    time.Time // the first failure of the run
	failures int       // failed logins in a row, of any kind: the backoff
	next     time.Time // no login before
	last     error     // the last failure
	touched  time.Time // the last login or check
}

// logins holds every credential's gate; the zero gate is LoginOK.
type logins struct {
	policy  LoginPolicy
	now     func() time.Time
	onState func(LoginState)

	mu    sync.Mutex
	gates map[string]*gate
}

func newLogins(p LoginPolicy, now func() time.Time, onState func(LoginState)) *logins {
	return &logins{policy: p.withDefaults(), now: now, onState: onState, gates: map[string]*gate{}}
}

// admit says whether credential may log in now. When it may not, err is
// the *LoginError to return to the caller. A rejected credential whose
// retry is due may log in (one caller: the logins of a key are shared).
func (l *logins) admit(credential string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.gates[credential]
	if g == nil {
		return nil
	}
	now := l.now()
	g.touched = now
	if !now.Before(g.next) {
		return nil
	}
	return &LoginError{Credential: credential, Rejected: g.status == LoginRejected, RetryIn: g.next.Sub(now), Err: g.last}
}

// refusedBefore reports whether credential's last login was refused (its
// secret may have been rotated since).
func (l *logins) refusedBefore(credential string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.gates[credential]
	return g != nil && g.refusals > 0
}

// failed records a failed login of credential and returns the
// *LoginError for the callers that waited for it.
func (l *logins) failed(credential string, err error, refused bool, retryAfter time.Duration) error {
	l.mu.Lock()
	now := l.now()
	g := l.gates[credential]
	if g == nil {
		l.forgetIdle(now)
		g = &gate{since: now}
		l.gates[credential] = g
	}
	before := g.status
	g.touched, g.last = now, err
	g.failures++
	if refused {
		if g.refusals == 0 {
			g.first = now
		}
		g.refusals++
	}
	switch {
	case g.status == LoginRejected:
		// Still rejected: only a successful login proves otherwise.
	case refused && g.refusals >= l.policy.RejectCount && now.Sub(g.first) >= l.policy.RejectWindow:
		g.status = LoginRejected
	default:
		g.status = LoginFailing
	}
	if g.status == LoginRejected {
		g.next = now.Add(l.policy.RetryInterval)
	} else {
		g.next = now.Add(max(loginBackoff(g.failures), retryAfter))
	}
	le := &LoginError{Credential: credential, Rejected: g.status == LoginRejected, RetryIn: g.next.Sub(now), Err: err}
	st, changed := g.state(credential), g.status != before
	l.mu.Unlock()
	if changed && l.onState != nil {
		l.onState(st)
	}
	return le
}

// succeeded records a successful login of credential.
func (l *logins) succeeded(credential string) {
	l.mu.Lock()
	g := l.gates[credential]
	delete(l.gates, credential)
	l.mu.Unlock()
	if g != nil && l.onState != nil {
		l.onState(LoginState{Credential: credential, Status: LoginOK})
	}
}

// rejected lists the rejected credentials, sorted.
func (l *logins) rejected() []LoginState {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []LoginState
	for c, g := range l.gates {
		if g.status == LoginRejected {
			out = append(out, g.state(c))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Credential < out[j].Credential })
	return out
}

// forgetIdle drops the gates of per-conference credentials nobody has
// asked about for loginIdleForget, so refused conferences do not pile up.
// l.mu is held.
func (l *logins) forgetIdle(now time.Time) {
	for c, g := range l.gates {
		if strings.HasPrefix(c, credentialControlKeyPrefix) && now.Sub(g.touched) > loginIdleForget {
			delete(l.gates, c)
		}
	}
}

func (g *gate) state(credential string) LoginState {
	return LoginState{Credential: credential, Status: g.status, Refusals: g.refusals, Since: g.since, Err: g.last}
}

// loginBackoff is the wait after the n-th failed login in a row (n ≥ 1):
// 1 s, 2 s, 4 s … at most 30 s.
func loginBackoff(n int) time.Duration {
	d := loginBackoffMin
	for i := 1; i < n && d < loginBackoffMax; i++ {
		d *= 2
	}
	return min(d, loginBackoffMax)
}
