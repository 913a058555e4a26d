package apiclient

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDismissRoom(t *testing.T) {
	t.Parallel()

	t.Run("SignedRequest", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		resp, err := client.DismissRoom(context.Background(), "app 1", "room/1")
		require.NoError(t, err)
		require.Equal(t, Response{Status: http.StatusAccepted, RequestID: "rtc-req-1"}, resp)

		calls := bundle.cloud.routeCalls("dismiss")
		require.Len(t, calls, 1)
		c := calls[0]
		require.Equal(t, http.MethodPost, c.method)
		require.Equal(t, "/v2/apps/app%201/rooms/room%2F1/dismiss", c.path)
		require.Empty(t, c.rawQuery)
		require.Empty(t, c.body)
		require.Equal(t, testProjectID, c.header.Get("X-Project-Id"))
		require.Equal(t, "20260304T050607Z", c.header.Get("X-Sdk-Date"))
		require.Equal(t, "application/json", c.header.Get("Content-Type"))
		require.Equal(t, "meetops/1.2.3", c.header.Get("User-Agent"))
		require.Len(t, c.header.Get("X-Request-Id"), 36)
		require.Empty(t, c.header.Get("X-Auth-Token"))
		ak, signed, _, err := ParseAuthorization(c.header.Get("Authorization"))
		require.NoError(t, err)
		require.Equal(t, testAK, ak)
		require.Equal(t, []string{"host", "user-agent", "x-project-id", "x-request-id", "x-sdk-date"}, signed)
	})

	t.Run("SignatureRejectedIsNotRetried", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t, func(c *Config) { c.RTCSK = "wrong-secret" })
		_, err := client.DismissRoom(context.Background(), "a", "r")
		e := requireAPIError(t, err)
		require.Equal(t, http.StatusUnauthorized, e.Status)
		require.Equal(t, "APIG.0301", e.Code)
		require.Equal(t, 1, bundle.cloud.count("dismiss"))
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		bundle.cloud.handle("dismiss", func(w http.ResponseWriter, _ call, _ int) {
			w.Header().Set("X-request-Id", "rid-404")
			writeError(w, http.StatusNotFound, "RTC.00001003", "InvalidParameterValue")
		})
		_, err := client.DismissRoom(context.Background(), "a", "r")
		e := requireAPIError(t, err)
		require.Equal(t, &Error{Op: "dismiss", Status: 404, Code: "RTC.00001003", Message: "InvalidParameterValue", RequestID: "rid-404"}, e)
		require.Equal(t, "apiclient: dismiss: HTTP 404 RTC.00001003: InvalidParameterValue (request_id rid-404)", e.Error())
	})
}

func TestDisableApp(t *testing.T) {
	t.Parallel()

	t.Run("ReturnsState", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		state, resp, err := client.DisableApp(context.Background(), "app-1")
		require.NoError(t, err)
		require.Equal(t, AppState{AppID: "app-1", State: "DEACTIVATION", UpdateTime: "2020-07-26T07:03:05.075Z"}, state)
		require.Equal(t, Response{Status: http.StatusOK, RequestID: "rtc-req-1"}, resp)
		c := bundle.cloud.routeCalls("disable")[0]
		require.Equal(t, http.MethodPost, c.method)
		require.Equal(t, "/v2/apps/app-1/disable", c.path)
		require.Empty(t, c.body)
	})

	t.Run("UnparsableAnswer", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		bundle.cloud.handle("disable", func(w http.ResponseWriter, _ call, _ int) {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("<html>"))
		})
		_, resp, err := client.DisableApp(context.Background(), "app-1")
		require.ErrorIs(t, err, ErrUnexpectedAnswer)
		require.Equal(t, http.StatusOK, resp.Status)
	})

	t.Run("AlreadyDisabled", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		bundle.cloud.handle("disable", func(w http.ResponseWriter, _ call, _ int) {
			writeError(w, http.StatusBadRequest, "RTC.00001016", "AppDeactivation")
		})
		_, _, err := client.DisableApp(context.Background(), "app-1")
		e := requireAPIError(t, err)
		require.Equal(t, 400, e.Status)
		require.Equal(t, "RTC.00001016", e.Code)
	})
}

func TestRTCIAMToken(t *testing.T) {
	t.Parallel()

	t.Run("FetchedOnceAndSent", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t, iamMode)
		ctx := context.Background()
		_, err := client.DismissRoom(ctx, "a", "r")
		require.NoError(t, err)
		_, _, err = client.DisableApp(ctx, "a")
		require.NoError(t, err)

		require.Equal(t, []string{"iam_token", "dismiss", "disable"}, bundle.cloud.routeSequence())
		auth := bundle.cloud.routeCalls("iam_token")[0]
		require.Equal(t, http.MethodPost, auth.method)
		require.Equal(t, "/v3/auth/tokens", auth.path)
		require.JSONEq(t, `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"iam-user","password":"`+testIAMPassword+
			`","domain":{"name":"iam-domain"}}}},"scope":{"project":{"id":"iam-project"}}}}`, string(auth.body))
		require.Equal(t, "application/json;charset=UTF-8", auth.header.Get("Content-Type")) // the SDK's IAM client
		for _, route := range []string{"dismiss", "disable"} {
			c := bundle.cloud.routeCalls(route)[0]
			require.Equal(t, "IAM-TOKEN-SECRET-1", c.header.Get("X-Auth-Token"))
			require.Empty(t, c.header.Get("Authorization"))
			require.Empty(t, c.header.Get("X-Sdk-Date"))
			require.Empty(t, c.header.Get("X-Project-Id"))
		}
	})

	t.Run("RefreshedBeforeExpiry", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t, iamMode)
		ctx := context.Background()
		_, err := client.DismissRoom(ctx, "a", "r")
		require.NoError(t, err)
		bundle.clock.Advance(21 * time.Hour) // 24 h token: still more than 1/10 of its life left
		_, err = client.DismissRoom(ctx, "a", "r")
		require.NoError(t, err)
		require.Equal(t, 1, bundle.cloud.count("iam_token"))
		bundle.clock.Advance(time.Hour + 36*time.Minute) // past 21.6 h (9/10 of 24 h): refresh
		_, err = client.DismissRoom(ctx, "a", "r")
		require.NoError(t, err)
		require.Equal(t, 2, bundle.cloud.count("iam_token"))
		require.Equal(t, "IAM-TOKEN-SECRET-2", bundle.cloud.routeCalls("dismiss")[2].header.Get("X-Auth-Token"))
	})

	t.Run("MissingExpiryAssumes24h", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t, iamMode)
		bundle.cloud.handle("iam_token", func(w http.ResponseWriter, _ call, _ int) {
			w.Header().Set("X-Subject-Token", "IAM-TOKEN-SECRET")
			w.WriteHeader(http.StatusCreated)
		})
		ctx := context.Background()
		_, err := client.DismissRoom(ctx, "a", "r")
		require.NoError(t, err)
		bundle.clock.Advance(21 * time.Hour)
		_, err = client.DismissRoom(ctx, "a", "r")
		require.NoError(t, err)
		require.Equal(t, 1, bundle.cloud.count("iam_token"))
	})

	t.Run("RefreshedOnceOnAuthFailure", func(t *testing.T) {
		t.Parallel()
		for name, fail := range map[string]func(w http.ResponseWriter){
			"HTTP401": func(w http.ResponseWriter) { writeError(w, http.StatusUnauthorized, "APIG.0307", "token expired") },
			"OperationUnauthz": func(w http.ResponseWriter) {
				writeError(w, http.StatusBadRequest, "RTC.00001001", "OperationUnauthorized")
			},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				client, bundle := setup(t, iamMode)
				bundle.cloud.handle("dismiss", func(w http.ResponseWriter, _ call, n int) {
					if n == 1 {
						fail(w)
						return
					}
					w.WriteHeader(http.StatusAccepted)
				})
				resp, err := client.DismissRoom(context.Background(), "a", "r")
				require.NoError(t, err)
				require.Equal(t, http.StatusAccepted, resp.Status)
				require.Equal(t, []string{"iam_token", "dismiss", "iam_token", "dismiss"}, bundle.cloud.routeSequence())
				require.Equal(t, "IAM-TOKEN-SECRET-2", bundle.cloud.routeCalls("dismiss")[1].header.Get("X-Auth-Token"))
			})
		}
	})

	t.Run("NoLoopOnSecondFailure", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t, iamMode)
		bundle.cloud.handle("disable", func(w http.ResponseWriter, _ call, _ int) {
			writeError(w, http.StatusUnauthorized, "APIG.0307", "token invalid")
		})
		_, _, err := client.DisableApp(context.Background(), "a")
		require.Equal(t, http.StatusUnauthorized, requireAPIError(t, err).Status)
		require.Equal(t, 2, bundle.cloud.count("iam_token"))
		require.Equal(t, 2, bundle.cloud.count("disable"))
	})

	t.Run("LoginFailure", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t, iamMode)
		bundle.cloud.handle("iam_token", func(w http.ResponseWriter, c call, _ int) {
			// A hostile IAM echoing the request must not leak the password.
			writeError(w, http.StatusUnauthorized, "IAM.0001", "bad credentials in "+string(c.body))
		})
		_, err := client.DismissRoom(context.Background(), "a", "r")
		e := requireAPIError(t, err)
		require.Equal(t, "iam_token", e.Op)
		require.Equal(t, http.StatusUnauthorized, e.Status)
		require.NotContains(t, e.Error(), testIAMPassword)
		require.Equal(t, "IAM.0001", e.Code)
		require.Empty(t, e.Message, "a token request's answer is never copied")
		require.Equal(t, 1, bundle.cloud.count("iam_token"))
		require.Zero(t, bundle.cloud.count("dismiss"))
	})

	t.Run("AnswerWithoutToken", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t, iamMode)
		bundle.cloud.handle("iam_token", func(w http.ResponseWriter, _ call, _ int) { w.WriteHeader(http.StatusCreated) })
		_, err := client.DismissRoom(context.Background(), "a", "r")
		require.ErrorIs(t, err, ErrUnexpectedAnswer)
	})
}
