package retry_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/retry"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	apiErr := func(status int, code string) error {
		return fmt.Errorf("dismiss: %w", &apiclient.Error{Op: "dismiss", Status: status, Code: code})
	}
	tests := []struct {
		name string
		err  error
		want retry.Class
	}{
		{"nil", nil, retry.Success},
		{"transport", &apiclient.Error{Op: "dismiss", Err: errors.New("connection reset")}, retry.Transient},
		{"timeout", &apiclient.Error{Op: "dismiss", Err: context.DeadlineExceeded}, retry.Transient},
		{"foreign error (Redis down)", errors.New("dial tcp: connection refused"), retry.Transient},
		{"500", apiErr(500, "RTC.00002001"), retry.Transient},
		{"502 no body", apiErr(502, ""), retry.Transient},
		{"503", apiErr(503, ""), retry.Transient},
		{"429", apiErr(429, ""), retry.Transient},
		{"408", apiErr(408, ""), retry.Transient},
		{"APIG.0308 on 400", apiErr(400, "APIG.0308"), retry.Transient},
		{"401", apiErr(401, "APIG.0307"), retry.Auth},
		{"bad signature lock 401", apiErr(401, "APIG.0301"), retry.Auth},
		{"USG token code", apiErr(400, "USG.000000004"), retry.Auth},
		{"RTC unauthorized on 400", apiErr(400, "RTC.00001001"), retry.Auth},
		{"404", apiErr(404, "RTC.00001003"), retry.Permanent},
		{"400 app deactivated", apiErr(400, "RTC.00001016"), retry.Permanent},
		{"403", apiErr(403, ""), retry.Permanent},
		{"meeting not found", apiErr(400, "MMC.111070005"), retry.Permanent},
		{"redirect is never followed", apiErr(302, ""), retry.Permanent},
		{"refused argument", fmt.Errorf("dismiss: %w", apiclient.ErrInvalidArgument), retry.Permanent},
		{"family not configured", fmt.Errorf("cancel: %w", apiclient.ErrNotConfigured), retry.Permanent},
		{"unreadable 2xx", fmt.Errorf("disable: %w", apiclient.ErrUnexpectedAnswer), retry.Transient},
		// A login refused (401) but not yet for the window: the operation
		// was never sent, and the credentials are not proven wrong.
		{"login refused, not rejected", fmt.Errorf("cancel: %w", &apiclient.LoginError{Credential: "meeting", RetryIn: time.Second,
			Err: &apiclient.Error{Op: "meeting_auth", Status: 401}}), retry.Transient},
		{"login 503", &apiclient.LoginError{Credential: "iam", Err: &apiclient.Error{Op: "iam_token", Status: 503}}, retry.Transient},
		{"credentials rejected", &apiclient.LoginError{Credential: "meeting", Rejected: true,
			Err: &apiclient.Error{Op: "meeting_auth", Status: 401}}, retry.Auth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, retry.Classify(tt.err), "class %s", retry.Classify(tt.err))
		})
	}
	require.True(t, retry.IsThrottle(apiErr(429, "")))
	require.True(t, retry.IsThrottle(apiErr(400, "APIG.0308")))
	require.False(t, retry.IsThrottle(apiErr(503, "")))
	require.True(t, retry.IsTimeout(&apiclient.Error{Err: context.DeadlineExceeded}))
	require.False(t, retry.IsTimeout(apiErr(500, "")))

	wait, ok := retry.LoginWait(fmt.Errorf("cancel: %w", &apiclient.LoginError{RetryIn: 3 * time.Second, Err: &apiclient.Error{Status: 401}}))
	require.True(t, ok)
	require.Equal(t, 3*time.Second, wait)
	_, ok = retry.LoginWait(&apiclient.LoginError{Rejected: true, Err: &apiclient.Error{Status: 401}})
	require.False(t, ok, "rejected: nothing to wait for")
	_, ok = retry.LoginWait(apiErr(401, ""))
	require.False(t, ok, "an operation's own 401 is not a login")
}

func TestAsynqAdapters(t *testing.T) {
	t.Parallel()
	p := retry.Policy{
		Default: retry.Schedule{Rand: fixed(0.5)},
		PerType: map[string]retry.Schedule{"fast": {Initial: time.Second, Rand: fixed(0.5)}},
		Rand:    fixed(0.5),
	}
	slow, fast := asynq.NewTask("slow", nil), asynq.NewTask("fast", nil)
	fail := &apiclient.Error{Status: 503}
	require.Equal(t, 8*time.Second, p.RetryDelay(2, fail, slow))
	require.Equal(t, 4*time.Second, p.RetryDelay(2, fail, fast))

	throttled := &apiclient.Error{Status: 429, RetryAfter: 90 * time.Second}
	require.Equal(t, 90*time.Second, p.RetryDelay(0, throttled, slow), "Retry-After is a floor")

	wait := fmt.Errorf("dismiss: %w", &retry.Deferral{After: 10 * time.Second, Reason: "ratelimit"})
	require.False(t, retry.IsFailure(wait), "a deferral must not consume a retry")
	require.True(t, retry.IsFailure(fail))
	require.Equal(t, 11*time.Second, p.RetryDelay(5, wait, slow), "deferral waits as asked plus jitter, whatever n")
	require.Contains(t, wait.Error(), "ratelimit")
}
