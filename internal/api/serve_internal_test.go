package api

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/httpguard/httpguardtest"
)

// The API's listener has the timeouts and header cap every meetops
// listener has: a slow or oversized client cannot hold it.
func TestServeListenerIsGuarded(t *testing.T) {
	t.Parallel()
	srv := httpServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	httpguardtest.RequireGuarded(t, srv, "http://"+ln.Addr().String()+"/")
}
