package cloudsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// appAuthSignatureForTest is hex(HMAC-SHA256(key, data)), written out here
// so the tests do not trust the simulator's own helper.
func appAuthSignatureForTest(key, data string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(data))
	return hex.EncodeToString(m.Sum(nil))
}

func TestAppAuth(t *testing.T) {
	t.Parallel()

	t.Run("Valid", func(t *testing.T) {
		t.Parallel()
		sim, b := setup(t)
		for _, tt := range []struct{ user, corp string }{{"", ""}, {"alice", ""}, {"alice", "corp-1"}} {
			a := b.roundTrip(t, b.appAuthRequest(t, b.creds.AppKey, tt.user, tt.corp, testStart.Add(time.Hour).Unix()))
			require.Equal(t, http.StatusOK, a.status, "%+v: %s", tt, a.body)
			var out accessTokenBody
			a.decode(t, &out)
			require.NotEmpty(t, out.AccessToken)
			require.NotEmpty(t, out.RefreshToken)
			require.Equal(t, int64(DefaultAccessTTL/time.Second), out.ValidPeriod)
			require.Equal(t, testStart.Add(DefaultAccessTTL).Unix(), out.ExpireTime)
		}
		require.Equal(t, 3, sim.Stats().Logins[OpAppAuth])
	})

	t.Run("HandBuiltHeader", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		data := b.creds.AppID + ":" + b.creds.UserID + ":0:" + testNonce
		body := fmt.Sprintf(`{"appId":%q,"clientType":72,"userId":%q,"expireTime":0,"nonce":%q}`, b.creds.AppID, b.creds.UserID, testNonce)
		h := http.Header{"Authorization": {"HMAC-SHA256 signature=" + appAuthSignatureForTest(b.creds.AppKey, data) +
			",access=" + base64.StdEncoding.EncodeToString([]byte(b.creds.AppID))}}
		a := b.send(t, http.MethodPost, "/v2/usg/acs/auth/appauth", h, body)
		require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)

		// Tampered: the body names another user than the signature.
		tampered := strings.Replace(body, b.creds.UserID, "mallory", 1)
		a = b.send(t, http.MethodPost, "/v2/usg/acs/auth/appauth", h, tampered)
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.Equal(t, "USG.206010025", a.errorCode())

		// A space after the comma is not the documented format.
		spaced := http.Header{"Authorization": {strings.Replace(h.Get("Authorization"), ",access=", ", access=", 1)}}
		require.Equal(t, http.StatusUnauthorized, b.send(t, http.MethodPost, "/v2/usg/acs/auth/appauth", spaced, body).status)
	})

	t.Run("Rejected", func(t *testing.T) {
		t.Parallel()
		sim, b := setup(t)
		a := b.roundTrip(t, b.appAuthRequest(t, "wrong-key", "alice", "", 0))
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.Equal(t, "USG.206010025", a.errorCode())

		a = b.roundTrip(t, b.appAuthRequest(t, b.creds.AppKey, "alice", "", testStart.Add(-time.Second).Unix()))
		require.Equal(t, http.StatusUnauthorized, a.status, "expired expireTime")

		for name, nonce := range map[string]string{"short": strings.Repeat("n", 31), "long": strings.Repeat("n", 65)} {
			body := fmt.Sprintf(`{"appId":%q,"clientType":72,"expireTime":0,"nonce":%q}`, b.creds.AppID, nonce)
			a := b.send(t, http.MethodPost, "/v2/usg/acs/auth/appauth", nil, body)
			require.Equal(t, http.StatusBadRequest, a.status, name)
			require.Equal(t, "USG.000000001", a.errorCode(), name)
		}
		require.Equal(t, http.StatusBadRequest, b.send(t, http.MethodPost, "/v2/usg/acs/auth/appauth", nil, `{"appId":`).status)
		require.Zero(t, sim.Stats().Logins[OpAppAuth])
	})
}

func TestAccountAuth(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	login := func(account, password string) answer {
		req := b.newRequest(t, http.MethodPost, "/v1/usg/acs/auth/account", nil, fmt.Sprintf(`{"account":%q,"clientType":72}`, account))
		req.SetBasicAuth(account, password)
		return b.roundTrip(t, req)
	}
	a := login(b.creds.Account, b.creds.Password)
	require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	var out accessTokenBody
	a.decode(t, &out)
	require.Equal(t, http.StatusOK, b.meeting(t, http.MethodGet, "/v1/mmc/management/conferences/confDetail?conferenceID="+DemoConfOngoing, out.AccessToken, "").status)

	a = login(b.creds.Account, "wrong")
	require.Equal(t, http.StatusUnauthorized, a.status)
	require.Equal(t, "USG.000010006", a.errorCode())
	require.NotEmpty(t, a.header.Get("X-Request-Id"))
	require.Contains(t, string(a.body), `"request_id":"`+a.header.Get("X-Request-Id")+`"`)

	require.Equal(t, http.StatusBadRequest, b.send(t, http.MethodPost, "/v1/usg/acs/auth/account", nil, `{}`).status)
	require.Equal(t, 1, sim.Stats().Logins[OpAccountAuth])
}

func TestAccessToken(t *testing.T) {
	t.Parallel()

	t.Run("Expiry", func(t *testing.T) {
		t.Parallel()
		sim, b := setup(t)
		sim.SetTokenTTLs(TokenTTLs{Access: 10 * time.Minute})
		tok := b.accessToken(t)
		path := "/v1/mmc/management/conferences/confDetail?conferenceID=" + DemoConfOngoing
		require.Equal(t, http.StatusOK, b.meeting(t, http.MethodGet, path, tok, "").status)

		b.clock.Advance(10 * time.Minute)
		a := b.meeting(t, http.MethodGet, path, tok, "")
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.Equal(t, "USG.000000004", a.errorCode())
		require.Contains(t, string(a.body), `"error_msg":"token invalid or expired"`)

		a = b.send(t, http.MethodGet, path, nil, "")
		require.Equal(t, http.StatusUnauthorized, a.status, "missing token")
		require.Equal(t, "USG.000000004", a.errorCode())
	})

	t.Run("AtMost64PerUser", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		first := b.accessToken(t)
		for range maxTokensPerUser - 1 {
			b.accessToken(t)
		}
		path := "/v1/mmc/management/conferences/confDetail?conferenceID=" + DemoConfOngoing
		require.Equal(t, http.StatusOK, b.meeting(t, http.MethodGet, path, first, "").status)
		b.accessToken(t) // the 65th revokes the oldest
		require.Equal(t, http.StatusUnauthorized, b.meeting(t, http.MethodGet, path, first, "").status)
	})
}

func TestCancel(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	tok := b.accessToken(t)
	cancel := func(query string) answer {
		return b.meeting(t, http.MethodDelete, "/v1/mmc/management/conferences?"+query, tok, "")
	}

	a := cancel("conferenceID=" + DemoConfScheduled)
	require.Equal(t, http.StatusOK, a.status)
	require.Empty(t, a.body)
	c, _ := sim.Conference(DemoConfScheduled)
	require.Equal(t, ConfCancelled, c.State)

	for _, tt := range []struct{ query, code string }{
		{"conferenceID=" + DemoConfScheduled, "MMC.111072006"},
		{"conferenceID=" + DemoConfEnded, "MMC.111072006"},
		{"conferenceID=" + DemoConfCancelled, "MMC.111072006"},
		{"conferenceID=" + DemoConfMissing, "MMC.111070005"},
		{"conferenceID=" + DemoConfOngoing, "MMC.111072012"},
		{"conferenceID=" + DemoConfOngoing + "&type=0", "MMC.111072012"},
		{"conferenceID=" + DemoConfOngoing + "&type=x", "MMC.111070001"},
		{"conferenceID=", "MMC.111070001"},
	} {
		a := cancel(tt.query)
		require.Equal(t, http.StatusBadRequest, a.status, tt.query)
		require.Equal(t, tt.code, a.errorCode(), tt.query)
		require.Contains(t, string(a.body), `"request_id"`, tt.query)
	}

	a = cancel("conferenceID=" + DemoConfOngoing + "&type=1&userUUID=u-1")
	require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	c, _ = sim.Conference(DemoConfOngoing)
	require.Equal(t, ConfEnded, c.State)
	require.Empty(t, c.Participants)

	require.NoError(t, sim.AddConference(Conference{ID: "owned", UserUUID: "owner"}))
	a = cancel("conferenceID=owned&userUUID=someone-else")
	require.Equal(t, http.StatusBadRequest, a.status)
	require.Equal(t, "MMC.111070010", a.errorCode())
	require.Equal(t, http.StatusOK, cancel("conferenceID=owned&userUUID=owner").status)

	st := sim.Stats()
	require.Equal(t, 1, st.Effect("cancel:"+DemoConfScheduled))
	require.Equal(t, 1, st.Effect("cancel:"+DemoConfOngoing))
	require.Equal(t, 3, st.EffectsOf(OpCancel))
}

func TestConfDetail(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	tok := b.accessToken(t)
	detail := func(id string) answer {
		return b.meeting(t, http.MethodGet, "/v1/mmc/management/conferences/confDetail?conferenceID="+id, tok, "")
	}
	for id, state := range map[string]string{DemoConfScheduled: "Schedule", DemoConfOngoing: "Created", DemoConfEnded: "Destroyed"} {
		a := detail(id)
		require.Equal(t, http.StatusOK, a.status, id)
		var out confDetailBody
		a.decode(t, &out)
		require.Equal(t, id, out.ConferenceData.ConferenceID)
		require.Equal(t, state, out.ConferenceData.ConferenceState)
		require.Equal(t, []passwordEntry{{"chair", DemoChairPassword}, {"general", DemoGuestPassword}}, out.ConferenceData.PasswordEntry)
	}
	var out confDetailBody
	detail(DemoConfOngoing).decode(t, &out)
	require.Equal(t, 10, out.Data.Count)
	require.Equal(t, 20, out.Data.Limit)
	require.Len(t, out.Data.Data, 10)
	require.Equal(t, participant{ParticipantID: "p-001", Role: 0, State: "MEETTING"}, out.Data.Data[0])
	// role is an integer on the wire, as the SDK's ParticipantInfo decodes it.
	require.Contains(t, string(detail(DemoConfOngoing).body), `{"participantID":"p-001","role":0,"state":"MEETTING"}`)

	a := detail(DemoConfMissing)
	require.Equal(t, http.StatusBadRequest, a.status)
	require.Equal(t, "MMC.111070005", a.errorCode())

	t.Run("Paging", func(t *testing.T) {
		for _, tt := range []struct {
			query                string
			offset, limit, count int
			first                string
			participants         int
		}{
			{"&offset=3&limit=4", 3, 4, 10, "p-004", 4},
			{"&offset=8&limit=4", 8, 4, 10, "p-009", 2},
			{"&offset=10", 10, 20, 10, "", 0},
			{"&limit=0", 0, 20, 10, "p-001", 10},
			{"&searchKey=p-01", 0, 20, 1, "p-010", 1},
			{"&searchKey=00&offset=1&limit=2", 1, 2, 9, "p-002", 2},
		} {
			var out confDetailBody
			detail(DemoConfOngoing+tt.query).decode(t, &out)
			require.Equal(t, tt.offset, out.Data.Offset, tt.query)
			require.Equal(t, tt.limit, out.Data.Limit, tt.query)
			require.Equal(t, tt.count, out.Data.Count, tt.query)
			require.Len(t, out.Data.Data, tt.participants, tt.query)
			if tt.first != "" {
				require.Equal(t, tt.first, out.Data.Data[0].ParticipantID, tt.query)
			}
		}
		for _, q := range []string{"&offset=-1", "&limit=x", "&offset=99999999999"} {
			a := detail(DemoConfOngoing + q)
			require.Equal(t, http.StatusBadRequest, a.status, q)
			require.Equal(t, "MMC.111070001", a.errorCode(), q)
		}
	})
}

func TestControlToken(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	get := func(conf, password, loginType string) answer {
		return b.send(t, http.MethodGet, "/v1/mmc/control/conferences/token?conferenceID="+conf,
			http.Header{"X-Password": {password}, "X-Login-Type": {loginType}}, "")
	}
	a := get(DemoConfOngoing, DemoChairPassword, "1")
	require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	var out controlTokenBody
	a.decode(t, &out)
	require.NotEmpty(t, out.Data.Token)
	require.Equal(t, testStart.Add(DefaultControlTTL).UnixMilli(), out.Data.ExpireTime)
	require.Equal(t, int64(1800), out.Data.ConfTokenExpireTime)
	require.Equal(t, 1, out.Data.Role, "the chair password logs in as host")

	for _, tt := range []struct {
		conf, password, loginType, code string
	}{
		{DemoConfOngoing, DemoGuestPassword, "1", "MMC.111072065"},
		{DemoConfMissing, DemoChairPassword, "1", "MMC.111072065"},
		{DemoConfScheduled, DemoChairPassword, "1", "MMC.111072005"},
		{DemoConfEnded, DemoChairPassword, "1", "MMC.111072006"},
		{DemoConfOngoing, DemoChairPassword, "0", "MMC.111070001"},
		{DemoConfOngoing, "", "1", "MMC.111070001"},
	} {
		a := get(tt.conf, tt.password, tt.loginType)
		require.Equal(t, http.StatusBadRequest, a.status, "%+v", tt)
		require.Equal(t, tt.code, a.errorCode(), "%+v", tt)
	}

	t.Run("KeepAlive", func(t *testing.T) {
		// The SDK's CreateConfTokenRequest: a valid control token in
		// X-Conference-Authorization renews it, the host password unchecked;
		// an invalid or expired one needs the password again.
		renew := func(conf, token, password string) answer {
			return b.send(t, http.MethodGet, "/v1/mmc/control/conferences/token?conferenceID="+conf,
				http.Header{"X-Conference-Authorization": {token}, "X-Password": {password}, "X-Login-Type": {"1"}}, "")
		}
		tok := b.controlToken(t, DemoConfOngoing)
		for _, password := range []string{"", "wrong"} {
			a := renew(DemoConfOngoing, tok, password)
			require.Equal(t, http.StatusOK, a.status, "password %q: %s", password, a.body)
			var out controlTokenBody
			a.decode(t, &out)
			require.NotEqual(t, tok, out.Data.Token)
			require.Equal(t, http.StatusOK, b.hangup(t, DemoConfOngoing, out.Data.Token, `{"bulkHangUpParticipants":["p-009"]}`).status)
		}

		a := renew(DemoConfOngoing, "stb-not-a-token", "")
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.Equal(t, "MMC.111070004", a.errorCode())
		a = renew(DemoConfOngoing2, tok, "") // another meeting's token
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.Equal(t, "MMC.111070004", a.errorCode())
		a = renew(DemoConfOngoing2, tok, "wrong")
		require.Equal(t, http.StatusBadRequest, a.status)
		require.Equal(t, "MMC.111072065", a.errorCode())
		require.Equal(t, http.StatusOK, renew(DemoConfOngoing, "stb-not-a-token", DemoChairPassword).status, "falls back to the password")

		b.clock.Advance(DefaultControlTTL)
		a = renew(DemoConfOngoing, tok, "")
		require.Equal(t, http.StatusUnauthorized, a.status, "an expired token does not renew")
	})
}

func TestHangup(t *testing.T) {
	t.Parallel()

	t.Run("Participants", func(t *testing.T) {
		t.Parallel()
		sim, b := setup(t)
		tok := b.controlToken(t, DemoConfOngoing)
		a := b.hangup(t, DemoConfOngoing, tok, `{"bulkHangUpParticipants":["p-001","p-002","never-joined"]}`)
		require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
		require.Empty(t, a.body)

		// Participants who already left: still 200, no new effect.
		a = b.hangup(t, DemoConfOngoing, tok, `{"bulkHangUpParticipants":["p-001"]}`)
		require.Equal(t, http.StatusOK, a.status)

		st := sim.Stats()
		require.Equal(t, 1, st.Effect("hangup:"+DemoConfOngoing+"/p-001"))
		require.Equal(t, 1, st.Effect("hangup:"+DemoConfOngoing+"/p-002"))
		require.Zero(t, st.Effect("hangup:"+DemoConfOngoing+"/never-joined"))
		c, _ := sim.Conference(DemoConfOngoing)
		require.Len(t, c.Participants, 8)
	})

	t.Run("Body", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		tok := b.controlToken(t, DemoConfOngoing)
		many := make([]string, maxHangUp+1)
		for i := range many {
			many[i] = fmt.Sprintf("p-%d", i)
		}
		for name, body := range map[string]string{
			"unknown field": `{"bulkHangUpParticipants":["p-001"],"extra":1}`,
			"empty list":    `{"bulkHangUpParticipants":[]}`,
			"missing list":  `{}`,
			"empty ID":      `{"bulkHangUpParticipants":[""]}`,
			"not strings":   `{"bulkHangUpParticipants":[1]}`,
			"array":         `["p-001"]`,
			"trailing":      `{"bulkHangUpParticipants":["p-001"]} {}`,
			"too many":      jsonBody(t, hangUpRequest{BulkHangUpParticipants: many}),
		} {
			a := b.hangup(t, DemoConfOngoing, tok, body)
			require.Equal(t, http.StatusBadRequest, a.status, name)
			require.Equal(t, "MMC.111070001", a.errorCode(), name)
		}
		a := b.hangup(t, DemoConfOngoing, tok, jsonBody(t, hangUpRequest{BulkHangUpParticipants: many[:maxHangUp]}))
		require.Equal(t, http.StatusOK, a.status, "500 participants")
	})

	t.Run("ControlToken", func(t *testing.T) {
		t.Parallel()
		sim, b := setup(t)
		body := `{"bulkHangUpParticipants":["p-101"]}`
		a := b.hangup(t, DemoConfOngoing2, "", body)
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.Equal(t, "MMC.111070111", a.errorCode())

		other := b.controlToken(t, DemoConfOngoing)
		a = b.hangup(t, DemoConfOngoing2, other, body)
		require.Equal(t, http.StatusUnauthorized, a.status, "another conference's token")
		require.Equal(t, "MMC.111070004", a.errorCode())

		tok := b.controlToken(t, DemoConfOngoing2)
		b.clock.Advance(DefaultControlTTL)
		a = b.hangup(t, DemoConfOngoing2, tok, body)
		require.Equal(t, http.StatusUnauthorized, a.status, "expired")
		require.Equal(t, "MMC.111070004", a.errorCode())

		tok = b.controlToken(t, DemoConfOngoing2)
		require.NoError(t, sim.SetConferenceState(DemoConfOngoing2, ConfEnded))
		a = b.hangup(t, DemoConfOngoing2, tok, body)
		require.Equal(t, http.StatusBadRequest, a.status, "ended")
		require.Equal(t, "MMC.111072006", a.errorCode())
	})
}

func TestReclaim(t *testing.T) {
	t.Parallel()

	t.Run("Assigned", func(t *testing.T) {
		t.Parallel()
		sim, b := setup(t)
		tok := b.accessToken(t)
		path := "/v1/usg/dcs/corp/vmr/recycle-from-member/" + DemoVMRAccount + "?accountType=0"
		a := b.meeting(t, http.MethodPost, path, tok, `["vmr-alice-1","vmr-alice-2"]`)
		require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
		_, _, ok := sim.VMROwner("vmr-alice-1")
		require.False(t, ok)

		a = b.meeting(t, http.MethodPost, path, tok, `["vmr-alice-1"]`)
		require.Equal(t, http.StatusBadRequest, a.status, "reclaimed twice")
		require.Equal(t, "MMC.111070006", a.errorCode())

		// Third-party user IDs need accountType=1.
		bob := "/v1/usg/dcs/corp/vmr/recycle-from-member/" + DemoVMRThirdParty
		require.Equal(t, "MMC.111070006", b.meeting(t, http.MethodPost, bob, tok, `["vmr-bob-1"]`).errorCode())
		require.Equal(t, http.StatusOK, b.meeting(t, http.MethodPost, bob+"?accountType=1", tok, `["vmr-bob-1"]`).status)

		st := sim.Stats()
		require.Equal(t, 1, st.Effect("reclaim:member-alice/vmr-alice-1"))
		require.Equal(t, 3, st.EffectsOf(OpReclaim))
	})

	t.Run("AllOrNothing", func(t *testing.T) {
		t.Parallel()
		sim, b := setup(t)
		a := b.meeting(t, http.MethodPost, "/v1/usg/dcs/corp/vmr/recycle-from-member/"+DemoVMRAccount, b.accessToken(t),
			`["vmr-alice-3","`+DemoVMRUnassigned+`"]`)
		require.Equal(t, http.StatusBadRequest, a.status)
		require.Equal(t, "MMC.111070006", a.errorCode())
		account, _, ok := sim.VMROwner("vmr-alice-3")
		require.True(t, ok)
		require.Equal(t, DemoVMRAccount, account)
	})

	t.Run("Body", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		tok := b.accessToken(t)
		path := "/v1/usg/dcs/corp/vmr/recycle-from-member/" + DemoVMRAccount
		many := make([]string, maxReclaim+1)
		for i := range many {
			many[i] = "vmr-alice-1"
		}
		for name, tt := range map[string]struct{ query, body string }{
			"object":       {"", `{"vmrIds":["vmr-alice-1"]}`},
			"empty":        {"", `[]`},
			"empty ID":     {"", `[""]`},
			"too many":     {"", jsonBody(t, many)},
			"bad type":     {"?accountType=2", `["vmr-alice-1"]`},
			"not a number": {"?accountType=x", `["vmr-alice-1"]`},
		} {
			a := b.meeting(t, http.MethodPost, path+tt.query, tok, tt.body)
			require.Equal(t, http.StatusBadRequest, a.status, name)
			require.Equal(t, "USG.000000001", a.errorCode(), name)
		}
	})
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	a := b.send(t, http.MethodGet, "/v1/mmc/management/conferences/confDetail?conferenceID=1", http.Header{"X-Request-Id": {"my-id"}}, "")
	require.Equal(t, "my-id", a.header.Get("X-Request-Id"))
	require.Contains(t, string(a.body), `"request_id":"my-id"`)

	a = b.send(t, http.MethodPost, "/v2/apps/demo-app/disable", nil, "")
	require.Len(t, a.header.Get("X-Request-Id"), 32)
	require.NotContains(t, string(a.body), "request_id", "RTC bodies carry no request_id")

	a = b.send(t, http.MethodGet, "/v2/apps/demo-app/disable", nil, "")
	require.Equal(t, http.StatusNotFound, a.status, "wrong method")
	require.Equal(t, "APIG.0101", a.errorCode())
	require.NotEmpty(t, a.header.Get("X-Request-Id"))
}
