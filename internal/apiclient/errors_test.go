package apiclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestErrorParsing(t *testing.T) {
	t.Parallel()

	// failWith makes every cancel answer with h and returns the error.
	failWith := func(t *testing.T, h fakeHandler) *Error {
		t.Helper()
		client, bundle := setup(t)
		bundle.cloud.handle("cancel", h)
		_, err := client.CancelConference(context.Background(), "c", "", false)
		return requireAPIError(t, err)
	}

	t.Run("JSONBody", func(t *testing.T) {
		t.Parallel()
		e := failWith(t, func(w http.ResponseWriter, _ call, _ int) {
			w.Header().Set("X-Request-Id", "hdr-rid")
			writeJSON(w, http.StatusBadRequest, map[string]string{"error_code": "MMC.111070005", "error_msg": "meeting does not exist", "request_id": "body-rid"})
		})
		require.Equal(t, &Error{Op: "cancel", Status: 400, Code: "MMC.111070005", Message: "meeting does not exist", RequestID: "hdr-rid"}, e)
		require.Nil(t, e.Unwrap())
	})

	t.Run("RequestIDFallsBackToTheOneSent", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		bundle.cloud.handle("cancel", func(w http.ResponseWriter, _ call, _ int) { w.WriteHeader(http.StatusInternalServerError) })
		_, err := client.CancelConference(context.Background(), "c", "", false)
		e := requireAPIError(t, err)
		require.Equal(t, bundle.cloud.routeCalls("cancel")[0].header.Get("X-Request-Id"), e.RequestID)
		require.Empty(t, e.Body)
		require.Equal(t, "apiclient: cancel: HTTP 500 (request_id "+e.RequestID+")", e.Error())
	})

	t.Run("NonJSONBodyTruncated", func(t *testing.T) {
		t.Parallel()
		page := "<html> " + strings.Repeat("é", 400) + "</html>" // the cut falls inside an é
		e := failWith(t, func(w http.ResponseWriter, _ call, _ int) {
			w.Header().Set("X-Request-Id", "rid")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(page))
		})
		require.Equal(t, http.StatusBadGateway, e.Status)
		require.Empty(t, e.Code)
		require.True(t, strings.HasPrefix(page, strings.TrimSuffix(e.Body, "…")))
		require.True(t, strings.HasSuffix(e.Body, "…"))
		require.LessOrEqual(t, len(e.Body), maxErrorBody+len("…"))
		require.GreaterOrEqual(t, len(e.Body), maxErrorBody-1)
		require.Contains(t, e.Error(), "HTTP 502: body \"<html> éé")
		require.True(t, utf8.ValidString(e.Body))
	})

	t.Run("JSONWithoutErrorFieldsKeepsBody", func(t *testing.T) {
		t.Parallel()
		e := failWith(t, func(w http.ResponseWriter, _ call, _ int) {
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "forbidden"})
		})
		require.Equal(t, `{"message":"forbidden"}`+"\n", e.Body)
	})

	t.Run("RetryAfter", func(t *testing.T) {
		t.Parallel()
		for name, tc := range map[string]struct {
			header string
			want   time.Duration
		}{
			"DeltaSeconds": {"7", 7 * time.Second},
			"HTTPDate":     {testEpoch.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
			"PastDate":     {testEpoch.Add(-time.Minute).Format(http.TimeFormat), 0},
			"Negative":     {"-3", 0},
			"Garbage":      {"soon", 0},
			"Huge":         {"99999999999", 24 * time.Hour},
			"FarDate":      {testEpoch.Add(48 * time.Hour).Format(http.TimeFormat), 24 * time.Hour},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				e := failWith(t, func(w http.ResponseWriter, _ call, _ int) {
					w.Header().Set("Retry-After", tc.header)
					writeError(w, http.StatusTooManyRequests, "APIG.0308", "throttled")
				})
				require.Equal(t, tc.want, e.RetryAfter)
				require.Equal(t, "APIG.0308", e.Code)
			})
		}
		e := &Error{Op: "dismiss", Status: 429, Code: "APIG.0308", RetryAfter: 2 * time.Second}
		require.Equal(t, "apiclient: dismiss: HTTP 429 APIG.0308 (retry after 2s)", e.Error())
	})
}

func TestTransportErrors(t *testing.T) {
	t.Parallel()

	// blocking answers only when the request is abandoned or the test ends.
	blocking := func(t *testing.T, entered chan<- struct{}) fakeHandler {
		done := make(chan struct{})
		t.Cleanup(func() { close(done) }) // runs before the server closes
		return func(w http.ResponseWriter, c call, _ int) {
			if entered != nil {
				close(entered)
			}
			select {
			case <-c.ctx.Done():
			case <-done:
			}
		}
	}

	t.Run("PerRequestTimeout", func(t *testing.T) {
		t.Parallel()
		var statuses []int
		client, bundle := setup(t, func(c *Config) {
			c.Timeout = 50 * time.Millisecond
			c.Observe = func(_ string, status int, _ time.Duration) { statuses = append(statuses, status) }
		})
		bundle.cloud.handle("dismiss", blocking(t, nil))
		_, err := client.DismissRoom(context.Background(), "a", "r")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		e := requireAPIError(t, err)
		require.Equal(t, "dismiss", e.Op)
		require.Zero(t, e.Status)
		require.NotEmpty(t, e.RequestID)
		require.Contains(t, e.Error(), "apiclient: dismiss: transport error")
		require.Equal(t, []int{0}, statuses)
	})

	t.Run("TimeoutWhileReadingBody", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t, func(c *Config) { c.Timeout = 50 * time.Millisecond })
		done := make(chan struct{})
		t.Cleanup(func() { close(done) })
		bundle.cloud.handle("disable", func(w http.ResponseWriter, c call, _ int) {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"app_id":`))
			w.(http.Flusher).Flush()
			select {
			case <-c.ctx.Done():
			case <-done:
			}
		})
		_, _, err := client.DisableApp(context.Background(), "a")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Zero(t, requireAPIError(t, err).Status)
	})

	t.Run("ContextDeadline", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		bundle.cloud.handle("reclaim", blocking(t, nil))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := client.ReclaimVMRs(ctx, "acc", 0, []string{"v"})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, "reclaim", requireAPIError(t, err).Op)
	})

	t.Run("ContextCanceled", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		entered := make(chan struct{})
		bundle.cloud.handle("hangup", blocking(t, entered))
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-entered
			cancel()
		}()
		_, err := client.HangUpParticipants(ctx, "c", []string{"p"})
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, errors.Is(err, context.DeadlineExceeded))
		require.Equal(t, "hangup", requireAPIError(t, err).Op)
	})

	t.Run("ConnectionRefused", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		bundle.cloud.srv.Close()
		_, err := client.DismissRoom(context.Background(), "a", "r")
		e := requireAPIError(t, err)
		require.Zero(t, e.Status)
		require.Error(t, e.Unwrap())
		require.False(t, errors.Is(err, context.DeadlineExceeded))
	})
}

// No error string may contain a credential, a token or a password, even when
// the upstream echoes everything it received.
func TestNoSecretInErrors(t *testing.T) {
	t.Parallel()

	echo := func(asJSON bool) fakeHandler {
		return func(w http.ResponseWriter, c call, _ int) {
			var parts []string
			for _, h := range []string{"Authorization", "X-Auth-Token", "X-Access-Token", "X-Conference-Authorization", "X-Password"} {
				if v := c.header.Get(h); v != "" {
					parts = append(parts, h+"="+v)
				}
			}
			echoed := strings.Join(parts, " ") + " body=" + string(c.body)
			if asJSON {
				writeError(w, http.StatusUnauthorized, "USG.000000004", echoed)
				return
			}
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(echoed))
		}
	}
	ctx := context.Background()
	cases := map[string]struct {
		opts  []func(*Config)
		route string
		run   func(c *Client) error
	}{
		"Dismiss":     {nil, "dismiss", func(c *Client) error { _, err := c.DismissRoom(ctx, "a", "r"); return err }},
		"IAMToken":    {[]func(*Config){iamMode}, "iam_token", func(c *Client) error { _, _, err := c.DisableApp(ctx, "a"); return err }},
		"DisableIAM":  {[]func(*Config){iamMode}, "disable", func(c *Client) error { _, _, err := c.DisableApp(ctx, "a"); return err }},
		"AppAuth":     {nil, "meeting_auth", func(c *Client) error { _, err := c.CancelConference(ctx, "c", "", false); return err }},
		"AccountAuth": {[]func(*Config){accountMode}, "meeting_auth", func(c *Client) error { _, err := c.CancelConference(ctx, "c", "", false); return err }},
		"Cancel":      {nil, "cancel", func(c *Client) error { _, err := c.CancelConference(ctx, "c", "", false); return err }},
		"ConfDetail":  {nil, "conf_detail", func(c *Client) error { _, err := c.HangUpParticipants(ctx, "c", []string{"p"}); return err }},
		"ControlTok":  {nil, "control_token", func(c *Client) error { _, err := c.HangUpParticipants(ctx, "c", []string{"p"}); return err }},
		"HangUp":      {nil, "hangup", func(c *Client) error { _, err := c.HangUpParticipants(ctx, "c", []string{"p"}); return err }},
		"Reclaim":     {nil, "reclaim", func(c *Client) error { _, err := c.ReclaimVMRs(ctx, "acc", 0, []string{"v"}); return err }},
	}
	secrets := []string{testSK, testIAMPassword, testAppKey, testMeetingPwd, secretMark,
		base64.StdEncoding.EncodeToString([]byte(testAccount + ":" + testMeetingPwd))}
	for name, tc := range cases {
		for _, asJSON := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/json=%v", name, asJSON), func(t *testing.T) {
				t.Parallel()
				client, bundle := setup(t, tc.opts...)
				bundle.cloud.handle(tc.route, echo(asJSON))
				err := tc.run(client)
				e := requireAPIError(t, err)
				require.Equal(t, tc.route, e.Op)
				switch {
				case tokenOps[tc.route]:
					require.Empty(t, e.Message+e.Body, "a token request's answer is never copied")
				case tc.route != "dismiss": // an AK/SK request carries no secret, only a signature
					require.Contains(t, e.Message+e.Body, "***", "the echo was redacted, not lost")
				}
				for _, s := range []string{err.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
					for _, secret := range secrets {
						require.NotContains(t, s, secret)
					}
				}
			})
		}
	}
}

// Secrets with characters that JSON and URLs escape (<>&"\ % space) are
// redacted in every form an answer could echo them in: raw, JSON-escaped
// with and without HTML escaping, and URL-encoded. Before, only the raw
// form was, and json.Marshal's \u003c… form leaked.
func TestNoSecretInErrorsInAnyEncoding(t *testing.T) {
	t.Parallel()
	hostile := func(name string) string { return `Pa<ss>&"w\ord %2F+ ` + name }
	client, bundle := setup(t, accountMode, func(c *Config) {
		c.MeetingPassword, c.RTCSK = hostile("meeting"), hostile("sk")
	})
	var forms []string
	for _, secret := range []string{hostile("meeting"), hostile("sk")} {
		forms = append(forms, secret, url.QueryEscape(secret), url.PathEscape(secret))
		for _, html := range []bool{true, false} {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(html)
			require.NoError(t, enc.Encode(map[string]string{"p": secret}))
			forms = append(forms, b.String())
		}
	}
	bundle.cloud.handle("cancel", func(w http.ResponseWriter, _ call, _ int) {
		writeError(w, http.StatusBadRequest, "MMC.111070005", "echo: "+strings.Join(forms, " | "))
	})
	_, err := client.CancelConference(context.Background(), "c", "", false)
	e := requireAPIError(t, err)
	require.Contains(t, e.Message, "***")
	for _, secret := range []string{hostile("meeting"), hostile("sk")} {
		for _, leak := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), `w\\ord`, `Pa\u003css`, `Pa<ss>`} {
			require.NotContains(t, e.Message, leak, "%q", secret)
			require.NotContains(t, err.Error(), leak)
		}
	}
}

// An upstream error_msg or error_code is cut to a bounded size, as a raw
// body is (a 900 KiB message went into results, dead letters and logs).
func TestErrorFieldsAreBounded(t *testing.T) {
	t.Parallel()
	client, bundle := setup(t)
	bundle.cloud.handle("cancel", func(w http.ResponseWriter, _ call, _ int) {
		writeError(w, http.StatusBadRequest, strings.Repeat("C", 5000), strings.Repeat("m", 900<<10))
	})
	_, err := client.CancelConference(context.Background(), "c", "", false)
	e := requireAPIError(t, err)
	require.LessOrEqual(t, len(e.Message), maxErrorBody+len("…"))
	require.LessOrEqual(t, len(e.Code), maxErrorCode+len("…"))
	require.Less(t, len(err.Error()), 2<<10)
}
