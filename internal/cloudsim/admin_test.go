package cloudsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAdminStatsAndLog(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	tok := b.iamToken(t)
	b.rtc(t, "/v2/apps/demo-app/rooms/room-001/dismiss", tok)

	a := b.send(t, http.MethodGet, "/_sim/stats", nil, "")
	require.Equal(t, http.StatusOK, a.status)
	var st Stats
	a.decode(t, &st)
	require.Equal(t, sim.Stats(), st)
	require.Equal(t, 1, st.Effect("dismiss:demo-app/room-001"))
	require.Equal(t, 1, st.Logins[OpIAMToken])

	a = b.send(t, http.MethodGet, "/_sim/log?limit=1", nil, "")
	require.Equal(t, http.StatusOK, a.status)
	var entries []LogEntry
	a.decode(t, &entries)
	require.Len(t, entries, 1)
	require.Equal(t, OpDismiss, entries[0].Op)
	require.Equal(t, "/v2/apps/demo-app/rooms/room-001/dismiss", entries[0].Path)
	require.Equal(t, http.StatusAccepted, entries[0].Status)
	require.Equal(t, "iam_token", entries[0].Auth)
	require.Equal(t, testStart, entries[0].Time)

	require.Equal(t, http.StatusMethodNotAllowed, b.send(t, http.MethodPost, "/_sim/stats", nil, "").status)
	require.Equal(t, http.StatusNotFound, b.send(t, http.MethodGet, "/_sim/nope", nil, "").status)
	require.Equal(t, 2, sim.Stats().Count(OpIAMToken)+sim.Stats().Count(OpDismiss), "admin requests are not counted")
}

func TestAdminReset(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	tok := b.iamToken(t)
	require.NoError(t, sim.SetFault(OpDismiss, Fault{Script: []string{"503"}}))
	b.rtc(t, "/v2/apps/demo-app/rooms/room-001/dismiss", tok)

	require.Equal(t, http.StatusNoContent, b.send(t, http.MethodPost, "/_sim/reset", nil, "").status)
	require.Zero(t, sim.Stats().Count(OpDismiss))
	require.Empty(t, sim.Log())
	require.Empty(t, sim.Faults())
	require.Equal(t, http.StatusAccepted, b.rtc(t, "/v2/apps/demo-app/rooms/room-001/dismiss", tok).status, "world and tokens kept")

	require.Equal(t, http.StatusNoContent, b.send(t, http.MethodPost, "/_sim/reset?state=1", nil, "").status)
	require.Empty(t, sim.State().Apps)
	require.Equal(t, http.StatusUnauthorized, b.rtc(t, "/v2/apps/demo-app/rooms/room-002/dismiss", tok).status, "tokens revoked")
}

func TestAdminFaults(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	a := b.send(t, http.MethodPut, "/_sim/faults", nil, `{"disable": {"script": ["503"]}}`)
	require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	require.JSONEq(t, `{"disable": {"script": ["503"]}}`, string(a.body))
	require.Equal(t, http.StatusServiceUnavailable, b.rtc(t, "/v2/apps/demo-app-2/disable", b.iamToken(t)).status)

	a = b.send(t, http.MethodPut, "/_sim/faults", nil, `{"disable": {"rate": 2}}`)
	require.Equal(t, http.StatusBadRequest, a.status)
	require.Contains(t, string(a.body), "rate")

	require.NoError(t, sim.SetFault(OpCancel, Fault{Latency: time.Second}))
	a = b.send(t, http.MethodGet, "/_sim/faults", nil, "")
	require.JSONEq(t, `{"cancel": {"latency": "1s"}}`, string(a.body))

	require.Equal(t, http.StatusNoContent, b.send(t, http.MethodDelete, "/_sim/faults", nil, "").status)
	require.Empty(t, sim.Faults())
}

func TestAdminFixtureStateTTLs(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	a := b.send(t, http.MethodPost, "/_sim/fixture", nil, `{"apps": [{"app_id": "extra", "rooms": ["r"]}]}`)
	require.Equal(t, http.StatusNoContent, a.status, "body: %s", a.body)
	require.True(t, sim.RoomExists("extra", "r"))
	require.Equal(t, http.StatusBadRequest, b.send(t, http.MethodPost, "/_sim/fixture", nil, `{"apps": [{"id": "x"}]}`).status)

	a = b.send(t, http.MethodGet, "/_sim/state", nil, "")
	require.Equal(t, http.StatusOK, a.status)
	var f Fixture
	a.decode(t, &f)
	require.Equal(t, sim.State(), f)

	a = b.send(t, http.MethodPut, "/_sim/ttls", nil, `{"access": "2m", "control": "30s"}`)
	require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	require.JSONEq(t, `{"iam": "24h0m0s", "access": "2m0s", "control": "30s"}`, string(a.body))
	require.Equal(t, TokenTTLs{IAM: DefaultIAMTTL, Access: 2 * time.Minute, Control: 30 * time.Second}, sim.TokenTTLs())
	require.Equal(t, http.StatusBadRequest, b.send(t, http.MethodPut, "/_sim/ttls", nil, `{"iam": "soon"}`).status)

	tok := b.accessToken(t)
	require.Equal(t, http.StatusNoContent, b.send(t, http.MethodPost, "/_sim/tokens/revoke", nil, "").status)
	require.Equal(t, http.StatusUnauthorized, b.meeting(t, http.MethodGet, "/v1/mmc/management/conferences/confDetail?conferenceID="+DemoConfOngoing, tok, "").status)
}

// TestLogHasNoSecrets sends every kind of credential and checks that none
// reaches the request log.
func TestLogHasNoSecrets(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	c := b.creds
	iamTok := b.iamToken(t)
	b.rtc(t, "/v2/apps/demo-app/rooms/room-001/dismiss", iamTok)
	b.signed(t, "/v2/apps/demo-app/rooms/room-002/dismiss", "")
	accessTok := b.accessToken(t)
	req := b.newRequest(t, http.MethodPost, "/v1/usg/acs/auth/account", nil, fmt.Sprintf(`{"account":%q,"clientType":72}`, c.Account))
	req.SetBasicAuth(c.Account, c.Password)
	b.roundTrip(t, req)
	b.send(t, http.MethodPost, "/v3/auth/tokens", nil, iamBody(c.IAMUser, "a-wrong-password-123", c.IAMDomain, c.IAMProjectID))
	ctlTok := b.controlToken(t, DemoConfOngoing)
	b.hangup(t, DemoConfOngoing, ctlTok, `{"bulkHangUpParticipants":["p-001"]}`)
	b.meeting(t, http.MethodDelete, "/v1/mmc/management/conferences?conferenceID="+DemoConfScheduled, accessTok, "")
	b.send(t, http.MethodGet, "/v1/mmc/management/conferences/confDetail?conferenceID=1&password=qs-secret-1&token=qs-secret-2", nil, "")

	raw, err := json.Marshal(sim.Log())
	require.NoError(t, err)
	log := string(raw)
	require.Len(t, sim.Log(), 10)
	for _, secret := range []string{
		c.SK, c.IAMPassword, c.AppKey, c.Password, DemoChairPassword, "a-wrong-password-123",
		iamTok, accessTok, ctlTok, "qs-secret-1", "qs-secret-2",
	} {
		require.False(t, strings.Contains(log, secret), "the log holds %q", secret)
	}
	require.Contains(t, log, `"auth":"aksk"`)
	require.Contains(t, log, `"auth":"password"`)
}

func TestLogIsBounded(t *testing.T) {
	t.Parallel()
	sim := New(Options{LogSize: 3})
	for i := range 5 {
		sim.record(LogEntry{RequestID: fmt.Sprint(i)}, "200")
	}
	var ids []string
	for _, e := range sim.Log() {
		ids = append(ids, e.RequestID)
	}
	require.Equal(t, []string{"2", "3", "4"}, ids)
}
