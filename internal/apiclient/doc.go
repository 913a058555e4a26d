// Package apiclient is the typed HTTP client for the Huawei Cloud RTC and
// Huawei Cloud Meeting APIs that meetops drives: dismissing an RTC room,
// disabling an RTC application, cancelling a meeting, hanging up meeting
// participants and reclaiming cloud meeting rooms (VMRs).
//
// A [Client] owns the credentials and every token derived from them:
//
//   - RTC requests are signed with AK/SK ([Signer], SDK-HMAC-SHA256) or carry
//     an IAM user token (X-Auth-Token) that is cached and refreshed before it
//     expires and once on an authentication failure.
//   - Meeting requests carry an access token (X-Access-Token) from App ID or
//     account authentication, shared by every caller of the Client (create one
//     Client per process: the upstream keeps at most 64 tokens per user).
//   - Hanging up participants needs a per-conference control token
//     (X-Conference-Authorization), which the client obtains with the chair
//     password read from the conference detail.
//
// Requests follow the official Go SDK (huaweicloud-sdk-go-v3), which the
// conformance module at the repository root compares them with: the same
// method, path, query and body bytes (JSON without HTML escaping; the SDK
// adds a newline), and a Content-Type on every request, bodiless ones
// included (application/json on API calls; the RTC pages mark it
// mandatory). Two differences are deliberate. Every request carries an
// X-Request-Id (a UUID), so that an error has a request ID even when the
// answer carries none. The Meeting access token is sent only to the calls
// that take it: the SDK's credentials add it to every Meeting request,
// control-token and hang-up included, but neither those calls' pages nor
// the SDK's own request definitions for them list it (they authenticate
// with the host password and the control token), and sending the
// enterprise-wide token there only exposes it. (AK/SK signatures also
// cover host, which the SDK's do not; see [Signer.Sign].)
//
// Every non-2xx answer and every transport failure is returned as an [*Error]
// carrying the HTTP status, the upstream error code and message, the request
// ID and any Retry-After; callers classify it. No error string produced by
// this package contains a credential, token or password.
//
// A login (IAM token, App ID or account authentication, control token) that
// the login endpoint refuses (401, 403) or fails to answer (5xx, timeout) is
// not the calls' own failure: they get a [*LoginError] telling them when the
// next login may be tried, and only refusals that go on for a window make
// the credential rejected ([LoginPolicy]); a successful login, with a secret
// re-read through [Config.ReloadSecret], ends that. A 401 on an operation
// itself still means a stale token: it is refreshed once in the same call.
//
// The package knows nothing of queues, metrics or logging; [Config.Observe]
// and [Config.OnLoginState] are its hooks.
package apiclient
