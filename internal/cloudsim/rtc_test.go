package cloudsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDismiss(t *testing.T) {
	t.Parallel()

	t.Run("RoomGoneAfterwards", func(t *testing.T) {
		t.Parallel()
		sim, b := setup(t)
		tok := b.iamToken(t)

		a := b.rtc(t, "/v2/apps/demo-app/rooms/room-001/dismiss", tok)
		require.Equal(t, http.StatusAccepted, a.status)
		require.Empty(t, a.body)
		require.False(t, sim.RoomExists(DemoApp, "room-001"))

		a = b.rtc(t, "/v2/apps/demo-app/rooms/room-001/dismiss", tok)
		require.Equal(t, http.StatusNotFound, a.status)
		require.JSONEq(t, `{"error_code":"RTC.00001003","error_msg":"InvalidParameterValue"}`, string(a.body))

		st := sim.Stats()
		require.Equal(t, 1, st.Effect("dismiss:demo-app/room-001"))
		require.Equal(t, 2, st.Count(OpDismiss))
		require.Equal(t, 1, st.CountStatus(OpDismiss, "202"))
		require.Equal(t, 1, st.CountStatus(OpDismiss, "404"))
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		tok := b.iamToken(t)
		for _, tt := range []struct {
			path   string
			status int
			code   string
		}{
			{"/v2/apps/demo-app-missing/rooms/room-001/dismiss", http.StatusNotFound, "RTC.00001003"},
			{"/v2/apps/demo-app/rooms/room-404/dismiss", http.StatusNotFound, "RTC.00001003"},
			{"/v2/apps/demo-app-disabled/rooms/room-001/dismiss", http.StatusBadRequest, "RTC.00001016"},
		} {
			a := b.rtc(t, tt.path, tok)
			require.Equal(t, tt.status, a.status, tt.path)
			require.Equal(t, tt.code, a.errorCode(), tt.path)
		}
	})

	t.Run("AutoRooms", func(t *testing.T) {
		t.Parallel()
		sim, b := setup(t)
		tok := b.iamToken(t)
		for _, room := range []string{"r-1", "r-2", "any thing"} {
			a := b.rtc(t, "/v2/apps/demo-app-bulk/rooms/"+url.PathEscape(room)+"/dismiss", tok)
			require.Equal(t, http.StatusAccepted, a.status, room)
		}
		a := b.rtc(t, "/v2/apps/demo-app-bulk/rooms/r-1/dismiss", tok)
		require.Equal(t, http.StatusNotFound, a.status)
		require.Equal(t, 1, sim.Stats().Effect("dismiss:demo-app-bulk/any thing"))

		app, ok := sim.App(DemoAppBulk)
		require.True(t, ok)
		require.Equal(t, []string{"any thing", "r-1", "r-2"}, app.DismissedRooms)

		require.NoError(t, sim.AddRoom(DemoAppBulk, "r-1"))
		require.True(t, sim.RoomExists(DemoAppBulk, "r-1"))
	})

	t.Run("EscapedSegments", func(t *testing.T) {
		t.Parallel()
		sim, b := setup(t)
		const appID, roomID = "team/a?b c", "room/1#x"
		require.NoError(t, sim.AddApp(App{ID: appID, Rooms: []string{roomID}}))

		path := "/v2/apps/" + url.PathEscape(appID) + "/rooms/" + url.PathEscape(roomID) + "/dismiss"
		a := b.signed(t, path, "")
		require.Equal(t, http.StatusAccepted, a.status, "body: %s", a.body)
		require.Equal(t, 1, sim.Stats().Effect("dismiss:"+appID+"/"+roomID))

		// Unescaped, the same IDs are other segments: no such API.
		a = b.rtc(t, "/v2/apps/team/a/rooms/x/dismiss", b.iamToken(t))
		require.Equal(t, http.StatusNotFound, a.status)
		require.Equal(t, "APIG.0101", a.errorCode())
	})
}

func TestDisable(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	tok := b.iamToken(t)

	a := b.rtc(t, "/v2/apps/demo-app-2/disable", tok)
	require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	require.JSONEq(t, `{"app_id":"demo-app-2","state":{"state":"DEACTIVATION","update_time":"2030-01-06T09:00:00.000Z"}}`, string(a.body))
	app, _ := sim.App(DemoApp2)
	require.Equal(t, AppDeactivation, app.State)

	a = b.rtc(t, "/v2/apps/demo-app-2/disable", tok)
	require.Equal(t, http.StatusBadRequest, a.status)
	require.JSONEq(t, `{"error_code":"RTC.00001016","error_msg":"AppDeactivation"}`, string(a.body))

	a = b.rtc(t, "/v2/apps/demo-app-missing/disable", tok)
	require.Equal(t, http.StatusNotFound, a.status)
	require.Equal(t, "RTC.00001003", a.errorCode())

	// A disabled app's rooms can no longer be dismissed.
	a = b.rtc(t, "/v2/apps/demo-app-2/rooms/room-001/dismiss", tok)
	require.Equal(t, http.StatusBadRequest, a.status)
	require.Equal(t, "RTC.00001016", a.errorCode())

	require.Equal(t, 1, sim.Stats().Effect("disable:demo-app-2"))
}

// handSigned builds the SDK-HMAC-SHA256 headers of a body-less POST by hand,
// following the published signing algorithm, independently of package
// apiclient.
func handSigned(b *testBundle, path string, sk string, date time.Time) http.Header {
	host := strings.TrimPrefix(b.srv.URL, "http://")
	sdkDate := date.UTC().Format("20060102T150405Z")
	emptyHash := sha256.Sum256(nil)
	canonical := "POST\n" + path + "/\n\n" +
		"host:" + host + "\n" +
		"x-project-id:" + b.creds.ProjectID + "\n" +
		"x-sdk-date:" + sdkDate + "\n\n" +
		"host;x-project-id;x-sdk-date\n" +
		hex.EncodeToString(emptyHash[:])
	crHash := sha256.Sum256([]byte(canonical))
	sts := "SDK-HMAC-SHA256\n" + sdkDate + "\n" + hex.EncodeToString(crHash[:])
	m := hmac.New(sha256.New, []byte(sk))
	m.Write([]byte(sts))
	return http.Header{
		"X-Project-Id":  {b.creds.ProjectID},
		"X-Sdk-Date":    {sdkDate},
		"Authorization": {"SDK-HMAC-SHA256 Access=" + b.creds.AK + ", SignedHeaders=host;x-project-id;x-sdk-date, Signature=" + hex.EncodeToString(m.Sum(nil))},
	}
}

// sdkSigned builds the headers the official Go SDK sends on a body-less RTC
// POST: it signs user-agent;x-project-id;x-sdk-date and never host (it does
// not set Host itself), and sends Content-Type unsigned.
func sdkSigned(b *testBundle, path string, sk string, date time.Time) http.Header {
	const userAgent = "huaweicloud-usdk-go/3.0"
	sdkDate := date.UTC().Format("20060102T150405Z")
	emptyHash := sha256.Sum256(nil)
	canonical := "POST\n" + path + "/\n\n" +
		"user-agent:" + userAgent + "\n" +
		"x-project-id:" + b.creds.ProjectID + "\n" +
		"x-sdk-date:" + sdkDate + "\n\n" +
		"user-agent;x-project-id;x-sdk-date\n" +
		hex.EncodeToString(emptyHash[:])
	crHash := sha256.Sum256([]byte(canonical))
	sts := "SDK-HMAC-SHA256\n" + sdkDate + "\n" + hex.EncodeToString(crHash[:])
	m := hmac.New(sha256.New, []byte(sk))
	m.Write([]byte(sts))
	return http.Header{
		"Content-Type":  {"application/json"},
		"User-Agent":    {userAgent},
		"X-Project-Id":  {b.creds.ProjectID},
		"X-Sdk-Date":    {sdkDate},
		"Authorization": {"SDK-HMAC-SHA256 Access=" + b.creds.AK + ", SignedHeaders=user-agent;x-project-id;x-sdk-date, Signature=" + hex.EncodeToString(m.Sum(nil))},
	}
}

func TestRTCAuth(t *testing.T) {
	t.Parallel()

	t.Run("HandBuiltSignature", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		a := b.send(t, http.MethodPost, "/v2/apps/demo-app-2/disable", handSigned(b, "/v2/apps/demo-app-2/disable", b.creds.SK, b.clock.Now()), "")
		require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	})

	t.Run("SignedAsTheSDKDoesWithoutHost", func(t *testing.T) {
		t.Parallel()
		sim, b := setup(t)
		a := b.send(t, http.MethodPost, "/v2/apps/demo-app/rooms/room-001/dismiss",
			sdkSigned(b, "/v2/apps/demo-app/rooms/room-001/dismiss", b.creds.SK, b.clock.Now()), "")
		require.Equal(t, http.StatusAccepted, a.status, "body: %s", a.body)
		a = b.send(t, http.MethodPost, "/v2/apps/demo-app-2/disable", sdkSigned(b, "/v2/apps/demo-app-2/disable", b.creds.SK, b.clock.Now()), "")
		require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
		require.Equal(t, 1, sim.Stats().Effect("disable:demo-app-2"))

		// Still refused: a wrong key, a stale date, an unknown AK, a
		// signed set without x-sdk-date.
		for name, h := range map[string]http.Header{
			"WrongSK":    sdkSigned(b, "/v2/apps/demo-app/disable", "wrong-sk", b.clock.Now()),
			"StaleDate":  sdkSigned(b, "/v2/apps/demo-app/disable", b.creds.SK, b.clock.Now().Add(-16*time.Minute)),
			"UnknownAK":  replaceHeader(sdkSigned(b, "/v2/apps/demo-app/disable", b.creds.SK, b.clock.Now()), "Authorization", "Access="+b.creds.AK, "Access=SOMEONEELSE"),
			"DateNotSig": replaceHeader(sdkSigned(b, "/v2/apps/demo-app/disable", b.creds.SK, b.clock.Now()), "Authorization", ";x-sdk-date,", ","),
		} {
			a := b.send(t, http.MethodPost, "/v2/apps/demo-app/disable", h, "")
			require.Equal(t, http.StatusUnauthorized, a.status, name)
			require.Equal(t, "APIG.0301", a.errorCode(), name)
		}
		app, _ := sim.App(DemoApp)
		require.Equal(t, AppActivation, app.State)
	})

	t.Run("Tampered", func(t *testing.T) {
		t.Parallel()
		sim, b := setup(t)
		// Signed for one path, sent to another.
		h := handSigned(b, "/v2/apps/demo-app-2/disable", b.creds.SK, b.clock.Now())
		a := b.send(t, http.MethodPost, "/v2/apps/demo-app/disable", h, "")
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.JSONEq(t, `{"error_code":"APIG.0301","error_msg":"Incorrect IAM authentication information: verify aksk signature fail"}`, string(a.body))
		// Signed with another key.
		a = b.send(t, http.MethodPost, "/v2/apps/demo-app/disable", handSigned(b, "/v2/apps/demo-app/disable", "wrong-sk", b.clock.Now()), "")
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.Equal(t, "APIG.0301", a.errorCode())
		// A body the signature does not cover.
		req := b.newRequest(t, http.MethodPost, "/v2/apps/demo-app/disable", handSigned(b, "/v2/apps/demo-app/disable", b.creds.SK, b.clock.Now()), `{"x":1}`)
		require.Equal(t, http.StatusUnauthorized, b.roundTrip(t, req).status)

		app, _ := sim.App(DemoApp)
		require.Equal(t, AppActivation, app.State)
	})

	t.Run("ClockSkew", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		h := handSigned(b, "/v2/apps/demo-app-2/disable", b.creds.SK, b.clock.Now().Add(-16*time.Minute))
		a := b.send(t, http.MethodPost, "/v2/apps/demo-app-2/disable", h, "")
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.Equal(t, "APIG.0301", a.errorCode())
		require.Contains(t, string(a.body), "x-sdk-date expired")

		h = handSigned(b, "/v2/apps/demo-app-2/disable", b.creds.SK, b.clock.Now().Add(14*time.Minute))
		require.Equal(t, http.StatusOK, b.send(t, http.MethodPost, "/v2/apps/demo-app-2/disable", h, "").status)
	})

	t.Run("WrongProject", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		b.creds.ProjectID = "another-project"
		a := b.send(t, http.MethodPost, "/v2/apps/demo-app-2/disable", handSigned(b, "/v2/apps/demo-app-2/disable", b.creds.SK, b.clock.Now()), "")
		require.Equal(t, http.StatusBadRequest, a.status)
		require.Equal(t, "RTC.00001001", a.errorCode())
	})

	t.Run("LockOut", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		for range akMaxFailures {
			a := b.send(t, http.MethodPost, "/v2/apps/demo-app-2/disable", handSigned(b, "/v2/apps/demo-app-2/disable", "wrong-sk", b.clock.Now()), "")
			require.Equal(t, http.StatusUnauthorized, a.status)
		}
		a := b.signed(t, "/v2/apps/demo-app-2/disable", "")
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.Contains(t, string(a.body), "locked")

		b.clock.Advance(akLockFor)
		require.Equal(t, http.StatusOK, b.signed(t, "/v2/apps/demo-app-2/disable", "").status)
	})

	t.Run("Tokens", func(t *testing.T) {
		t.Parallel()
		sim, b := setup(t)
		a := b.send(t, http.MethodPost, "/v2/apps/demo-app-2/disable", nil, "")
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.Equal(t, "APIG.0301", a.errorCode())

		a = b.rtc(t, "/v2/apps/demo-app-2/disable", "not-a-token")
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.JSONEq(t, `{"error_code":"APIG.0307","error_msg":"The token must be updated."}`, string(a.body))

		sim.SetTokenTTLs(TokenTTLs{IAM: time.Minute})
		tok := b.iamToken(t)
		b.clock.Advance(time.Minute)
		a = b.rtc(t, "/v2/apps/demo-app-2/disable", tok)
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.Equal(t, "APIG.0307", a.errorCode())

		tok = b.iamToken(t)
		sim.RevokeTokens()
		require.Equal(t, http.StatusUnauthorized, b.rtc(t, "/v2/apps/demo-app-2/disable", tok).status)
		require.Equal(t, 2, sim.Stats().Logins[OpIAMToken])
	})
}

func TestIAMToken(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	c := b.creds

	a := b.send(t, http.MethodPost, "/v3/auth/tokens", nil, iamBody(c.IAMUser, c.IAMPassword, c.IAMDomain, c.IAMProjectID))
	require.Equal(t, http.StatusCreated, a.status)
	require.NotEmpty(t, a.header.Get("X-Subject-Token"))
	var out struct {
		Token struct {
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"token"`
	}
	a.decode(t, &out)
	require.Equal(t, testStart.Add(DefaultIAMTTL), out.Token.ExpiresAt)

	for name, body := range map[string]string{
		"password": iamBody(c.IAMUser, "wrong", c.IAMDomain, c.IAMProjectID),
		"user":     iamBody("someone", c.IAMPassword, c.IAMDomain, c.IAMProjectID),
		"domain":   iamBody(c.IAMUser, c.IAMPassword, "other", c.IAMProjectID),
		"project":  iamBody(c.IAMUser, c.IAMPassword, c.IAMDomain, "other"),
	} {
		a := b.send(t, http.MethodPost, "/v3/auth/tokens", nil, body)
		require.Equal(t, http.StatusUnauthorized, a.status, name)
		require.Empty(t, a.header.Get("X-Subject-Token"), name)
	}

	a = b.send(t, http.MethodPost, "/v3/auth/tokens", nil, `{"auth":`)
	require.Equal(t, http.StatusBadRequest, a.status)
	a = b.send(t, http.MethodPost, "/v3/auth/tokens", nil, `{"auth":{}}`)
	require.Equal(t, http.StatusBadRequest, a.status)
}

// replaceHeader replaces the first old in h's key header by new.
func replaceHeader(h http.Header, key, old, new string) http.Header {
	h.Set(key, strings.Replace(h.Get(key), old, new, 1))
	return h
}
