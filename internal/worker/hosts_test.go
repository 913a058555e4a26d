package worker

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/redistest"
)

// DNS rebinding: a page on rebind.attacker.example whose name now resolves
// to 127.0.0.1 reaches the loopback worker, but with its own name in Host.
// It gets 421 and none of the dashboard's content; health checks answer
// any Host; IP literals, localhost, HTTP_ADDR's host and DASHBOARD_HOSTS
// pass.
func TestDashboardRefusesForeignHosts(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.DashboardHosts = []string{"dash.example.com"} })
	b.schedule(t, "dismiss:rebind-1")
	tasksPath := "/monitoring/api/queues/default/scheduled_tasks"
	_, port, err := net.SplitHostPort(b.w.HTTPAddr())
	require.NoError(t, err)

	for _, path := range []string{tasksPath, "/monitoring/", "/monitoring/api/queues", "/metrics", "/healthz/"} {
		for _, host := range []string{"rebind.attacker.example", "rebind.attacker.example:" + port, "127.0.0.1.nip.io:" + port} {
			got := b.do(t, request{path: path, host: host})
			require.Equal(t, http.StatusMisdirectedRequest, got.code, "%s with Host %s", path, host)
			require.NotContains(t, got.body, "payload-of", path)
			require.NotContains(t, got.body, "asynq", path)
			require.NotContains(t, got.body, "meetops_", path)
		}
	}
	got := b.do(t, request{method: http.MethodPost, path: "/monitoring/api/queues/default:pause", host: "rebind.attacker.example",
		header: map[string]string{"Origin": "http://rebind.attacker.example"}})
	require.Equal(t, http.StatusMisdirectedRequest, got.code, "Origin = Host does not get a rebound page past the Host check")

	for _, path := range []string{"/healthz", "/readyz"} {
		require.Equal(t, http.StatusOK, b.do(t, request{path: path, host: "rebind.attacker.example"}).code, "%s is exempt", path)
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LocalHost", "10.1.2.3:8080", "[::1]:" + port, "dash.example.com", "Dash.Example.Com:443"} {
		got := b.do(t, request{path: tasksPath, host: host})
		require.Equal(t, http.StatusOK, got.code, "Host %s", host)
		require.Contains(t, got.body, "payload-of-dismiss:rebind-1", "Host %s", host)
	}
}

// The dashboard is not exposed unauthenticated by accident: off loopback
// without auth the worker does not start, unless DASHBOARD_INSECURE=1,
// which it then announces at warn on every start; a writable dashboard
// needs auth whatever the address.
func TestExposedDashboardNeedsAuthOrOptIn(t *testing.T) {
	t.Parallel()
	base := Config{API: validAPI}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // "" for no error
	}{
		{"default loopback", func(*Config) {}, ""},
		{"127.0.0.1", func(c *Config) { c.HTTPAddr = "127.0.0.1:9000" }, ""},
		{"127.8.0.1", func(c *Config) { c.HTTPAddr = "127.8.0.1:9000" }, ""},
		{"localhost", func(c *Config) { c.HTTPAddr = "localhost:9000" }, ""},
		{"::1", func(c *Config) { c.HTTPAddr = "[::1]:9000" }, ""},
		{"off", func(c *Config) { c.HTTPAddr = "off" }, ""},
		{"all interfaces", func(c *Config) { c.HTTPAddr = "0.0.0.0:8080" },
			"HTTP_ADDR 0.0.0.0:8080 is not loopback: set DASHBOARD_USER and DASHBOARD_PASSWORD for /monitoring, or DASHBOARD_INSECURE=1 to serve it without auth"},
		{"empty host", func(c *Config) { c.HTTPAddr = ":8080" }, "HTTP_ADDR :8080 is not loopback"},
		{"IPv6 any", func(c *Config) { c.HTTPAddr = "[::]:8080" }, "is not loopback"},
		{"a name", func(c *Config) { c.HTTPAddr = "worker.internal:8080" }, "is not loopback"},
		{"a LAN address", func(c *Config) { c.HTTPAddr = "10.0.0.5:8080" }, "is not loopback"},
		{"not host:port", func(c *Config) { c.HTTPAddr = "8080" }, `HTTP_ADDR: want host:port or off, got "8080"`},
		{"exposed with auth", func(c *Config) { c.HTTPAddr, c.DashboardUser, c.DashboardPassword = "0.0.0.0:8080", "ops", "pw" }, ""},
		{"exposed, opted in", func(c *Config) { c.HTTPAddr, c.DashboardInsecure = "0.0.0.0:8080", true }, ""},
		{"write without auth", func(c *Config) { c.DashboardWrite = true },
			"DASHBOARD_WRITE=1 needs dashboard auth: set DASHBOARD_USER and DASHBOARD_PASSWORD (DASHBOARD_INSECURE does not lift this)"},
		{"write, opted in", func(c *Config) { c.HTTPAddr, c.DashboardWrite, c.DashboardInsecure = "0.0.0.0:8080", true, true }, "DASHBOARD_WRITE=1 needs dashboard auth"},
		{"write with auth", func(c *Config) { c.DashboardWrite, c.DashboardUser, c.DashboardPassword = true, "ops", "pw" }, ""},
		{"hosts", func(c *Config) { c.DashboardHosts = []string{"dash.example.com", "ops.internal:8443"} }, ""},
		{"a URL in hosts", func(c *Config) { c.DashboardHosts = []string{"https://dash.example.com/"} }, `DASHBOARD_HOSTS: want host names like dash.example.com (no scheme, path or user), got "https://dash.example.com/"`},
	} {
		c := base
		tc.change(&c)
		err := c.WithDefaults().Validate()
		if tc.want == "" {
			require.NoError(t, err, tc.name)
			continue
		}
		require.ErrorContains(t, err, tc.want, tc.name)
		require.NotContains(t, err.Error(), "\n", "%s: one line", tc.name)
	}

	// Through Load, as an operator sets it.
	_, err := Load(nil, envOf(map[string]string{"HTTP_ADDR": "0.0.0.0:8080", "DASHBOARD_INSECURE": "1", "DASHBOARD_HOSTS": "a.example, b.example"}), io.Discard)
	require.NoError(t, err)
	c, err := Load([]string{"-dashboard-insecure=true", "-dashboard-hosts", "a.example,b.example:8443"}, envOf(nil), io.Discard)
	require.NoError(t, err)
	require.True(t, c.DashboardInsecure)
	require.Equal(t, []string{"a.example", "b.example:8443"}, c.DashboardHosts)
	_, err = Load(nil, envOf(map[string]string{"DASHBOARD_INSECURE": "sure"}), io.Discard)
	require.ErrorContains(t, err, `DASHBOARD_INSECURE: want 1/0 or true/false, got "sure"`)

	// The opt-in is announced at warn on every start.
	var logs bytes.Buffer
	cfg := Config{Redis: redisconf.Config{URL: redistest.URL(t)}, HTTPAddr: "0.0.0.0:0", DashboardInsecure: true, API: validAPI, ShutdownTimeout: time.Second}
	w, err := New(context.Background(), cfg, zerolog.New(&logs))
	require.NoError(t, err)
	w.httpLn.Close()
	w.rdb.Close()
	require.Contains(t, logs.String(), `"level":"warn"`)
	require.Contains(t, logs.String(), "DASHBOARD_INSECURE=1: the dashboard (task payloads and results) is served WITHOUT authentication")

	logs.Reset()
	cfg.HTTPAddr = "127.0.0.1:0"
	w, err = New(context.Background(), cfg, zerolog.New(&logs))
	require.NoError(t, err)
	w.httpLn.Close()
	w.rdb.Close()
	require.NotContains(t, logs.String(), "WITHOUT authentication", "loopback: nothing to announce")
}
