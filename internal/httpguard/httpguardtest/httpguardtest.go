// Package httpguardtest checks, from a test, that a listener carries the
// timeouts and size limits every meetops listener must have.
package httpguardtest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/httpguard"
)

// RequireGuarded fails t unless srv has httpguard's default timeouts and
// header cap, and the running listener behind url answers a request whose
// headers are twice the cap with 431 (net/http's own 1 MiB cap would let
// it through) and a request with small headers with 2xx. url is a GET
// endpoint of srv that needs no authentication.
func RequireGuarded(t testing.TB, srv *http.Server, url string) {
	t.Helper()
	require.Equal(t, httpguard.DefaultReadHeaderTimeout, srv.ReadHeaderTimeout, "ReadHeaderTimeout")
	require.Equal(t, httpguard.DefaultReadTimeout, srv.ReadTimeout, "ReadTimeout")
	require.Equal(t, httpguard.DefaultWriteTimeout, srv.WriteTimeout, "WriteTimeout")
	require.Equal(t, httpguard.DefaultIdleTimeout, srv.IdleTimeout, "IdleTimeout")
	require.Equal(t, httpguard.DefaultMaxHeaderBytes, srv.MaxHeaderBytes, "MaxHeaderBytes")

	status := func(header int) int {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		require.NoError(t, err)
		req.Header.Set("X-Big", strings.Repeat("a", header))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, status(2*httpguard.DefaultMaxHeaderBytes), "headers twice the cap")
	code := status(httpguard.DefaultMaxHeaderBytes / 2)
	require.True(t, code >= 200 && code < 300, "headers under the cap pass: got %d from %s", code, url)
}
