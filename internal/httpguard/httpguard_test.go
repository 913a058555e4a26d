package httpguard_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/httpguard"
	"github.com/meetops/meetops/internal/httpguard/httpguardtest"
)

// serve runs httpguard.Server(h, o) on a loopback port and returns its
// address.
func serve(t *testing.T, h http.Handler, o httpguard.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := httpguard.Server(h, o)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// closedWithin reads conn until the server closes it, and fails when that
// has not happened within limit. limit is far above the configured
// timeouts: the assertion is that the server cuts the connection, not how
// fast.
func closedWithin(t *testing.T, conn net.Conn, limit time.Duration) []byte {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(limit)))
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %s (read so far: %q)", limit, got)
	}
	return got
}

// dribble writes one byte of an endless header line every 10 ms until the
// connection breaks: a slowloris client.
func dribble(conn net.Conn) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		if _, err := conn.Write([]byte("a")); err != nil {
			return
		}
	}
}

func TestServerDefaults(t *testing.T) {
	t.Parallel()
	srv := httpguard.Server(http.NotFoundHandler(), httpguard.Options{})
	require.Equal(t, httpguard.DefaultReadHeaderTimeout, srv.ReadHeaderTimeout)
	require.Equal(t, httpguard.DefaultReadTimeout, srv.ReadTimeout)
	require.Equal(t, httpguard.DefaultWriteTimeout, srv.WriteTimeout)
	require.Equal(t, httpguard.DefaultIdleTimeout, srv.IdleTimeout)
	require.Equal(t, httpguard.DefaultMaxHeaderBytes, srv.MaxHeaderBytes)

	srv = httpguard.Server(http.NotFoundHandler(), httpguard.Options{ReadTimeout: time.Second, MaxHeaderBytes: 1024})
	require.Equal(t, time.Second, srv.ReadTimeout)
	require.Equal(t, 1024, srv.MaxHeaderBytes)
	require.Equal(t, httpguard.DefaultWriteTimeout, srv.WriteTimeout, "other fields keep their defaults")
}

// A client that sends its headers a byte at a time is cut off at
// ReadHeaderTimeout, however long it keeps dribbling.
func TestSlowHeadersAreCutOff(t *testing.T) {
	t.Parallel()
	var reached atomic.Bool
	addr := serve(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Store(true) }),
		httpguard.Options{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: "))
	require.NoError(t, err)
	go dribble(conn)
	closedWithin(t, conn, 10*time.Second)
	require.False(t, reached.Load(), "the handler never saw the request")
}

// A client that declares a body and never finishes sending it is cut off at
// ReadTimeout: the handler's read fails and the connection is closed.
func TestUnfinishedBodyIsCutOff(t *testing.T) {
	t.Parallel()
	readErr := make(chan error, 1)
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
		if err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		}
	}), httpguard.Options{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, WriteTimeout: time.Second})
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"task_ids\":["))
	require.NoError(t, err)
	go dribble(conn)
	closedWithin(t, conn, 10*time.Second)
	select {
	case err := <-readErr:
		require.Error(t, err, "the handler's body read failed")
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's body read never returned")
	}
}

// A zero Options gives the defaults, and headers beyond MaxHeaderBytes get
// 431 (net/http's default cap, 1 MiB, would let them through).
func TestOversizedHeadersGet431(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := httpguard.Server(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), httpguard.Options{})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	httpguardtest.RequireGuarded(t, srv, "http://"+ln.Addr().String()+"/")
}

// A declared body over MaxBodyBytes gets 413 without reaching the handler;
// a chunked one fails the handler's read past the cap.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	var reached atomic.Int32
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		if _, err := io.ReadAll(r.Body); err != nil {
			code := http.StatusInternalServerError
			if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
				code = http.StatusRequestEntityTooLarge
			}
			http.Error(w, err.Error(), code)
		}
	}), httpguard.Options{MaxBodyBytes: 1000})

	resp, err := http.Post("http://"+addr+"/", "application/json", strings.NewReader(strings.Repeat("a", 1001)))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Zero(t, reached.Load(), "refused before the handler")

	// No Content-Length: chunked.
	resp, err = http.Post("http://"+addr+"/", "application/json", io.MultiReader(strings.NewReader(strings.Repeat("a", 1001))))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.EqualValues(t, 1, reached.Load())

	resp, err = http.Post("http://"+addr+"/", "application/json", strings.NewReader(strings.Repeat("a", 1000)))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "a body at the cap passes")

	srv := httpguard.Server(http.NotFoundHandler(), httpguard.Options{MaxBodyBytes: -1})
	rec := httptest.NewRecorder()
	srv.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("a", 2*httpguard.DefaultMaxBodyBytes))))
	require.Equal(t, http.StatusNotFound, rec.Code, "negative: no cap")
}

// Every response carries the security headers: the handler's, its errors,
// and refusals by the other guards.
func TestHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	h := httpguard.Headers(httpguard.Hosts{}.Handler(httpguard.CrossOrigin(mux)))
	for name, req := range map[string]*http.Request{
		"ok":           httptest.NewRequest(http.MethodGet, "http://localhost/ok", nil),
		"not found":    httptest.NewRequest(http.MethodGet, "http://localhost/nope", nil),
		"bad host":     httptest.NewRequest(http.MethodGet, "http://rebind.attacker.example/ok", nil),
		"cross origin": crossSite(httptest.NewRequest(http.MethodPost, "http://localhost/ok", nil)),
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		for k, v := range map[string]string{
			"X-Frame-Options":         "DENY",
			"Content-Security-Policy": "frame-ancestors 'none'",
			"X-Content-Type-Options":  "nosniff",
		} {
			require.Equal(t, v, rec.Header().Get(k), "%s: %s", name, k)
		}
	}
}

func crossSite(r *http.Request) *http.Request {
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	return r
}

func TestHostsAllowed(t *testing.T) {
	t.Parallel()
	h := httpguard.Hosts{Names: []string{"Dash.Example.com", "ops.internal:8443"}, Listen: "worker.svc:8080"}
	for host, want := range map[string]bool{
		"localhost":                   true,
		"LOCALHOST:8080":              true,
		"localhost.:8080":             true,
		"127.0.0.1:8080":              true,
		"127.9.9.9":                   true,
		"[::1]:8080":                  true,
		"10.0.0.5:8080":               true, // an IP literal cannot be rebound
		"[2001:db8::1]":               true,
		"dash.example.com":            true,
		"DASH.example.com.:443":       true,
		"ops.internal":                true, // the entry's port is ignored
		"worker.svc:9999":             true, // the listen address's host
		"rebind.attacker.example":     false,
		"rebind.attacker.example:80":  false,
		"127.0.0.1.nip.io":            false,
		"localhost.attacker.example":  false,
		"dash.example.com.attacker":   false,
		"sub.dash.example.com":        false,
		"":                            false,
		"evil.example:8080@127.0.0.1": false,
	} {
		require.Equal(t, want, h.Allowed(host), "Host %q", host)
	}
	require.False(t, httpguard.Hosts{Listen: "0.0.0.0:8080"}.Allowed("worker.svc"), "an unspecified listen address adds no name")
	require.False(t, httpguard.Hosts{Listen: ":8080"}.Allowed(""), "nor does an empty host")
}

// A request for another host name (DNS rebinding) gets 421 and nothing of
// the handler; exempt paths answer whatever the Host.
func TestHostsHandler(t *testing.T) {
	t.Parallel()
	h := httpguard.Hosts{Exempt: []string{"/healthz"}}.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("secret payload"))
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	do := func(path, host string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := do("/api", "rebind.attacker.example")
	require.Equal(t, http.StatusMisdirectedRequest, code)
	require.NotContains(t, body, "secret")
	require.NotContains(t, body, "attacker", "the Host is not echoed")
	code, body = do("/api", srv.Listener.Addr().String())
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "secret payload", body)
	code, _ = do("/healthz", "rebind.attacker.example")
	require.Equal(t, http.StatusOK, code, "exempt")
	code, _ = do("/healthz/", "rebind.attacker.example")
	require.Equal(t, http.StatusMisdirectedRequest, code, "exact paths only")
}

// Cross-origin browser requests that may change state are refused; reads,
// same-origin requests and non-browser clients pass.
func TestCrossOrigin(t *testing.T) {
	t.Parallel()
	var effects atomic.Int32
	srv := httptest.NewServer(httpguard.CrossOrigin(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		effects.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, method string
		header       map[string]string
		want         int
	}{
		{"Origin of another site", http.MethodPost, map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"}, http.StatusForbidden},
		{"Sec-Fetch-Site cross-site", http.MethodPost, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"Sec-Fetch-Site same-site", http.MethodDelete, map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"cross-site wins over a forged Origin", http.MethodPost, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": srv.URL}, http.StatusForbidden},
		{"same-origin", http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": srv.URL}, http.StatusNoContent},
		{"Origin is the Host (older browser)", http.MethodPost, map[string]string{"Origin": srv.URL}, http.StatusNoContent},
		{"typed in the address bar", http.MethodPost, map[string]string{"Sec-Fetch-Site": "none"}, http.StatusNoContent},
		{"not a browser", http.MethodPost, nil, http.StatusNoContent},
		{"cross-site read", http.MethodGet, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, http.StatusNoContent},
	} {
		before := effects.Load()
		req, err := http.NewRequest(tc.method, srv.URL+"/queues/default:pause", nil)
		require.NoError(t, err)
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, tc.want, resp.StatusCode, tc.name)
		if tc.want == http.StatusForbidden {
			require.Equal(t, before, effects.Load(), "%s: refused before the handler", tc.name)
		}
	}
}
