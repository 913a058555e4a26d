package worker

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/syncbuf"
)

func TestLoadAndValidateAuthWindow(t *testing.T) {
	t.Parallel()
	c, err := Load(nil, envOf(map[string]string{"AUTH_REJECT_COUNT": "5", "AUTH_REJECT_WINDOW": "6s", "AUTH_RETRY_INTERVAL": "2s"}), io.Discard)
	require.NoError(t, err)
	require.Equal(t, 5, c.AuthRejectCount)
	require.Equal(t, 6*time.Second, c.AuthRejectWindow)
	require.Equal(t, 2*time.Second, c.AuthRetryInterval)
	c, err = Load([]string{"-auth-reject-window", "1m"}, envOf(nil), io.Discard)
	require.NoError(t, err)
	require.Equal(t, time.Minute, c.AuthRejectWindow)

	_, err = Load(nil, envOf(map[string]string{"AUTH_REJECT_COUNT": "0", "AUTH_REJECT_WINDOW": "-1s", "AUTH_RETRY_INTERVAL": "soon"}), io.Discard)
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 3, "%v", lines)
	for i, v := range []string{"AUTH_REJECT_COUNT: ", "AUTH_REJECT_WINDOW: ", "AUTH_RETRY_INTERVAL: "} {
		require.True(t, strings.HasPrefix(lines[i], v), "%q names %s", lines[i], v)
	}

	err = Config{API: validAPI, AuthRejectCount: -1, AuthRejectWindow: -time.Second, AuthRetryInterval: -time.Second}.WithDefaults().Validate()
	for _, v := range []string{"AUTH_REJECT_COUNT", "AUTH_REJECT_WINDOW", "AUTH_RETRY_INTERVAL"} {
		require.ErrorContains(t, err, v)
	}
	require.NoError(t, Config{API: validAPI}.WithDefaults().Validate(), "zero values are the defaults")
}

// Load remembers which secrets came from files, so that a refused login
// can re-read them; secrets from the environment have nothing to re-read.
func TestLoadRemembersSecretFiles(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(path, []byte("k1\n"), 0o600))
	c, err := Load(nil, envOf(map[string]string{"MEETING_APP_KEY_FILE": path, "IAM_PASSWORD": "inline"}), io.Discard)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"MEETING_APP_KEY": path}, c.secretFiles)

	lw := newLoginWatch(c, zerolog.Nop(), nil)
	require.Equal(t, "k1", lw.reload("MeetingAppKey"))
	require.NoError(t, os.WriteFile(path, []byte("k2\n"), 0o600))
	require.Equal(t, "k2", lw.reload("MeetingAppKey"), "re-read, not cached")
	require.Empty(t, lw.reload("IAMPassword"), "no file: keep the secret in use")
	require.NoError(t, os.Remove(path))
	require.Empty(t, lw.reload("MeetingAppKey"), "unreadable: keep the secret in use")
}

// fakeMeeting is a Meeting API whose App ID login accepts only the App Key
// in key, and whose cancel always succeeds.
type fakeMeeting struct {
	key    atomic.Value // string
	logins atomic.Int32
}

func (f *fakeMeeting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v2/usg/acs/auth/appauth" {
		w.WriteHeader(http.StatusOK) // the cancel
		return
	}
	f.logins.Add(1)
	var b struct {
		AppID      string `json:"appId"`
		UserID     string `json:"userId"`
		ExpireTime int64  `json:"expireTime"`
		Nonce      string `json:"nonce"`
	}
	_ = json.NewDecoder(r.Body).Decode(&b)
	sig := apiclient.AppAuthSignature(f.key.Load().(string), apiclient.AppAuthData(b.AppID, "", b.UserID, b.ExpireTime, b.Nonce))
	if !strings.Contains(r.Header.Get("Authorization"), "signature="+sig+",") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error_code":"USG.206010025","error_msg":"App ID authentication failed"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"accessToken": "ACCESS-TOKEN-x", "validPeriod": 3600})
}

// testClock is an injected clock for the upstream client.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Rejected credentials make /readyz not ready, naming them by their
// variables (never the secret), set meetops_credentials_rejected and log
// one line per transition; the worker keeps trying a login every
// AUTH_RETRY_INTERVAL with the secret re-read from its file, and a rotated
// secret makes it ready again without a restart.
func TestRejectedCredentialsAndRecovery(t *testing.T) {
	t.Parallel()
	const oldKey, newKey = "OLD-APP-KEY-7f3e", "NEW-APP-KEY-91c2"
	fake := &fakeMeeting{}
	fake.key.Store(newKey)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	keyFile := filepath.Join(t.TempDir(), "app_key")
	require.NoError(t, os.WriteFile(keyFile, []byte(oldKey+"\n"), 0o600))
	clock := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var logs syncbuf.Buffer
	b := setupWithLog(t, func(c *Config) {
		c.API.MeetingEndpoint = srv.URL
		c.API.MeetingAppKey = oldKey // as Load read it from the file
		c.API.Now = clock.Now
		c.secretFiles = map[string]string{"MEETING_APP_KEY": keyFile}
		c.AuthRejectCount, c.AuthRejectWindow, c.AuthRetryInterval = 2, time.Second, 5*time.Second
	}, zerolog.New(&logs))
	client := b.w.upstream.(*apiclient.Client)
	ctx := context.Background()
	_, m := b.get(t, "/metrics", nil)
	require.Contains(t, m, `meetops_credentials_rejected{credential="meeting"} 0`)

	_, err := client.CancelConference(ctx, "c", "", false)
	var le *apiclient.LoginError
	require.ErrorAs(t, err, &le)
	require.False(t, le.Rejected)
	require.Equal(t, http.StatusOK, b.status(t, "/readyz", nil), "one refusal is not a rejection")

	clock.Advance(time.Second)
	_, err = client.CancelConference(ctx, "c", "", false)
	require.ErrorAs(t, err, &le)
	require.True(t, le.Rejected, "two refusals over 1 s")
	code, body := b.get(t, "/readyz", nil)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "credentials rejected: meeting (MEETING_APP_ID/MEETING_APP_KEY): 2 logins refused since 2026-01-02T03:04:05Z")
	_, m = b.get(t, "/metrics", nil)
	require.Contains(t, m, `meetops_credentials_rejected{credential="meeting"} 1`)

	// Not due yet: the loop does not log in (it ticks every second).
	logins := fake.logins.Load()
	require.Never(t, func() bool { return fake.logins.Load() != logins }, 1500*time.Millisecond, 50*time.Millisecond)

	// Rotate the secret and let the retry fall due: ready again.
	require.NoError(t, os.WriteFile(keyFile, []byte(newKey+"\n"), 0o600))
	clock.Advance(5 * time.Second)
	require.Eventually(t, func() bool { return b.status(t, "/readyz", nil) == http.StatusOK }, 10*time.Second, 20*time.Millisecond)
	_, m = b.get(t, "/metrics", nil)
	require.Contains(t, m, `meetops_credentials_rejected{credential="meeting"} 0`)
	_, err = client.CancelConference(ctx, "c", "", false)
	require.NoError(t, err)

	out := logs.String()
	for _, want := range []string{`"login_state":"failing"`, `"login_state":"rejected"`, `"login_state":"ok"`, `"credential":"meeting"`} {
		require.Contains(t, out, want)
	}
	require.Equal(t, 1, strings.Count(out, `"login_state":"rejected"`), "one line per transition")
	for _, secret := range []string{oldKey, newKey} {
		require.NotContains(t, out, secret, "no secret in the logs")
		require.NotContains(t, body, secret, "no secret in /readyz")
		require.NotContains(t, m, secret)
	}
}
