package worker

import (
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/redistest"
)

type testBundle struct {
	w    *Worker
	base string
}

// setup assembles and runs a worker on a private Redis database with
// placeholder upstream credentials (no task is run) and the given changes.
func setup(t *testing.T, change func(*Config)) *testBundle {
	t.Helper()
	return setupWithLog(t, change, zerolog.Nop())
}

// setupWithLog is setup with the worker logging to log.
func setupWithLog(t *testing.T, change func(*Config), log zerolog.Logger) *testBundle {
	t.Helper()
	cfg := Config{
		Redis: redisconf.Config{URL: redistest.URL(t)}, HTTPAddr: "127.0.0.1:0",
		API:             validAPI,
		ShutdownTimeout: time.Second,
	}
	if change != nil {
		change(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := New(ctx, cfg, log)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("worker did not stop")
		}
	})
	b := &testBundle{w: w, base: "http://" + w.HTTPAddr()}
	require.Eventually(t, func() bool { return b.status(t, "/readyz", nil) == http.StatusOK }, 10*time.Second, 10*time.Millisecond)
	return b
}

func (b *testBundle) get(t *testing.T, path string, auth []string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	require.NoError(t, err)
	if auth != nil {
		req.SetBasicAuth(auth[0], auth[1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *testBundle) status(t *testing.T, path string, auth []string) int {
	code, _ := b.get(t, path, auth)
	return code
}

// dashAuth is the basic-auth pair of the writable dashboards below.
var dashAuth = []string{"ops", "dash-secret"}

// writable turns on the dashboard's write API, behind basic auth (the
// worker refuses one without).
func writable(c *Config) {
	c.DashboardWrite = true
	c.DashboardUser, c.DashboardPassword = dashAuth[0], dashAuth[1]
}

// request is one HTTP request to the worker; Host, when set, replaces the
// Host header.
type request struct {
	method, path, host string
	header             map[string]string
	body               string
	auth               []string
}

type response struct {
	code   int
	header http.Header
	body   string
}

func (b *testBundle) do(t *testing.T, r request) response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	req, err := http.NewRequest(r.method, b.base+r.path, strings.NewReader(r.body))
	require.NoError(t, err)
	if r.host != "" {
		req.Host = r.host
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	if r.auth != nil {
		req.SetBasicAuth(r.auth[0], r.auth[1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{resp.StatusCode, resp.Header, string(body)}
}

// schedule puts tasks with these IDs in the default queue, due in an hour
// (the worker leaves them alone), with a payload naming the ID.
func (b *testBundle) schedule(t *testing.T, ids ...string) {
	t.Helper()
	c := asynq.NewClientFromRedisClient(b.w.rdb)
	for _, id := range ids {
		_, err := c.Enqueue(asynq.NewTask("rtc:dismiss", fmt.Appendf(nil, `{"app_id":"demo-app","room_id":"payload-of-%s"}`, id)),
			asynq.TaskID(id), asynq.ProcessIn(time.Hour))
		require.NoError(t, err)
	}
}

func (b *testBundle) state(t *testing.T, id string) asynq.TaskState {
	t.Helper()
	info, err := b.w.insp.GetTaskInfo("default", id)
	require.NoError(t, err)
	return info.State
}

func (b *testBundle) paused(t *testing.T) bool {
	t.Helper()
	info, err := b.w.insp.GetQueueInfo("default")
	require.NoError(t, err)
	return info.Paused
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	require.Equal(t, http.StatusOK, b.status(t, "/healthz", nil))
	code, body := b.get(t, "/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	for _, name := range []string{"meetops_ratelimit_limit_per_second", "go_goroutines", "process_resident_memory_bytes"} {
		require.Contains(t, body, name)
	}
	require.Contains(t, body, `meetops_ratelimit_limit_per_second{group="rtc_rooms"} 1`, "60/m by default")
	code, _ = b.get(t, "/monitoring/", nil)
	require.Equal(t, http.StatusOK, code, "the dashboard is open when no user is set")
}

func TestDashboardBasicAuthAndReadOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.DashboardUser, c.DashboardPassword = "ops", "dash-secret" })
	require.Equal(t, http.StatusUnauthorized, b.status(t, "/monitoring/", nil))
	require.Equal(t, http.StatusUnauthorized, b.status(t, "/monitoring/api/queues", []string{"ops", "wrong"}))
	code, body := b.get(t, "/monitoring/api/queues", []string{"ops", "dash-secret"})
	require.Equal(t, http.StatusOK, code)
	require.True(t, strings.HasPrefix(strings.TrimSpace(body), "{"), body)

	// Read-only: the dashboard refuses to delete.
	req, err := http.NewRequest(http.MethodDelete, b.base+"/monitoring/api/queues/default", nil)
	require.NoError(t, err)
	req.SetBasicAuth("ops", "dash-secret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, http.StatusOK, b.status(t, "/metrics", nil), "metrics stay open for the scraper")
}

func TestReadinessFailsWhenRedisIsGone(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t, redistest.Options{})
	b := setup(t, func(c *Config) { c.Redis.URL = srv.URL(0) })
	srv.Kill()
	require.Eventually(t, func() bool { return b.status(t, "/readyz", nil) == http.StatusServiceUnavailable }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, http.StatusOK, b.status(t, "/healthz", nil), "liveness does not depend on Redis")
}

// Basic auth: a wrong user, a wrong password, both, or none are 401; and
// both halves are always compared, in constant time, so the time taken
// does not tell a wrong user from a wrong password.
func TestBasicAuthComparesUserAndPasswordAlways(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.DashboardUser, c.DashboardPassword = "ops", "dash-secret" })
	for _, tc := range []struct {
		name       string
		user, pass string
		want       bool
	}{
		{"right user and password", "ops", "dash-secret", true},
		{"wrong user, right password", "opz", "dash-secret", false},
		{"right user, wrong password", "ops", "dash-secrex", false},
		{"both wrong", "root", "hunter2", false},
		{"user longer", "ops-admin", "dash-secret", false},
		{"password a prefix", "ops", "dash", false},
		{"empty", "", "", false},
	} {
		calls := 0
		c := newCredentials("ops", "dash-secret")
		c.compare = func(a, b []byte) int { calls++; return subtle.ConstantTimeCompare(a, b) }
		require.Equal(t, tc.want, c.match(tc.user, tc.pass), tc.name)
		require.Equal(t, 2, calls, "%s: both user and password compared", tc.name)

		want := http.StatusUnauthorized
		if tc.want {
			want = http.StatusOK
		}
		require.Equal(t, want, b.status(t, "/monitoring/api/queues", []string{tc.user, tc.pass}), tc.name)
	}
	require.Equal(t, http.StatusUnauthorized, b.status(t, "/monitoring/api/queues", nil), "no credentials")
}
