package apiclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNew(t *testing.T) {
	t.Parallel()

	t.Run("RejectsHalfSetModesNamingFields", func(t *testing.T) {
		t.Parallel()
		for name, tc := range map[string]struct {
			cfg   Config
			names []string
		}{
			"AKWithoutSK":            {Config{RTCAK: "ak", RTCProjectID: "p"}, []string{"RTCSK"}},
			"AKWithoutProject":       {Config{RTCAK: "ak", RTCSK: "sk"}, []string{"RTCProjectID"}},
			"SKWithoutAK":            {Config{RTCSK: "sk"}, []string{"RTCSK", "RTCAK"}},
			"IAMUserOnly":            {Config{IAMUser: "u"}, []string{"IAMPassword", "IAMDomain", "IAMProjectID", "IAMEndpoint"}},
			"IAMPasswordWithoutUser": {Config{IAMPassword: "pw"}, []string{"IAMPassword", "IAMUser"}},
			"AppIDWithoutKey":        {Config{MeetingAppID: "app"}, []string{"MeetingAppKey"}},
			"AppKeyWithoutID":        {Config{MeetingAppKey: "key"}, []string{"MeetingAppKey", "MeetingAppID"}},
			"UserIDWithoutAppID":     {Config{MeetingUserID: "u"}, []string{"MeetingUserID", "MeetingAppID"}},
			"AccountWithoutPassword": {Config{MeetingAccount: "acc"}, []string{"MeetingPassword"}},
			"PasswordWithoutAccount": {Config{MeetingPassword: "pw"}, []string{"MeetingPassword", "MeetingAccount"}},
			"BadEndpoint":            {Config{RTCEndpoint: "ftp://x"}, []string{"RTCEndpoint"}},
			"EndpointWithQuery":      {Config{MeetingEndpoint: "https://x/?a=b"}, []string{"MeetingEndpoint"}},
			"UnparsableEndpoint":     {Config{IAMEndpoint: "http://[::1"}, []string{"IAMEndpoint"}},
			"NegativeTimeout":        {Config{Timeout: -time.Second}, []string{"Timeout"}},
			"HalfIAMBesideAKSK":      {Config{RTCAK: "ak", RTCSK: "sk", RTCProjectID: "p", IAMPassword: "pw"}, []string{"IAMPassword", "IAMUser"}},
			"AppKeyBesideAccount":    {Config{MeetingAccount: "a", MeetingPassword: "p", MeetingAppKey: "key"}, []string{"MeetingAppKey", "MeetingAppID"}},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				client, err := New(tc.cfg)
				require.Error(t, err)
				require.Nil(t, client)
				for _, n := range tc.names {
					require.Contains(t, err.Error(), n)
				}
				require.NotContains(t, err.Error(), "sk")
				require.NotContains(t, err.Error(), "pw")
			})
		}
	})

	t.Run("ReportsEveryProblemOnItsOwnLine", func(t *testing.T) {
		t.Parallel()
		_, err := New(Config{RTCAK: "ak", MeetingAppID: "app", Timeout: -1})
		require.Error(t, err)
		require.Len(t, strings.Split(err.Error(), "\n"), 3)
	})

	t.Run("AcceptsEachModeAndNone", func(t *testing.T) {
		t.Parallel()
		for _, cfg := range []Config{
			{},
			{RTCEndpoint: "http://127.0.0.1:1", IAMEndpoint: "http://127.0.0.1:2/iam", MeetingEndpoint: "http://127.0.0.1:3"},
			{RTCAK: "ak", RTCSK: "sk", RTCProjectID: "p", IAMUser: "u", IAMPassword: "p", IAMDomain: "d", IAMProjectID: "p", IAMEndpoint: "https://iam.example"},
			{IAMUser: "u", IAMPassword: "p", IAMDomain: "d", IAMProjectID: "p", IAMEndpoint: "https://iam.example"},
			{MeetingAppID: "a", MeetingAppKey: "k", MeetingUserID: "u", MeetingCorpID: "c"},
			{MeetingAccount: "a", MeetingPassword: "p"},
			{MeetingAppID: "a", MeetingAppKey: "k", MeetingAccount: "a", MeetingPassword: "p"},
		} {
			_, err := New(cfg)
			require.NoError(t, err)
		}
	})

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		client, err := New(Config{})
		require.NoError(t, err)
		require.Equal(t, DefaultRTCEndpoint, client.rtcBase.String())
		require.Equal(t, DefaultMeetingEndpoint, client.meetingBase.String())
		require.Equal(t, DefaultTimeout, client.cfg.Timeout)
		require.Equal(t, "meetops/dev", client.userAgent)
		require.Equal(t, 256, client.hc.Transport.(*http.Transport).MaxIdleConnsPerHost)
		require.NotNil(t, client.cfg.Now)
	})

	t.Run("OwnHTTPClientIsNotModified", func(t *testing.T) {
		t.Parallel()
		hc := &http.Client{Timeout: time.Minute}
		client, err := New(Config{HTTPClient: hc})
		require.NoError(t, err)
		require.Nil(t, hc.CheckRedirect)
		require.NotNil(t, client.hc.CheckRedirect)
		require.Equal(t, time.Minute, client.hc.Timeout)
	})
}

func TestNotConfigured(t *testing.T) {
	t.Parallel()

	client, err := New(Config{})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = client.DismissRoom(ctx, "a", "r")
	require.ErrorIs(t, err, ErrNotConfigured)
	require.Contains(t, err.Error(), "RTC")
	_, _, err = client.DisableApp(ctx, "a")
	require.ErrorIs(t, err, ErrNotConfigured)
	_, err = client.CancelConference(ctx, "c", "", false)
	require.ErrorIs(t, err, ErrNotConfigured)
	require.Contains(t, err.Error(), "Meeting")
	_, err = client.HangUpParticipants(ctx, "c", []string{"p"})
	require.ErrorIs(t, err, ErrNotConfigured)
	_, err = client.ReclaimVMRs(ctx, "acc", 0, []string{"v"})
	require.ErrorIs(t, err, ErrNotConfigured)
}

func TestConfigStringHidesSecrets(t *testing.T) {
	t.Parallel()

	client, bundle := setup(t, func(c *Config) {
		c.IAMUser, c.IAMPassword, c.IAMDomain, c.IAMProjectID = "u", testIAMPassword, "d", "p"
		c.MeetingAccount, c.MeetingPassword = testAccount, testMeetingPwd
	})
	for _, s := range []string{
		fmt.Sprint(bundle.cfg), fmt.Sprintf("%+v", bundle.cfg), fmt.Sprintf("%#v", bundle.cfg),
		fmt.Sprint(client), fmt.Sprintf("%+v", client),
	} {
		for _, secret := range []string{testSK, testIAMPassword, testAppKey, testMeetingPwd} {
			require.NotContains(t, s, secret)
		}
		require.Contains(t, s, testAK)
		require.Contains(t, s, "***")
	}
}

// Hostile IDs must arrive as exactly one path segment (or one query value)
// that decodes to the ID, whatever characters they hold.
func TestHostileIDsKeepPathStructure(t *testing.T) {
	t.Parallel()

	hostile := []string{"../x", "a/b", "a?b=c", "%2F", "ü nicode", "sp ace", "a#frag", "..%2F..", "a;b", "+plus", "\x01ctl", "..."}

	client, bundle := setup(t)
	ctx := context.Background()
	for _, id := range hostile {
		_, err := client.DismissRoom(ctx, id, id)
		require.NoError(t, err, id)
		_, _, err = client.DisableApp(ctx, id)
		require.NoError(t, err, id)
		_, err = client.ReclaimVMRs(ctx, id, 1, []string{id})
		require.NoError(t, err, id)
		_, err = client.CancelConference(ctx, id, id, false)
		require.NoError(t, err, id)
	}

	check := func(route string, want func(esc string) string) {
		calls := bundle.cloud.routeCalls(route)
		require.Len(t, calls, len(hostile), route)
		for i, c := range calls {
			require.Equal(t, want(url.PathEscape(hostile[i])), c.path, route)
		}
	}
	check("dismiss", func(e string) string { return "/v2/apps/" + e + "/rooms/" + e + "/dismiss" })
	check("disable", func(e string) string { return "/v2/apps/" + e + "/disable" })
	check("reclaim", func(e string) string { return "/v1/usg/dcs/corp/vmr/recycle-from-member/" + e })
	for i, c := range bundle.cloud.routeCalls("cancel") {
		require.Equal(t, url.Values{"conferenceID": {hostile[i]}, "userUUID": {hostile[i]}}, c.query)
	}
	for i, c := range bundle.cloud.routeCalls("reclaim") {
		seg, err := url.PathUnescape(strings.TrimPrefix(c.path, "/v1/usg/dcs/corp/vmr/recycle-from-member/"))
		require.NoError(t, err)
		require.Equal(t, hostile[i], seg)
	}
}

func TestRejectsInvalidArgumentsWithoutARequest(t *testing.T) {
	t.Parallel()

	client, bundle := setup(t, func(c *Config) { c.MeetingEndpoint = c.RTCEndpoint })
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"DismissEmptyApp":   func() error { _, err := client.DismissRoom(ctx, "", "r"); return err },
		"DismissDotRoom":    func() error { _, err := client.DismissRoom(ctx, "a", ".."); return err },
		"DisableDot":        func() error { _, _, err := client.DisableApp(ctx, "."); return err },
		"CancelEmpty":       func() error { _, err := client.CancelConference(ctx, "", "u", true); return err },
		"HangupEmptyConf":   func() error { _, err := client.HangUpParticipants(ctx, "", []string{"p"}); return err },
		"HangupNoIDs":       func() error { _, err := client.HangUpParticipants(ctx, "c", nil); return err },
		"HangupEmptyID":     func() error { _, err := client.HangUpParticipants(ctx, "c", []string{"p", ""}); return err },
		"ReclaimDotAccount": func() error { _, err := client.ReclaimVMRs(ctx, "..", 0, []string{"v"}); return err },
		"ReclaimBadType":    func() error { _, err := client.ReclaimVMRs(ctx, "acc", 2, []string{"v"}); return err },
		"ReclaimNoIDs":      func() error { _, err := client.ReclaimVMRs(ctx, "acc", 0, []string{}); return err },
	} {
		err := call()
		require.ErrorIs(t, err, ErrInvalidArgument, name)
	}
	require.Empty(t, bundle.cloud.routeSequence())
}

func TestObserveSeesEveryExchange(t *testing.T) {
	t.Parallel()

	type seen struct {
		op     string
		status int
	}
	var (
		mu  sync.Mutex
		got []seen
	)
	client, bundle := setup(t, func(c *Config) {
		c.Observe = func(op string, status int, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			require.GreaterOrEqual(t, d, time.Duration(0))
			got = append(got, seen{op, status})
		}
	})
	bundle.cloud.handle("reclaim", func(w http.ResponseWriter, _ call, _ int) {
		writeError(w, http.StatusBadRequest, "MMC.111070006", "VMR does not exist")
	})
	ctx := context.Background()
	_, err := client.DismissRoom(ctx, "a", "r")
	require.NoError(t, err)
	_, err = client.HangUpParticipants(ctx, "c", []string{"p"})
	require.NoError(t, err)
	_, err = client.ReclaimVMRs(ctx, "acc", 0, []string{"v"})
	require.Error(t, err)

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []seen{
		{"dismiss", 202}, {"meeting_auth", 200}, {"conf_detail", 200}, {"control_token", 200}, {"hangup", 200}, {"reclaim", 400},
	}, got)
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()

	client, bundle := setup(t)
	bundle.cloud.handle("cancel", func(w http.ResponseWriter, _ call, _ int) {
		w.Header().Set("Location", "https://evil.example/steal")
		w.WriteHeader(http.StatusFound)
	})
	_, err := client.CancelConference(context.Background(), "c", "", false)
	require.Equal(t, http.StatusFound, requireAPIError(t, err).Status)
}

func TestAny2xxIsSuccess(t *testing.T) {
	t.Parallel()

	client, bundle := setup(t)
	bundle.cloud.handle("cancel", func(w http.ResponseWriter, _ call, _ int) { w.WriteHeader(http.StatusNoContent) })
	bundle.cloud.handle("dismiss", func(w http.ResponseWriter, _ call, _ int) { w.WriteHeader(http.StatusOK) })
	resp, err := client.CancelConference(context.Background(), "c", "", false)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, resp.Status)
	resp, err = client.DismissRoom(context.Background(), "a", "r")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.Status)
}

func TestEndpointWithBasePath(t *testing.T) {
	t.Parallel()

	client, bundle := setup(t, func(c *Config) { c.RTCEndpoint += "/pre%2Ffix/" })
	_, err := client.DismissRoom(context.Background(), "a", "r")
	require.Equal(t, http.StatusNotFound, requireAPIError(t, err).Status) // the fake cloud has no such route
	calls := bundle.cloud.routeCalls("")
	require.Len(t, calls, 1)
	require.Equal(t, "/pre%2Ffix/v2/apps/a/rooms/r/dismiss", calls[0].path)
}
