package apiclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors for failures that happen before or after an exchange
// rather than in it; test with errors.Is.
var (
	// ErrNotConfigured: the API family (RTC or Meeting) of the call has no
	// credentials in the Config.
	ErrNotConfigured = errors.New("not configured")
	// ErrInvalidArgument: an argument was rejected before any request was
	// sent (empty ID, dot segment, empty list, unknown account type).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrUnexpectedAnswer: a 2xx answer lacked what the client needs
	// (a token, the chair password, a parsable body).
	ErrUnexpectedAnswer = errors.New("unexpected answer")
)

// Bounds of what an Error keeps of an answer: a non-JSON body and the
// error_msg of a JSON one (maxErrorBody), the error_code (maxErrorCode).
const (
	maxErrorBody = 512
	maxErrorCode = 64
)

// tokenOps are the exchanges that send credentials in their body or
// headers (a password, the App ID signature, the host password): an Error
// never copies their answer's body or message, which an upstream that
// echoes the request would fill with those credentials.
var tokenOps = map[string]bool{"iam_token": true, "meeting_auth": true, "control_token": true}

// Error is every non-2xx answer and every transport failure.
//
// Its fields and its message never contain a credential or token: values
// the client sent as secrets are replaced by "***" in Message and Body.
type Error struct {
	// Op names the exchange: "dismiss", "disable", "cancel", "hangup",
	// "reclaim", "iam_token", "meeting_auth", "conf_detail", "control_token".
	Op string
	// Status is the HTTP status; 0 for transport errors.
	Status int
	// Code is error_code from the body, e.g. "RTC.00001003", truncated to
	// 64 bytes.
	Code string
	// Message is error_msg from the body, truncated to about 512 bytes;
	// empty for the token requests (iam_token, meeting_auth,
	// control_token), whose answers are never copied.
	Message string
	// RequestID is the response's X-Request-Id header, else request_id from
	// the body, else the X-Request-Id the client sent.
	RequestID string
	// RetryAfter is the parsed Retry-After header (delta-seconds or
	// HTTP-date relative to Config.Now), capped at 24 h; 0 when absent,
	// invalid or in the past.
	RetryAfter time.Duration
	// Body is the raw body, truncated to about 512 bytes, when it is not a
	// JSON error object (has neither error_code nor error_msg); never set
	// for the token requests.
	Body string
	// Err is the underlying transport error (context.DeadlineExceeded,
	// context.Canceled, net errors…); nil for HTTP answers.
	Err error
}

// Error describes the failure on one line.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("apiclient: ")
	b.WriteString(e.Op)
	if e.Status == 0 {
		b.WriteString(": transport error")
		if e.Err != nil {
			b.WriteString(": ")
			b.WriteString(e.Err.Error())
		}
	} else {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
		if e.Message != "" {
			b.WriteString(": " + e.Message)
		}
		if e.Body != "" {
			fmt.Fprintf(&b, ": body %q", e.Body)
		}
	}
	if e.RequestID != "" {
		b.WriteString(" (request_id " + e.RequestID + ")")
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after " + e.RetryAfter.String() + ")")
	}
	return b.String()
}

// Unwrap returns the underlying transport error.
func (e *Error) Unwrap() error { return e.Err }

// errorBody is the JSON error body of both APIs.
type errorBody struct {
	Code      string `json:"error_code"`
	Message   string `json:"error_msg"`
	RequestID string `json:"request_id"`
}

// httpError builds the Error for a non-2xx answer. redact removes secrets.
func httpError(op string, status int, h http.Header, body []byte, sentID string, now time.Time, redact func(string) string) *Error {
	e := &Error{Op: op, Status: status, RetryAfter: parseRetryAfter(h.Get("Retry-After"), now)}
	var eb errorBody
	switch {
	case json.Unmarshal(body, &eb) == nil && (eb.Code != "" || eb.Message != ""):
		e.Code = truncate(redact(eb.Code), maxErrorCode)
		if !tokenOps[op] {
			e.Message = truncate(redact(eb.Message), maxErrorBody)
		}
	case len(body) > 0 && !tokenOps[op]:
		e.Body = truncate(redact(string(body)), maxErrorBody)
	}
	e.RequestID = requestID(h, body, sentID)
	return e
}

// requestID picks the request ID of an exchange: the response header (the
// RTC API spells it X-request-Id, which Get canonicalises), else request_id
// in a JSON body, else the ID we sent.
func requestID(h http.Header, body []byte, sentID string) string {
	if id := h.Get("X-Request-Id"); id != "" {
		return id
	}
	var eb errorBody
	if len(body) > 0 && body[0] == '{' && json.Unmarshal(body, &eb) == nil && eb.RequestID != "" {
		return eb.RequestID
	}
	return sentID
}

// maxRetryAfter caps Retry-After.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter parses delta-seconds or an HTTP-date, capped at
// maxRetryAfter; 0 when absent, invalid or not in the future.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// isAuthError reports whether err is an HTTP answer that a fresh token can
// cure: a 401, or one of the given error codes.
func isAuthError(err error, codes ...string) bool {
	var e *Error
	if !errors.As(err, &e) || e.Status == 0 {
		return false
	}
	if e.Status == http.StatusUnauthorized {
		return true
	}
	for _, c := range codes {
		if e.Code == c {
			return true
		}
	}
	return false
}
