package apiclient

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Distinctive credentials: no error string may ever contain one of them.
const (
	testAK          = "TESTAKPUBLIC0001"
	testSK          = "SK-SECRET-8b1f77"
	testProjectID   = "project-0001"
	testIAMPassword = "IAM-PASSWORD-7c2e41"
	testAppID       = "app-id-0001"
	testAppKey      = "APP-KEY-SECRET-3d9a55"
	testUserID      = "user-0001"
	testAccount     = "account-0001"
	testMeetingPwd  = "MEETING-PASSWORD-5e6f02"
	// Tokens and passwords the fake cloud hands out all start with this.
	secretMark = "SECRET"
)

// fakeClock is an injectable, manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// call is one request the fake cloud received.
type call struct {
	route    string
	method   string
	path     string // r.URL.EscapedPath()
	rawQuery string
	query    url.Values
	header   http.Header
	body     []byte
	ctx      context.Context // the server request's context
}

// fakeHandler answers the n-th call (1-based) of a route.
type fakeHandler func(w http.ResponseWriter, c call, n int)

// fakeCloud stands in for RTC, IAM and Meeting on one httptest server. It
// records every request, verifies AK/SK signatures and App ID signatures,
// and answers with realistic defaults unless a route's handler is replaced.
type fakeCloud struct {
	t     testing.TB
	srv   *httptest.Server
	clock *fakeClock

	mu       sync.Mutex
	calls    []call
	counts   map[string]int
	handlers map[string]fakeHandler
}

// routes maps "METHOD /escaped/path/pattern" to a route name; "*" matches
// exactly one segment.
var routes = []struct{ method, pattern, name string }{
	{"POST", "/v2/apps/*/rooms/*/dismiss", "dismiss"},
	{"POST", "/v2/apps/*/disable", "disable"},
	{"POST", "/v3/auth/tokens", "iam_token"},
	{"POST", "/v2/usg/acs/auth/appauth", "meeting_auth"},
	{"POST", "/v1/usg/acs/auth/account", "meeting_auth"},
	{"DELETE", "/v1/mmc/management/conferences", "cancel"},
	{"GET", "/v1/mmc/management/conferences/confDetail", "conf_detail"},
	{"GET", "/v1/mmc/control/conferences/token", "control_token"},
	{"POST", "/v1/mmc/control/conferences/participants/delete", "hangup"},
	{"POST", "/v1/usg/dcs/corp/vmr/recycle-from-member/*", "reclaim"},
}

func routeOf(method, escapedPath string) string {
	segs := strings.Split(escapedPath, "/")
	for _, rt := range routes {
		pat := strings.Split(rt.pattern, "/")
		if rt.method != method || len(pat) != len(segs) {
			continue
		}
		match := true
		for i := range pat {
			if pat[i] != "*" && pat[i] != segs[i] {
				match = false
				break
			}
		}
		if match {
			return rt.name
		}
	}
	return ""
}

func newFakeCloud(t testing.TB, clock *fakeClock) *fakeCloud {
	f := &fakeCloud{t: t, clock: clock, counts: map[string]int{}, handlers: map[string]fakeHandler{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// handle replaces the handler of a route.
func (f *fakeCloud) handle(route string, h fakeHandler) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[route] = h
}

// count is how many requests a route received.
func (f *fakeCloud) count(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[route]
}

// routeCalls returns the recorded calls of a route.
func (f *fakeCloud) routeCalls(route string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.route == route {
			out = append(out, c)
		}
	}
	return out
}

// routeSequence lists the routes called, in order.
func (f *fakeCloud) routeSequence() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, c.route)
	}
	return out
}

func (f *fakeCloud) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	c := call{
		route:    routeOf(r.Method, r.URL.EscapedPath()),
		method:   r.Method,
		path:     r.URL.EscapedPath(),
		rawQuery: r.URL.RawQuery,
		query:    r.URL.Query(),
		header:   r.Header.Clone(),
		body:     body,
		ctx:      r.Context(),
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.counts[c.route]++
	n := f.counts[c.route]
	h := f.handlers[c.route]
	f.mu.Unlock()

	if c.route == "" {
		writeJSON(w, http.StatusNotFound, map[string]string{"error_code": "TEST.404", "error_msg": "no route " + r.Method + " " + c.path})
		return
	}
	if c.route == "dismiss" || c.route == "disable" {
		if strings.HasPrefix(r.Header.Get("Authorization"), SignAlgorithm) {
			if err := (Signer{AK: testAK, SK: testSK}).Verify(r, body, f.clock.Now()); err != nil {
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error_code": "APIG.0301", "error_msg": err.Error()})
				return
			}
		}
	}
	if c.route == "meeting_auth" && strings.HasPrefix(r.Header.Get("Authorization"), "HMAC-SHA256 ") {
		if err := verifyAppAuth(r.Header.Get("Authorization"), body); err != nil {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error_code": "USG.000000001", "error_msg": err.Error()})
			return
		}
	}
	if h == nil {
		h = f.defaultHandler
	}
	h(w, c, n)
}

// verifyAppAuth checks an App ID authentication request independently of
// the package's helpers.
func verifyAppAuth(authz string, body []byte) error {
	var b struct {
		AppID      string `json:"appId"`
		ClientType int    `json:"clientType"`
		UserID     string `json:"userId"`
		ExpireTime int64  `json:"expireTime"`
		Nonce      string `json:"nonce"`
		CorpID     string `json:"corpId"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return err
	}
	data := fmt.Sprintf("%s:%s:%d:%s", b.AppID, b.UserID, b.ExpireTime, b.Nonce)
	if b.CorpID != "" {
		data = fmt.Sprintf("%s:%s:%s:%d:%s", b.AppID, b.CorpID, b.UserID, b.ExpireTime, b.Nonce)
	}
	want := "HMAC-SHA256 signature=" + hmacHex(testAppKey, data) + ",access=" + base64.StdEncoding.EncodeToString([]byte(b.AppID))
	if authz != want {
		return fmt.Errorf("bad app auth signature")
	}
	return nil
}

func (f *fakeCloud) defaultHandler(w http.ResponseWriter, c call, n int) {
	now := f.clock.Now()
	switch c.route {
	case "dismiss":
		w.Header().Set("X-request-Id", fmt.Sprintf("rtc-req-%d", n))
		w.WriteHeader(http.StatusAccepted)
	case "disable":
		w.Header().Set("X-request-Id", fmt.Sprintf("rtc-req-%d", n))
		appID, _ := url.PathUnescape(strings.Split(c.path, "/")[3])
		writeJSON(w, http.StatusOK, map[string]any{"app_id": appID, "state": map[string]string{"state": "DEACTIVATION", "update_time": "2020-07-26T07:03:05.075Z"}})
	case "iam_token":
		w.Header().Set("X-Subject-Token", fmt.Sprintf("IAM-TOKEN-%s-%d", secretMark, n))
		writeJSON(w, http.StatusCreated, map[string]any{"token": map[string]any{"expires_at": now.Add(24 * time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z")}})
	case "meeting_auth":
		writeJSON(w, http.StatusOK, map[string]any{"accessToken": fmt.Sprintf("ACCESS-TOKEN-%s-%d", secretMark, n), "validPeriod": 43200,
			"expireTime": now.Add(12 * time.Hour).Unix(), "refreshToken": "REFRESH-" + secretMark})
	case "conf_detail":
		conf := c.query.Get("conferenceID")
		writeJSON(w, http.StatusOK, map[string]any{"conferenceData": map[string]any{"conferenceID": conf, "passwordEntry": []map[string]string{
			{"conferenceRole": "general", "password": "GUEST-PWD-" + secretMark},
			{"conferenceRole": "chair", "password": chairPassword(conf)},
		}}})
	case "control_token":
		conf := c.query.Get("conferenceID")
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"token": controlTokenValue(conf, n),
			"expireTime": now.Add(30 * time.Minute).UnixMilli(), "confTokenExpireTime": 1800}})
	default: // cancel, hangup, reclaim
		w.Header().Set("X-Request-Id", fmt.Sprintf("%s-req-%d", c.route, n))
		w.WriteHeader(http.StatusOK)
	}
}

func chairPassword(conf string) string { return "CHAIR-PWD-" + secretMark + "-" + conf }

func controlTokenValue(conf string, n int) string {
	return fmt.Sprintf("CONTROL-TOKEN-%s-%s-%d", secretMark, conf, n)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with a JSON error body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error_code": code, "error_msg": msg})
}

// testBundle is what setup returns besides the Client.
type testBundle struct {
	cloud *fakeCloud
	clock *fakeClock
	cfg   Config
}

var testEpoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// setup returns a Client in AK/SK and App ID mode pointed at a fresh fake
// cloud; opts adjust the Config before New.
func setup(t *testing.T, opts ...func(*Config)) (*Client, *testBundle) {
	t.Helper()
	clock := &fakeClock{t: testEpoch}
	cloud := newFakeCloud(t, clock)
	cfg := Config{
		RTCEndpoint:     cloud.srv.URL,
		RTCAK:           testAK,
		RTCSK:           testSK,
		RTCProjectID:    testProjectID,
		IAMEndpoint:     cloud.srv.URL,
		MeetingEndpoint: cloud.srv.URL,
		MeetingAppID:    testAppID,
		MeetingAppKey:   testAppKey,
		MeetingUserID:   testUserID,
		Timeout:         5 * time.Second,
		Version:         "1.2.3",
		Now:             clock.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	client, err := New(cfg)
	require.NoError(t, err)
	return client, &testBundle{cloud: cloud, clock: clock, cfg: cfg}
}

// iamMode switches the Config to RTC IAM token mode.
func iamMode(c *Config) {
	c.RTCAK, c.RTCSK, c.RTCProjectID = "", "", ""
	c.IAMUser, c.IAMPassword, c.IAMDomain, c.IAMProjectID = "iam-user", testIAMPassword, "iam-domain", "iam-project"
}

// accountMode switches the Config to Meeting account authentication.
func accountMode(c *Config) {
	c.MeetingAppID, c.MeetingAppKey, c.MeetingUserID = "", "", ""
	c.MeetingAccount, c.MeetingPassword = testAccount, testMeetingPwd
}

// requireAPIError asserts err is an *Error and returns it.
func requireAPIError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	require.ErrorAs(t, err, &e)
	return e
}

// hmacHex is hex(HMAC-SHA256(key, data)), written independently of the
// package under test.
func hmacHex(key, data string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(data))
	return hex.EncodeToString(m.Sum(nil))
}
