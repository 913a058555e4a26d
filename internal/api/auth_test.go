package api_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/ratelimit"
)

// A missing, malformed or unknown token is 401 with a Bearer challenge; a
// token without the scope is 403; no answer repeats the token.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	for _, tc := range []struct {
		name, header, challenge string
		invalid                 bool
	}{
		{name: "no header", challenge: `Bearer realm="meetops"`, invalid: true},
		{name: "basic", header: "Basic dXNlcjpwYXNz", challenge: `Bearer realm="meetops", error="invalid_request"`, invalid: true},
		{name: "empty bearer", header: "Bearer ", challenge: `Bearer realm="meetops", error="invalid_request"`, invalid: true},
		{name: "unknown token", header: "Bearer mo_not-a-token", challenge: `Bearer realm="meetops", error="invalid_token"`},
		{name: "a token's hash", header: "Bearer sha256:" + strings.Repeat("0", 64), challenge: `Bearer realm="meetops", error="invalid_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := r.with(t)
			q := req{method: http.MethodPost, path: "/v1/operations", ctype: "application/json", body: dismiss, invalid: tc.invalid}
			if tc.header != "" {
				q.token = tc.header
			}
			a := r.do(q)
			a.problem(t, http.StatusUnauthorized, "unauthorized")
			require.Equal(t, tc.challenge, a.header.Get("WWW-Authenticate"))
		})
	}
	// The scheme is case-insensitive (RFC 7235).
	a := r.do(req{method: http.MethodPost, path: "/v1/operations", token: "bearer " + r.secrets["svc"], ctype: "application/json", body: dismiss})
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)

	// Dead letters need admin.
	a = r.get("/v1/dead-letters", "svc")
	a.problem(t, http.StatusForbidden, "forbidden")
	require.Equal(t, `Bearer realm="meetops", error="insufficient_scope", scope="admin"`, a.header.Get("WWW-Authenticate"))
	require.Equal(t, http.StatusOK, r.get("/v1/dead-letters", "ops").status)
	// admin includes enqueue.
	require.Equal(t, http.StatusOK, r.get("/v1/operations/"+dismissKey, "ops").status)
	// The operations, batches and dead letters all need a token.
	for _, p := range []string{"/v1/operations/" + dismissKey, "/v1/batches/b_0123456789abcdef01234567", "/v1/dead-letters"} {
		r.do(req{method: http.MethodGet, path: p, invalid: true}).problem(t, http.StatusUnauthorized, "unauthorized")
	}
	// Health, readiness, metrics and the document need none.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/v1/openapi.yaml"} {
		require.Equal(t, http.StatusOK, r.get(p, "").status, p)
	}

	// The token is in no log line; the name is in every accepted one.
	logs := r.logs.String()
	for _, secret := range r.secrets {
		require.NotContains(t, logs, secret)
		require.NotContains(t, logs, secret[3:])
	}
	for _, line := range r.logLines() {
		if line["msg"] != "request" {
			continue
		}
		status := int(line["status"].(float64))
		if status < 400 && strings.HasPrefix(line["route"].(string), "POST /v1/") || strings.HasPrefix(line["route"].(string), "GET /v1/dead") && status == 200 {
			require.Contains(t, []any{"svc", "ops"}, line["token"], "%v", line)
		}
		if status == 401 {
			require.NotContains(t, line, "token")
		}
	}
	metrics := r.get("/metrics", "").body
	for _, secret := range r.secrets {
		require.NotContains(t, string(metrics), secret)
	}
	require.NotContains(t, string(metrics), `"svc"`)
}

// Each token has its own budget: over it, 429 with Retry-After; another
// token is not affected.
func TestRateLimitPerToken(t *testing.T) {
	t.Parallel()
	r := newRig(t, withRateLimit(ratelimit.Limit{Rate: 3, Period: time.Minute}))
	for i := range 3 {
		require.Equal(t, http.StatusNotFound, r.get("/v1/operations/k", "svc").status, "request %d", i)
	}
	a := r.get("/v1/operations/k", "svc")
	p := a.problem(t, http.StatusTooManyRequests, "rate-limited")
	require.Contains(t, p.Detail, "svc")
	wait, err := strconv.Atoi(a.header.Get("Retry-After"))
	require.NoError(t, err)
	require.InDelta(t, 20, wait, 1, "3/m refills one request every 20 s")
	require.Equal(t, http.StatusNotFound, r.get("/v1/operations/k", "ops").status, "another token's budget")
	// Unauthenticated paths are not limited.
	require.Equal(t, http.StatusOK, r.get("/healthz", "").status)
}

// Wrong methods are 405 with Allow, unknown paths 404, both problems.
func TestMethodsAndPaths(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	a := r.do(req{method: http.MethodGet, path: "/v1/operations", token: "svc", invalid: true})
	a.problem(t, http.StatusMethodNotAllowed, "method-not-allowed")
	require.Equal(t, "POST", a.header.Get("Allow"))
	a = r.do(req{method: http.MethodPut, path: "/v1/dead-letters/k", token: "ops", invalid: true})
	a.problem(t, http.StatusMethodNotAllowed, "method-not-allowed")
	require.Equal(t, "DELETE", a.header.Get("Allow"))
	r.do(req{method: http.MethodGet, path: "/v2/operations", token: "svc", invalid: true}).problem(t, http.StatusNotFound, "not-found")
	r.do(req{method: http.MethodGet, path: "/v1/nothing", invalid: true}).problem(t, http.StatusNotFound, "not-found")
}
