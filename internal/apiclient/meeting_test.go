package apiclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCancelConference(t *testing.T) {
	t.Parallel()

	t.Run("ExactRequest", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		resp, err := client.CancelConference(context.Background(), "914087436", "", false)
		require.NoError(t, err)
		require.Equal(t, Response{Status: http.StatusOK, RequestID: "cancel-req-1"}, resp)

		c := bundle.cloud.routeCalls("cancel")[0]
		require.Equal(t, http.MethodDelete, c.method)
		require.Equal(t, "/v1/mmc/management/conferences", c.path)
		require.Equal(t, "conferenceID=914087436", c.rawQuery)
		require.Empty(t, c.body)
		// Bodiless, yet with the Content-Type the SDK sends on every call.
		require.Equal(t, "application/json", c.header.Get("Content-Type"))
		require.Equal(t, "ACCESS-TOKEN-SECRET-1", c.header.Get("X-Access-Token"))
		require.Equal(t, "meetops/1.2.3", c.header.Get("User-Agent"))
		require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, c.header.Get("X-Request-Id"))
	})

	t.Run("UserAndEndOngoing", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		_, err := client.CancelConference(context.Background(), "914087436", "uuid&x=1", true)
		require.NoError(t, err)
		require.Equal(t, "conferenceID=914087436&type=1&userUUID=uuid%26x%3D1", bundle.cloud.routeCalls("cancel")[0].rawQuery)
	})

	t.Run("AlreadyEnded", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		bundle.cloud.handle("cancel", func(w http.ResponseWriter, _ call, _ int) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error_code": "MMC.111072006", "error_msg": "meeting has ended", "request_id": "body-rid"})
		})
		_, err := client.CancelConference(context.Background(), "c", "", false)
		e := requireAPIError(t, err)
		require.Equal(t, "cancel", e.Op)
		require.Equal(t, "MMC.111072006", e.Code)
		require.Equal(t, "body-rid", e.RequestID)
		require.Equal(t, 1, bundle.cloud.count("cancel"))
	})
}

func TestReclaimVMRs(t *testing.T) {
	t.Parallel()

	client, bundle := setup(t)
	resp, err := client.ReclaimVMRs(context.Background(), "example@123", 1, []string{"ff8080816b9ec3ab016ba125aca20082", "v<2>"})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.Status)

	c := bundle.cloud.routeCalls("reclaim")[0]
	require.Equal(t, http.MethodPost, c.method)
	require.Equal(t, "/v1/usg/dcs/corp/vmr/recycle-from-member/example@123", c.path)
	require.Equal(t, "accountType=1", c.rawQuery)
	// No HTML escaping, no trailing newline: the SDK's bytes but its newline.
	require.Equal(t, `["ff8080816b9ec3ab016ba125aca20082","v<2>"]`, string(c.body))
	require.Equal(t, "application/json", c.header.Get("Content-Type"))
	require.Equal(t, "ACCESS-TOKEN-SECRET-1", c.header.Get("X-Access-Token"))

	_, err = client.ReclaimVMRs(context.Background(), "acc", 0, []string{"v"})
	require.NoError(t, err)
	require.Equal(t, "accountType=0", bundle.cloud.routeCalls("reclaim")[1].rawQuery)
}

func TestMeetingAuth(t *testing.T) {
	t.Parallel()

	// appAuthRequest decodes the App ID authentication request.
	appAuthRequest := func(t *testing.T, c call) map[string]any {
		t.Helper()
		require.Equal(t, http.MethodPost, c.method)
		require.Equal(t, "/v2/usg/acs/auth/appauth", c.path)
		require.Equal(t, "application/json; charset=UTF-8", c.header.Get("Content-Type"))
		var body map[string]any
		require.NoError(t, json.Unmarshal(c.body, &body))
		return body
	}

	t.Run("AppIDWithUser", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := context.Background()
		_, err := client.CancelConference(ctx, "c", "", false)
		require.NoError(t, err)
		_, err = client.ReclaimVMRs(ctx, "acc", 0, []string{"v"})
		require.NoError(t, err)
		require.Equal(t, []string{"meeting_auth", "cancel", "reclaim"}, bundle.cloud.routeSequence())

		c := bundle.cloud.routeCalls("meeting_auth")[0]
		body := appAuthRequest(t, c)
		nonce, _ := body["nonce"].(string)
		require.GreaterOrEqual(t, len(nonce), 32)
		require.LessOrEqual(t, len(nonce), 64)
		exp := testEpoch.Add(time.Hour).Unix()
		require.Equal(t, map[string]any{"appId": testAppID, "clientType": 72.0, "userId": testUserID, "expireTime": float64(exp), "nonce": nonce}, body)
		sig := hmacHex(testAppKey, fmt.Sprintf("%s:%s:%d:%s", testAppID, testUserID, exp, nonce))
		require.Equal(t, "HMAC-SHA256 signature="+sig+",access="+base64.StdEncoding.EncodeToString([]byte(testAppID)), c.header.Get("Authorization"))
	})

	t.Run("AppIDWithoutUserAndSPMode", func(t *testing.T) {
		t.Parallel()
		for name, tc := range map[string]struct {
			opt  func(*Config)
			want []string // body keys
		}{
			"OwnerWithoutUser": {func(c *Config) { c.MeetingUserID = "" }, []string{"appId", "clientType", "expireTime", "nonce"}},
			"SPMode":           {func(c *Config) { c.MeetingCorpID = "corp-1" }, []string{"appId", "clientType", "corpId", "expireTime", "nonce", "userId"}},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				client, bundle := setup(t, tc.opt)
				_, err := client.CancelConference(context.Background(), "c", "", false)
				require.NoError(t, err) // the fake cloud verified the signature over the right data
				var keys []string
				for k := range appAuthRequest(t, bundle.cloud.routeCalls("meeting_auth")[0]) {
					keys = append(keys, k)
				}
				require.ElementsMatch(t, tc.want, keys)
			})
		}
	})

	t.Run("AppAuthData", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, "app:user:100:nonce", AppAuthData("app", "", "user", 100, "nonce"))
		require.Equal(t, "app::0:nonce", AppAuthData("app", "", "", 0, "nonce"))
		require.Equal(t, "app:corp:user:100:nonce", AppAuthData("app", "corp", "user", 100, "nonce"))
		require.Equal(t, hmacHex("key", "data"), AppAuthSignature("key", "data"))
	})

	t.Run("NoncesDiffer", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		for range 2 {
			_, err := client.CancelConference(context.Background(), "c", "", false)
			require.NoError(t, err)
			bundle.clock.Advance(11 * time.Hour)
		}
		calls := bundle.cloud.routeCalls("meeting_auth")
		require.Len(t, calls, 2)
		require.NotEqual(t, appAuthRequest(t, calls[0])["nonce"], appAuthRequest(t, calls[1])["nonce"])
	})

	t.Run("Account", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t, accountMode)
		_, err := client.CancelConference(context.Background(), "c", "", false)
		require.NoError(t, err)
		c := bundle.cloud.routeCalls("meeting_auth")[0]
		require.Equal(t, "/v1/usg/acs/auth/account", c.path)
		require.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte(testAccount+":"+testMeetingPwd)), c.header.Get("Authorization"))
		require.Equal(t, `{"account":"account-0001","clientType":72}`, string(c.body))
		require.Equal(t, "application/json; charset=UTF-8", c.header.Get("Content-Type"))
	})

	t.Run("LoginFailureIsNotRetried", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t, accountMode)
		bundle.cloud.handle("meeting_auth", func(w http.ResponseWriter, c call, _ int) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = fmt.Fprintf(w, "denied for %s", c.header.Get("Authorization"))
		})
		_, err := client.CancelConference(context.Background(), "c", "", false)
		e := requireAPIError(t, err)
		require.Equal(t, "meeting_auth", e.Op)
		require.Equal(t, http.StatusUnauthorized, e.Status)
		require.Empty(t, e.Body, "a token request's answer is never copied")
		require.Equal(t, []string{"meeting_auth"}, bundle.cloud.routeSequence())
	})

	t.Run("AnswerWithoutToken", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		bundle.cloud.handle("meeting_auth", func(w http.ResponseWriter, _ call, _ int) {
			writeJSON(w, http.StatusOK, map[string]int{"validPeriod": 1})
		})
		_, err := client.CancelConference(context.Background(), "c", "", false)
		require.ErrorIs(t, err, ErrUnexpectedAnswer)
	})
}

func TestAccessTokenCache(t *testing.T) {
	t.Parallel()

	t.Run("SingleFlightUnderConcurrency", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		entered := make(chan struct{})
		release := make(chan struct{})
		bundle.cloud.handle("meeting_auth", func(w http.ResponseWriter, c call, n int) {
			close(entered) // a second login would panic here
			<-release
			bundle.cloud.defaultHandler(w, c, n)
		})
		const n = 50
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				_, err := client.CancelConference(context.Background(), "c", "", false)
				errs <- err
			})
		}
		<-entered
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, 1, bundle.cloud.count("meeting_auth"))
		require.Equal(t, n, bundle.cloud.count("cancel"))
	})

	t.Run("RefreshedOnceOnAuthFailure", func(t *testing.T) {
		t.Parallel()
		for name, fail := range map[string]func(w http.ResponseWriter){
			"HTTP401":         func(w http.ResponseWriter) { writeError(w, http.StatusUnauthorized, "USG.000000004", "token expired") },
			"CodeWithout401":  func(w http.ResponseWriter) { writeError(w, http.StatusBadRequest, "USG.000000004", "token expired") },
			"Plain401NoJSON":  func(w http.ResponseWriter) { w.WriteHeader(http.StatusUnauthorized) },
			"ConfDetail401":   nil, // the access token also serves the conference detail
			"OtherCodeNoRetr": nil,
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				client, bundle := setup(t)
				switch name {
				case "ConfDetail401":
					bundle.cloud.handle("conf_detail", func(w http.ResponseWriter, c call, n int) {
						if n == 1 {
							writeError(w, http.StatusUnauthorized, "USG.000000004", "token expired")
							return
						}
						bundle.cloud.defaultHandler(w, c, n)
					})
					_, err := client.HangUpParticipants(context.Background(), "c", []string{"p"})
					require.NoError(t, err)
					require.Equal(t, []string{"meeting_auth", "conf_detail", "meeting_auth", "conf_detail", "control_token", "hangup"}, bundle.cloud.routeSequence())
					return
				case "OtherCodeNoRetr":
					bundle.cloud.handle("cancel", func(w http.ResponseWriter, _ call, _ int) {
						writeError(w, http.StatusBadRequest, "MMC.111070005", "does not exist")
					})
					_, err := client.CancelConference(context.Background(), "c", "", false)
					require.Equal(t, "MMC.111070005", requireAPIError(t, err).Code)
					require.Equal(t, []string{"meeting_auth", "cancel"}, bundle.cloud.routeSequence())
					return
				}
				bundle.cloud.handle("cancel", func(w http.ResponseWriter, c call, n int) {
					if n == 1 {
						fail(w)
						return
					}
					bundle.cloud.defaultHandler(w, c, n)
				})
				resp, err := client.CancelConference(context.Background(), "c", "", false)
				require.NoError(t, err)
				require.Equal(t, "cancel-req-2", resp.RequestID)
				require.Equal(t, []string{"meeting_auth", "cancel", "meeting_auth", "cancel"}, bundle.cloud.routeSequence())
				require.Equal(t, "ACCESS-TOKEN-SECRET-2", bundle.cloud.routeCalls("cancel")[1].header.Get("X-Access-Token"))
			})
		}
	})

	t.Run("NoLoopOnSecondFailure", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		bundle.cloud.handle("reclaim", func(w http.ResponseWriter, _ call, _ int) {
			writeError(w, http.StatusUnauthorized, "USG.000000004", "token expired")
		})
		_, err := client.ReclaimVMRs(context.Background(), "acc", 0, []string{"v"})
		e := requireAPIError(t, err)
		require.Equal(t, "reclaim", e.Op)
		require.Equal(t, http.StatusUnauthorized, e.Status)
		require.Equal(t, 2, bundle.cloud.count("meeting_auth"))
		require.Equal(t, 2, bundle.cloud.count("reclaim"))
	})

	t.Run("StaleTokenDroppedOnceByConcurrentCallers", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := context.Background()
		_, err := client.ReclaimVMRs(ctx, "acc", 0, []string{"v"}) // caches token 1
		require.NoError(t, err)
		bundle.cloud.handle("cancel", func(w http.ResponseWriter, c call, n int) {
			if c.header.Get("X-Access-Token") == "ACCESS-TOKEN-SECRET-1" {
				writeError(w, http.StatusUnauthorized, "USG.000000004", "revoked")
				return
			}
			bundle.cloud.defaultHandler(w, c, n)
		})
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Go(func() {
				_, err := client.CancelConference(ctx, "c", "", false)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, 2, bundle.cloud.count("meeting_auth"))
	})

	t.Run("RefreshedBeforeExpiry", func(t *testing.T) {
		t.Parallel()
		for name, tc := range map[string]struct {
			answer  func(now time.Time) map[string]any
			stillOK time.Duration // age at which the cached token is still used
			refresh time.Duration // age at which it is replaced
		}{
			"AtTenHours": {func(now time.Time) map[string]any {
				return map[string]any{"validPeriod": 86400, "expireTime": now.Add(24 * time.Hour).Unix()}
			}, 10*time.Hour - time.Second, 10 * time.Hour},
			"ShortValidPeriod": {func(time.Time) map[string]any {
				return map[string]any{"validPeriod": 600}
			}, 539 * time.Second, 540 * time.Second},
			"EarlierExpireTime": {func(now time.Time) map[string]any {
				return map[string]any{"validPeriod": 43200, "expireTime": now.Add(time.Hour).Unix()}
			}, 53 * time.Minute, 54 * time.Minute},
			"NoLifetimeAssumes12h": {func(time.Time) map[string]any {
				return map[string]any{}
			}, 10*time.Hour - time.Second, 10 * time.Hour},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				client, bundle := setup(t)
				bundle.cloud.handle("meeting_auth", func(w http.ResponseWriter, _ call, n int) {
					a := tc.answer(bundle.clock.Now())
					a["accessToken"] = fmt.Sprintf("ACCESS-TOKEN-SECRET-%d", n)
					writeJSON(w, http.StatusOK, a)
				})
				ctx := context.Background()
				_, err := client.CancelConference(ctx, "c", "", false)
				require.NoError(t, err)
				bundle.clock.Advance(tc.stillOK)
				_, err = client.CancelConference(ctx, "c", "", false)
				require.NoError(t, err)
				require.Equal(t, 1, bundle.cloud.count("meeting_auth"))
				bundle.clock.Advance(tc.refresh - tc.stillOK)
				_, err = client.CancelConference(ctx, "c", "", false)
				require.NoError(t, err)
				require.Equal(t, 2, bundle.cloud.count("meeting_auth"))
				require.Equal(t, "ACCESS-TOKEN-SECRET-2", bundle.cloud.routeCalls("cancel")[2].header.Get("X-Access-Token"))
			})
		}
	})

	t.Run("CallerGivesUpWhileLoginIsInFlight", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		entered := make(chan struct{})
		release := make(chan struct{})
		bundle.cloud.handle("meeting_auth", func(w http.ResponseWriter, c call, n int) {
			close(entered)
			<-release
			bundle.cloud.defaultHandler(w, c, n)
		})
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-entered
			cancel()
		}()
		_, err := client.CancelConference(ctx, "c", "", false)
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, "meeting_auth", requireAPIError(t, err).Op)

		// The shared login was not cancelled with that caller: the next
		// call uses its token.
		close(release)
		_, err = client.CancelConference(context.Background(), "c", "", false)
		require.NoError(t, err)
		require.Equal(t, 1, bundle.cloud.count("meeting_auth"))
	})
}

func TestHangUpParticipants(t *testing.T) {
	t.Parallel()

	t.Run("ControlTokenFlow", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		resp, err := client.HangUpParticipants(context.Background(), "914083136", []string{"ba9acb1e216d11eabc5165c2b91ad427", "p2"})
		require.NoError(t, err)
		require.Equal(t, Response{Status: http.StatusOK, RequestID: "hangup-req-1"}, resp)
		require.Equal(t, []string{"meeting_auth", "conf_detail", "control_token", "hangup"}, bundle.cloud.routeSequence())

		detail := bundle.cloud.routeCalls("conf_detail")[0]
		require.Equal(t, http.MethodGet, detail.method)
		require.Equal(t, "/v1/mmc/management/conferences/confDetail", detail.path)
		require.Equal(t, "conferenceID=914083136", detail.rawQuery)
		require.Equal(t, "ACCESS-TOKEN-SECRET-1", detail.header.Get("X-Access-Token"))
		require.Equal(t, "application/json", detail.header.Get("Content-Type"))

		tok := bundle.cloud.routeCalls("control_token")[0]
		require.Equal(t, http.MethodGet, tok.method)
		require.Equal(t, "/v1/mmc/control/conferences/token", tok.path)
		require.Equal(t, "conferenceID=914083136", tok.rawQuery)
		require.Equal(t, chairPassword("914083136"), tok.header.Get("X-Password"))
		require.Equal(t, "1", tok.header.Get("X-Login-Type"))
		require.Equal(t, "application/json", tok.header.Get("Content-Type"))
		// Unlike the SDK, no access token where the page asks for none.
		require.Empty(t, tok.header.Get("X-Access-Token"))

		h := bundle.cloud.routeCalls("hangup")[0]
		require.Equal(t, http.MethodPost, h.method)
		require.Equal(t, "/v1/mmc/control/conferences/participants/delete", h.path)
		require.Equal(t, "conferenceID=914083136", h.rawQuery)
		require.Equal(t, `{"bulkHangUpParticipants":["ba9acb1e216d11eabc5165c2b91ad427","p2"]}`, string(h.body))
		require.Equal(t, controlTokenValue("914083136", 1), h.header.Get("X-Conference-Authorization"))
		require.Equal(t, "application/json", h.header.Get("Content-Type"))
		require.Empty(t, h.header.Get("X-Access-Token"))
		require.Empty(t, h.header.Get("X-Password"))
	})

	t.Run("CachedPerConference", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := context.Background()
		for _, conf := range []string{"c1", "c1", "c2", "c1", "c2"} {
			_, err := client.HangUpParticipants(ctx, conf, []string{"p"})
			require.NoError(t, err)
		}
		require.Equal(t, 1, bundle.cloud.count("meeting_auth"))
		require.Equal(t, 2, bundle.cloud.count("conf_detail"))
		require.Equal(t, 2, bundle.cloud.count("control_token"))
		var got []string
		for _, c := range bundle.cloud.routeCalls("hangup") {
			got = append(got, c.header.Get("X-Conference-Authorization"))
		}
		require.Equal(t, []string{
			controlTokenValue("c1", 1), controlTokenValue("c1", 1), controlTokenValue("c2", 2), controlTokenValue("c1", 1), controlTokenValue("c2", 2),
		}, got)
	})

	t.Run("RefreshedBeforeExpiry", func(t *testing.T) {
		t.Parallel()
		for name, tc := range map[string]struct {
			expireIn         time.Duration // the answer's expireTime, from now
			stillOK, refresh time.Duration
		}{
			"ThirtyMinuteCap":   {2 * time.Hour, 27*time.Minute - time.Second, 27 * time.Minute},
			"EarlierExpireTime": {10 * time.Minute, 9*time.Minute - time.Second, 9 * time.Minute},
			"NoExpireTimeGiven": {0, 27*time.Minute - time.Second, 27 * time.Minute},
			"ExpiredOnArrival":  {-time.Minute, 0, 0},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				client, bundle := setup(t)
				bundle.cloud.handle("control_token", func(w http.ResponseWriter, _ call, n int) {
					var exp int64
					if tc.expireIn != 0 {
						exp = bundle.clock.Now().Add(tc.expireIn).UnixMilli()
					}
					writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"token": controlTokenValue("c", n), "expireTime": exp}})
				})
				ctx := context.Background()
				_, err := client.HangUpParticipants(ctx, "c", []string{"p"})
				require.NoError(t, err)
				if tc.stillOK > 0 {
					bundle.clock.Advance(tc.stillOK)
					_, err = client.HangUpParticipants(ctx, "c", []string{"p"})
					require.NoError(t, err)
					require.Equal(t, 1, bundle.cloud.count("control_token"))
				}
				bundle.clock.Advance(tc.refresh - tc.stillOK)
				_, err = client.HangUpParticipants(ctx, "c", []string{"p"})
				require.NoError(t, err)
				require.Equal(t, 2, bundle.cloud.count("control_token"))
			})
		}
	})

	t.Run("RefetchedOnceOnControlAuthFailure", func(t *testing.T) {
		t.Parallel()
		for name, fail := range map[string]func(w http.ResponseWriter){
			"MMC111070004": func(w http.ResponseWriter) { writeError(w, http.StatusBadRequest, "MMC.111070004", "auth failed") },
			"HTTP401":      func(w http.ResponseWriter) { w.WriteHeader(http.StatusUnauthorized) },
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				client, bundle := setup(t)
				bundle.cloud.handle("hangup", func(w http.ResponseWriter, c call, n int) {
					if n == 1 {
						fail(w)
						return
					}
					bundle.cloud.defaultHandler(w, c, n)
				})
				_, err := client.HangUpParticipants(context.Background(), "c", []string{"p"})
				require.NoError(t, err)
				require.Equal(t, []string{"meeting_auth", "conf_detail", "control_token", "hangup", "conf_detail", "control_token", "hangup"},
					bundle.cloud.routeSequence())
				require.Equal(t, controlTokenValue("c", 2), bundle.cloud.routeCalls("hangup")[1].header.Get("X-Conference-Authorization"))
			})
		}
	})

	t.Run("NoLoopOnSecondControlAuthFailure", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		bundle.cloud.handle("hangup", func(w http.ResponseWriter, _ call, _ int) {
			writeError(w, http.StatusBadRequest, "MMC.111070004", "auth failed")
		})
		_, err := client.HangUpParticipants(context.Background(), "c", []string{"p"})
		require.Equal(t, "MMC.111070004", requireAPIError(t, err).Code)
		require.Equal(t, 2, bundle.cloud.count("control_token"))
		require.Equal(t, 2, bundle.cloud.count("hangup"))
	})

	t.Run("SingleFlightPerConference", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		entered := make(chan struct{})
		release := make(chan struct{})
		bundle.cloud.handle("control_token", func(w http.ResponseWriter, c call, n int) {
			close(entered) // a second fetch would panic here
			<-release
			bundle.cloud.defaultHandler(w, c, n)
		})
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Go(func() {
				_, err := client.HangUpParticipants(context.Background(), "c", []string{"p"})
				errs <- err
			})
		}
		<-entered
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, 1, bundle.cloud.count("meeting_auth"))
		require.Equal(t, 1, bundle.cloud.count("conf_detail"))
		require.Equal(t, 20, bundle.cloud.count("hangup"))
	})

	t.Run("ControlTokenErrors", func(t *testing.T) {
		t.Parallel()
		for name, tc := range map[string]struct {
			route   string
			handler fakeHandler
			check   func(t *testing.T, err error)
		}{
			"NoChairPassword": {"conf_detail", func(w http.ResponseWriter, _ call, _ int) {
				writeJSON(w, http.StatusOK, map[string]any{"conferenceData": map[string]any{"passwordEntry": []map[string]string{{"conferenceRole": "general", "password": "g"}}}})
			}, func(t *testing.T, err error) { require.ErrorIs(t, err, ErrUnexpectedAnswer) }},
			"DetailNotJSON": {"conf_detail", func(w http.ResponseWriter, _ call, _ int) {
				_, _ = w.Write([]byte("chair=CHAIR-PWD-SECRET"))
			}, func(t *testing.T, err error) { require.ErrorIs(t, err, ErrUnexpectedAnswer) }},
			"WrongPassword": {"control_token", func(w http.ResponseWriter, c call, _ int) {
				writeError(w, http.StatusBadRequest, "MMC.111072065", "password "+c.header.Get("X-Password")+" wrong")
			}, func(t *testing.T, err error) {
				e := requireAPIError(t, err)
				require.Equal(t, "control_token", e.Op)
				require.Equal(t, "MMC.111072065", e.Code)
				require.Empty(t, e.Message, "a token request's answer is never copied")
			}},
			"NoToken": {"control_token", func(w http.ResponseWriter, _ call, _ int) {
				writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{}})
			}, func(t *testing.T, err error) { require.ErrorIs(t, err, ErrUnexpectedAnswer) }},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				client, bundle := setup(t)
				bundle.cloud.handle(tc.route, tc.handler)
				_, err := client.HangUpParticipants(context.Background(), "c", []string{"p"})
				tc.check(t, err)
				require.NotRegexp(t, regexp.MustCompile(secretMark), err.Error())
				require.Zero(t, bundle.cloud.count("hangup"))
			})
		}
	})
}
