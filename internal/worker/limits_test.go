package worker

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/httpguard"
	"github.com/meetops/meetops/internal/httpguard/httpguardtest"
	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/redistest"
)

// Every response of the worker's HTTP server carries the security
// headers: pages, API, metrics, health, and every refusal.
func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	b := setup(t, writable)
	for _, r := range []request{
		{path: "/healthz"}, {path: "/readyz"}, {path: "/metrics"},
		{path: "/monitoring/", auth: dashAuth},
		{path: "/monitoring/static/js/runtime-main.9fea6c1a.js", auth: dashAuth},
		{path: "/monitoring/api/queues", auth: dashAuth},
		{path: "/monitoring/api/queues"},                        // 401
		{path: "/nope"},                                         // 404
		{path: "/monitoring/", host: "rebind.attacker.example"}, // 421
		{method: http.MethodPost, path: "/monitoring/api/queues/default:pause", auth: dashAuth, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, // 403
		{method: http.MethodPost, path: "/monitoring/api/queues/default/archived_tasks:batch_delete", auth: dashAuth, body: strings.Repeat(" ", 2<<20)},    // 413
	} {
		got := b.do(t, r)
		require.Equal(t, "DENY", got.header.Get("X-Frame-Options"), "%s %s → %d", r.method, r.path, got.code)
		require.Equal(t, "frame-ancestors 'none'", got.header.Get("Content-Security-Policy"), "%s %s → %d", r.method, r.path, got.code)
		require.Equal(t, "nosniff", got.header.Get("X-Content-Type-Options"), "%s %s → %d", r.method, r.path, got.code)
	}
	js := b.do(t, request{path: "/monitoring/static/js/runtime-main.9fea6c1a.js", auth: dashAuth})
	require.Equal(t, http.StatusOK, js.code, "the dashboard's own script (asynqmon's build file name changed?)")
	require.Contains(t, js.header.Get("Content-Type"), "javascript", "nosniff needs a script type on scripts")
}

// The HTTP server has read, write and idle timeouts and size limits: a
// client dribbling its headers or never finishing a body on the write API
// is cut off, oversized headers get 431, an oversized body 413 (and
// changes nothing).
func TestHTTPServerLimits(t *testing.T) {
	t.Parallel()
	limits := httpguard.Options{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 2 * time.Second}
	b := setup(t, func(c *Config) { writable(c); c.httpLimits = limits })
	b.schedule(t, "dismiss:big-1")
	require.NoError(t, b.w.insp.ArchiveTask("default", "dismiss:big-1"))

	slow := func(t *testing.T, start string) {
		t.Helper()
		conn, err := net.Dial("tcp", b.w.HTTPAddr())
		require.NoError(t, err)
		defer conn.Close()
		_, err = conn.Write([]byte(start))
		require.NoError(t, err)
		go func() { // one byte every 10 ms until the server hangs up
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for range tick.C {
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}()
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err = io.ReadAll(conn)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the worker kept a slow client's connection open for 10s (configured: %+v)", limits)
		}
	}
	auth := "Authorization: Basic b3BzOmRhc2gtc2VjcmV0\r\n" // ops:dash-secret
	slow(t, "GET /monitoring/ HTTP/1.1\r\nHost: localhost\r\n"+auth+"X-Slow: ")
	slow(t, "POST /monitoring/api/queues/default/archived_tasks:batch_delete HTTP/1.1\r\nHost: localhost\r\n"+auth+
		"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"task_ids\":[\"dismiss:big-1\"")
	require.Equal(t, asynq.TaskStateArchived, b.state(t, "dismiss:big-1"), "the unfinished request did nothing")

	got := b.do(t, request{path: "/metrics", header: map[string]string{"X-Big": strings.Repeat("a", 2*httpguard.DefaultMaxHeaderBytes)}})
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, got.code)

	ids := `{"task_ids":["dismiss:big-1"` + strings.Repeat(`,"dismiss:padding"`, (httpguard.DefaultMaxBodyBytes/18)+1) + `]}`
	got = b.do(t, request{method: http.MethodPost, path: "/monitoring/api/queues/default/archived_tasks:batch_delete", body: ids, auth: dashAuth})
	require.Equal(t, http.StatusRequestEntityTooLarge, got.code, got.body)
	require.Equal(t, asynq.TaskStateArchived, b.state(t, "dismiss:big-1"), "not deleted")
	// Unconfigured, the worker has httpguard's defaults.
	require.Equal(t, httpguard.DefaultIdleTimeout, b.w.http.IdleTimeout)
	require.Equal(t, httpguard.DefaultMaxHeaderBytes, b.w.http.MaxHeaderBytes)
	def := setup(t, nil).w.http
	require.Equal(t, httpguard.DefaultReadHeaderTimeout, def.ReadHeaderTimeout)
	require.Equal(t, httpguard.DefaultReadTimeout, def.ReadTimeout)
	require.Equal(t, httpguard.DefaultWriteTimeout, def.WriteTimeout)
	require.Equal(t, httpguard.DefaultIdleTimeout, def.IdleTimeout)
}

// The dev mode's in-process simulator listens with the same timeouts and
// size limits as every meetops listener.
func TestDevSimulatorServesWithTimeoutsAndLimits(t *testing.T) {
	t.Parallel()
	_, dev, err := StartDev(Config{Redis: redisconf.Config{URL: redistest.URL(t)}}, io.Discard)
	require.NoError(t, err)
	t.Cleanup(dev.Close)
	httpguardtest.RequireGuarded(t, dev.http, dev.SimURL+"/_sim/stats")
}
