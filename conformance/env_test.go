package conformance

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/basic"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/config"
	rtc "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/cloudrtc/v2"
	meeting "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/meeting/v1"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/cloudsim"
)

// captured is one request as the server received it.
type captured struct {
	Method      string
	Path        string // decoded
	EscapedPath string // as sent
	RawQuery    string
	Header      http.Header
	Body        []byte
}

// Query is the parsed query.
func (c captured) Query() url.Values {
	q, _ := url.ParseQuery(c.RawQuery)
	return q
}

// recorder is an http.Handler that records every request and passes it on
// to the simulator unchanged.
type recorder struct {
	next http.Handler

	mu   sync.Mutex
	reqs []captured
	read int // how many take has returned
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "recorder: "+err.Error(), http.StatusBadRequest)
		return
	}
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, captured{
		Method: r.Method, Path: r.URL.Path, EscapedPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body,
	})
	rec.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec.next.ServeHTTP(w, r)
}

// take returns the requests recorded since the last take, oldest first.
func (rec *recorder) take() []captured {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := append([]captured(nil), rec.reqs[rec.read:]...)
	rec.read = len(rec.reqs)
	return out
}

// env is a simulator seeded with the demo world, served over HTTP on
// loopback behind a recorder.
type env struct {
	sim   *cloudsim.Sim
	rec   *recorder
	srv   *httptest.Server
	creds cloudsim.Credentials
}

func newEnv(t *testing.T) *env {
	t.Helper()
	sim := cloudsim.New(cloudsim.Options{})
	sim.Demo()
	rec := &recorder{next: sim}
	srv := httptest.NewServer(rec)
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	return &env{sim: sim, rec: rec, srv: srv, creds: sim.Credentials()}
}

// lastLog is the newest simulator log entry for op.
func (e *env) lastLog(t *testing.T, op string) cloudsim.LogEntry {
	t.Helper()
	log := e.sim.Log()
	for i := len(log) - 1; i >= 0; i-- {
		if log[i].Op == op {
			return log[i]
		}
	}
	t.Fatalf("no %s request in the simulator's log", op)
	return cloudsim.LogEntry{}
}

// sdkRTC is the SDK's CloudRTCClient with basic AK/SK credentials, pointed
// at the simulator.
func (e *env) sdkRTC(t *testing.T) *rtc.CloudRTCClient {
	t.Helper()
	cred, err := basic.NewCredentialsBuilder().WithAk(e.creds.AK).WithSk(e.creds.SK).WithProjectId(e.creds.ProjectID).SafeBuild()
	require.NoError(t, err)
	hc, err := rtc.CloudRTCClientBuilder().WithEndpoints([]string{e.srv.URL}).WithCredential(cred).
		WithHttpConfig(config.DefaultHttpConfig()).SafeBuild()
	require.NoError(t, err)
	return rtc.NewCloudRTCClient(hc)
}

// sdkMeeting is the SDK's MeetingClient with its account credentials (it
// logs in with POST /v1/usg/acs/auth/account and sends the access token on
// every request), pointed at the simulator. It is not safe for concurrent
// use: the credentials cache the token unguarded.
func (e *env) sdkMeeting(t *testing.T) *meeting.MeetingClient {
	t.Helper()
	cred := meeting.NewMeetingCredentialsBuilder().WithUserName(e.creds.Account).WithUserPassword(e.creds.Password).Build()
	hc, err := meeting.MeetingClientBuilder().WithEndpoints([]string{e.srv.URL}).WithCredential(cred).
		WithHttpConfig(config.DefaultHttpConfig()).SafeBuild()
	require.NoError(t, err)
	return meeting.NewMeetingClient(hc)
}

// apiclient is meetops' client in the modes the SDK clients use: AK/SK for
// RTC, account authentication for Meeting.
func (e *env) apiclient(t *testing.T) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(apiclient.Config{
		RTCEndpoint: e.srv.URL, RTCAK: e.creds.AK, RTCSK: e.creds.SK, RTCProjectID: e.creds.ProjectID,
		MeetingEndpoint: e.srv.URL, MeetingAccount: e.creds.Account, MeetingPassword: e.creds.Password,
		Version: "conformance",
	})
	require.NoError(t, err)
	return c
}
