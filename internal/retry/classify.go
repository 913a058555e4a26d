package retry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/meetops/meetops/internal/apiclient"
)

// Class is what an outcome means for the task that produced it.
type Class int

// The outcome classes of an upstream answer (README, "Errors and retries").
const (
	// Success is a 2xx answer (or nil error).
	Success Class = iota
	// Transient failures are retried with backoff: network errors,
	// timeouts, 5xx, 408, 429 and throttling codes.
	Transient
	// Auth failures persisted after the client refreshed its credentials
	// once, or the credentials are rejected (apiclient.LoginError):
	// permanent, with reason "auth".
	Auth
	// Permanent failures are dead-lettered at once: any other 4xx.
	Permanent
)

// String returns the class name used in logs and metrics.
func (c Class) String() string {
	switch c {
	case Success:
		return "success"
	case Transient:
		return "transient"
	case Auth:
		return "auth"
	case Permanent:
		return "permanent"
	}
	return "unknown"
}

// Throttling error codes that mean "slow down", whatever the HTTP status.
var throttleCodes = map[string]bool{
	"APIG.0308": true, // API gateway: request throttled
}

// Codes that mean the credentials were refused.
var authCodes = map[string]bool{
	"USG.000000004": true, // Meeting: access token invalid or expired
	"RTC.00001001":  true, // RTC: OperationUnauthorized (HTTP 400)
}

// Classify sorts err, the outcome of one upstream call, into a Class. An
// argument the client refuses to send, or a family it has no credentials
// for, is permanent. Other errors that are not an [*apiclient.Error] (Redis
// trouble, a cancelled context, a 2xx answer the client could not read) are
// transient: the task is retried rather than lost, and a retry that finds
// the operation done completes through its "already done" answer. A failed
// login ([*apiclient.LoginError]) is transient until its credentials are
// rejected, then auth; see [LoginWait] for waiting on it without spending a
// retry.
func Classify(err error) Class {
	if err == nil {
		return Success
	}
	if errors.Is(err, apiclient.ErrInvalidArgument) || errors.Is(err, apiclient.ErrNotConfigured) {
		return Permanent // the request was never sent and never could be
	}
	var le *apiclient.LoginError
	if errors.As(err, &le) {
		if le.Rejected {
			return Auth
		}
		return Transient // the operation was not sent: the login failed
	}
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status == 0 {
		return Transient
	}
	switch {
	case throttleCodes[ae.Code]:
		return Transient
	case ae.Status == http.StatusUnauthorized || authCodes[ae.Code]:
		return Auth
	case ae.Status >= 500, ae.Status == http.StatusTooManyRequests, ae.Status == http.StatusRequestTimeout:
		return Transient
	case ae.Status >= 300:
		return Permanent // 4xx, and redirects, which the client never follows
	}
	return Success
}

// LoginWait reports whether err is a login that failed without rejecting
// its credentials, and how long until the next login may be tried: the
// operation was never sent, and the task should wait that long without
// counting a failure.
func LoginWait(err error) (time.Duration, bool) {
	var le *apiclient.LoginError
	if errors.As(err, &le) && !le.Rejected {
		return le.RetryIn, true
	}
	return 0, false
}

// IsThrottle reports whether err is the upstream telling us to slow down
// (HTTP 429 or a throttling code), as opposed to a failure of its own.
func IsThrottle(err error) bool {
	var ae *apiclient.Error
	return errors.As(err, &ae) && (ae.Status == http.StatusTooManyRequests || throttleCodes[ae.Code])
}

// IsTimeout reports whether err is a deadline or network timeout.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// RetryAfter returns the delay the upstream asked for with Retry-After, or 0.
func RetryAfter(err error) time.Duration {
	var ae *apiclient.Error
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return ae.RetryAfter
	}
	return 0
}
