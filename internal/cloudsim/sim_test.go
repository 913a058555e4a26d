package cloudsim

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/apiclient"
)

// testStart is where every test clock starts.
var testStart = time.Date(2030, 1, 6, 9, 0, 0, 0, time.UTC)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type testBundle struct {
	clock  *fakeClock
	creds  Credentials
	srv    *httptest.Server
	client *http.Client
}

// setup returns a simulator seeded with the demo world, served by an
// httptest server, on a fake clock and a seeded random source.
func setup(t *testing.T) (*Sim, *testBundle) {
	t.Helper()
	clock := &fakeClock{now: testStart}
	sim := New(Options{Now: clock.Now, Rand: rand.New(rand.NewPCG(1, 2))})
	sim.Demo()
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	return sim, &testBundle{clock: clock, creds: sim.Credentials(), srv: srv, client: srv.Client()}
}

// answer is a response with its body read.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// errorCode is the error_code of a JSON error body ("" if none).
func (a answer) errorCode() string {
	var eb errorBody
	_ = json.Unmarshal(a.body, &eb)
	return eb.ErrorCode
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(a.body, v), "body: %s", a.body)
}

// send sends a request whose path (with query) is relative to the server.
func (b *testBundle) send(t *testing.T, method, path string, h http.Header, body string) answer {
	t.Helper()
	req := b.newRequest(t, method, path, h, body)
	return b.roundTrip(t, req)
}

func (b *testBundle) newRequest(t *testing.T, method, path string, h http.Header, body string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, b.srv.URL+path, rd)
	require.NoError(t, err)
	for k, vs := range h {
		req.Header[k] = vs
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

func (b *testBundle) roundTrip(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := b.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: data}
}

// iamToken logs in to IAM and returns the X-Subject-Token.
func (b *testBundle) iamToken(t *testing.T) string {
	t.Helper()
	a := b.send(t, http.MethodPost, "/v3/auth/tokens", nil, iamBody(b.creds.IAMUser, b.creds.IAMPassword, b.creds.IAMDomain, b.creds.IAMProjectID))
	require.Equal(t, http.StatusCreated, a.status, "body: %s", a.body)
	tok := a.header.Get("X-Subject-Token")
	require.NotEmpty(t, tok)
	return tok
}

func iamBody(user, password, domain, project string) string {
	b, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": user, "password": password, "domain": map[string]any{"name": domain}}}},
		"scope": map[string]any{"project": map[string]any{"id": project}},
	}})
	return string(b)
}

// rtc sends an RTC POST authenticated with an IAM token.
func (b *testBundle) rtc(t *testing.T, path, token string) answer {
	t.Helper()
	return b.send(t, http.MethodPost, path, http.Header{"X-Auth-Token": {token}}, "")
}

// signed sends an RTC POST signed with the AK/SK at the clock's time.
func (b *testBundle) signed(t *testing.T, path, body string) answer {
	t.Helper()
	req := b.newRequest(t, http.MethodPost, path, http.Header{"X-Project-Id": {b.creds.ProjectID}}, body)
	require.NoError(t, apiclient.Signer{AK: b.creds.AK, SK: b.creds.SK}.Sign(req, []byte(body), b.clock.Now()))
	return b.roundTrip(t, req)
}

const testNonce = "0123456789abcdef0123456789abcdef" // 32 characters

// appAuthRequest builds an App ID authentication request signed with key.
func (b *testBundle) appAuthRequest(t *testing.T, key, userID, corpID string, expireTime int64) *http.Request {
	t.Helper()
	body := map[string]any{"appId": b.creds.AppID, "clientType": 72, "expireTime": expireTime, "nonce": testNonce}
	if userID != "" {
		body["userId"] = userID
	}
	if corpID != "" {
		body["corpId"] = corpID
	}
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	sig := appAuthSignatureForTest(key, appAuthData(b.creds.AppID, corpID, userID, expireTime, testNonce))
	access := base64.StdEncoding.EncodeToString([]byte(b.creds.AppID))
	return b.newRequest(t, http.MethodPost, "/v2/usg/acs/auth/appauth",
		http.Header{"Authorization": {"HMAC-SHA256 signature=" + sig + ",access=" + access}}, string(raw))
}

// accessToken logs in with the App ID and returns the access token.
func (b *testBundle) accessToken(t *testing.T) string {
	t.Helper()
	a := b.roundTrip(t, b.appAuthRequest(t, b.creds.AppKey, b.creds.UserID, "", 0))
	require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	var out accessTokenBody
	a.decode(t, &out)
	require.NotEmpty(t, out.AccessToken)
	return out.AccessToken
}

// meeting sends a Meeting API request with an access token.
func (b *testBundle) meeting(t *testing.T, method, path, token, body string) answer {
	t.Helper()
	return b.send(t, method, path, http.Header{"X-Access-Token": {token}}, body)
}

// controlToken obtains a control token for a conference with its chair
// password.
func (b *testBundle) controlToken(t *testing.T, conf string) string {
	t.Helper()
	a := b.send(t, http.MethodGet, "/v1/mmc/control/conferences/token?conferenceID="+conf,
		http.Header{"X-Password": {DemoChairPassword}, "X-Login-Type": {"1"}}, "")
	require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	var out controlTokenBody
	a.decode(t, &out)
	return out.Data.Token
}

// hangup sends a hang-up request with a control token.
func (b *testBundle) hangup(t *testing.T, conf, token, body string) answer {
	t.Helper()
	return b.send(t, http.MethodPost, "/v1/mmc/control/conferences/participants/delete?conferenceID="+conf,
		http.Header{"X-Conference-Authorization": {token}}, body)
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling interval, not synchronisation
	}
}

func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(bytes.TrimSpace(b))
}
