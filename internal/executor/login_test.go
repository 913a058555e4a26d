package executor_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/executor"
	"github.com/meetops/meetops/internal/tasks"
)

// loginFailingAPI answers its first cancels with the given errors (as the
// client does when the login they need failed), then calls the real API.
type loginFailingAPI struct {
	executor.API
	fails []error
	calls atomic.Int32
}

func (f *loginFailingAPI) CancelConference(ctx context.Context, conferenceID, userUUID string, endOngoing bool) (apiclient.Response, error) {
	if n := int(f.calls.Add(1)); n <= len(f.fails) {
		return apiclient.Response{}, f.fails[n-1]
	}
	return f.API.CancelConference(ctx, conferenceID, userUUID, endOngoing)
}

var refusedLogin = &apiclient.Error{Op: "meeting_auth", Status: 401, Code: "USG.206010025", RequestID: "req-login"}

// A login that failed without rejecting its credentials defers the task
// for as long as the client says, without spending a retry.
func TestFailedLoginDefersWithoutSpendingARetry(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noServer: true})
	wait := 80 * time.Millisecond
	api := &loginFailingAPI{API: b.api, fails: []error{
		&apiclient.LoginError{Credential: apiclient.CredentialMeeting, RetryIn: wait, Err: refusedLogin},
		&apiclient.LoginError{Credential: apiclient.CredentialMeeting, RetryIn: wait, Err: &apiclient.Error{Op: "meeting_auth", Status: 503}},
	}}
	b.startServer(t, api, setupOpts{})
	info := b.wait(t, "default", b.enqueue(t, tasks.Cancel{ConferenceID: cloudsim.DemoConfScheduled}, tasks.TaskOptions{MaxRetry: 1}))
	require.Equal(t, asynq.TaskStateCompleted, info.State)
	require.Zero(t, info.Retried, "deferrals spend no retry")
	require.Equal(t, int32(3), api.calls.Load())
	require.Equal(t, 1, result(t, info).Attempts, "an attempt whose login failed is not counted")
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Equal(t, []delayRecord{{0, wait}, {0, wait}}, b.delays, "deferred as long as the next login is away")
}

// Rejected credentials dead-letter at once with reason auth and the
// login's own status, code and request ID.
func TestRejectedCredentialsDeadLetterWithReasonAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noServer: true})
	api := &loginFailingAPI{API: b.api, fails: []error{
		&apiclient.LoginError{Credential: apiclient.CredentialMeeting, Rejected: true, Err: refusedLogin},
	}}
	b.startServer(t, api, setupOpts{})
	key := b.enqueue(t, tasks.Cancel{ConferenceID: cloudsim.DemoConfScheduled}, tasks.TaskOptions{})
	info := b.wait(t, "default", key)
	require.Equal(t, asynq.TaskStateArchived, info.State)
	require.Zero(t, info.Retried)
	r := result(t, info)
	require.Equal(t, tasks.ReasonAuth, r.Reason)
	require.Equal(t, 401, r.Status)
	require.Equal(t, "USG.206010025", r.ErrorCode)
	require.Equal(t, "req-login", r.RequestID)
	rec, err := b.dead.Get(context.Background(), key)
	require.NoError(t, err)
	require.Equal(t, tasks.ReasonAuth, rec.Reason)
	require.Equal(t, int32(1), api.calls.Load())
}

// On its last attempt a task waits for the next login in place: a
// deferral there would be archived by asynq.
func TestLastAttemptWaitsForTheLoginInPlace(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noServer: true})
	api := &loginFailingAPI{API: b.api, fails: []error{
		&apiclient.LoginError{Credential: apiclient.CredentialMeeting, RetryIn: 50 * time.Millisecond, Err: refusedLogin},
	}}
	b.startServer(t, api, setupOpts{})
	info := b.wait(t, "default", b.enqueue(t, tasks.Cancel{ConferenceID: cloudsim.DemoConfScheduled}, tasks.TaskOptions{MaxRetry: tasks.NoRetry}))
	require.Equal(t, asynq.TaskStateCompleted, info.State, "not a dead letter")
	require.Equal(t, int32(2), api.calls.Load())
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Empty(t, b.delays, "waited in place")
}

// The reproduction: the first App ID login refused once, five
// Meeting tasks at once. They shared that login's refusal and used to
// dead-letter with reason auth; now all five complete.
func TestOneRefusedLoginDeadLettersNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noServer: true})
	require.NoError(t, b.sim.SetFault("appauth", cloudsim.Fault{Script: []string{"401"}}))
	ts := httptest.NewServer(b.sim)
	t.Cleanup(ts.Close)
	creds := b.sim.Credentials()
	api, err := apiclient.New(apiclient.Config{MeetingEndpoint: ts.URL, MeetingAppID: creds.AppID, MeetingAppKey: creds.AppKey,
		MeetingUserID: creds.UserID, Timeout: 2 * time.Second})
	require.NoError(t, err)
	b.startServer(t, api, setupOpts{})
	var keys []string
	for i := 1; i <= 5; i++ {
		keys = append(keys, b.enqueue(t, tasks.HangUp{ConferenceID: cloudsim.DemoConfOngoing,
			ParticipantIDs: []string{fmt.Sprintf("p-%03d", i)}}, tasks.TaskOptions{}))
	}
	for _, key := range keys {
		info := b.wait(t, "default", key)
		require.Equal(t, asynq.TaskStateCompleted, info.State, "%s: %s", key, info.Result)
		require.Zero(t, info.Retried)
	}
	st := b.sim.Stats()
	require.Equal(t, 1, st.CountStatus("appauth", "401"), "the refused login happened")
	for i := 1; i <= 5; i++ {
		require.Equal(t, 1, st.Effect(fmt.Sprintf("hangup:%s/p-%03d", cloudsim.DemoConfOngoing, i)))
	}
}

// An attempt whose login failed never reached upstream: the next one is
// still a first attempt, so the operation's "already done" answer (here:
// no such meeting) is a genuine 4xx, not the earlier attempt's effect.
func TestAttemptWithFailedLoginIsNotAnEarlierEffect(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noServer: true})
	api := &loginFailingAPI{API: b.api, fails: []error{
		&apiclient.LoginError{Credential: apiclient.CredentialMeeting, RetryIn: 20 * time.Millisecond, Err: refusedLogin},
	}}
	b.startServer(t, api, setupOpts{})
	info := b.wait(t, "default", b.enqueue(t, tasks.Cancel{ConferenceID: cloudsim.DemoConfMissing}, tasks.TaskOptions{}))
	require.Equal(t, asynq.TaskStateArchived, info.State)
	r := result(t, info)
	require.Equal(t, tasks.ReasonHTTP4xx, r.Reason)
	require.Equal(t, "MMC.111070005", r.ErrorCode)
	require.Equal(t, 1, r.Attempts)
}
