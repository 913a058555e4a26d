package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/meetops/meetops/internal/httpguard"
)

// routes serves /healthz, /readyz, /metrics and /monitoring, and in dev
// mode the HTTP API under /v1/, hardened (outermost first): requests for a
// host name the worker does not answer to refused with 421, except the
// health checks (DNS rebinding); cross-origin state-changing requests
// refused with 403 (CSRF), but on /v1/: the API authenticates with bearer
// tokens, which a browser never sends by itself, so a cross-site request
// cannot act for anyone; basic auth on /monitoring when configured. The
// security headers and the timeouts come with the server
// (httpguard.Server), and so does the body limit, but with the API
// mounted: it then applies to the worker's own paths here, and the API
// has its own, per route.
func (w *Worker) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-w.running:
		default:
			http.Error(rw, "asynq server not running", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := w.rdb.Ping(ctx).Err(); err != nil {
			http.Error(rw, "redis unreachable", http.StatusServiceUnavailable)
			return
		}
		if w.upstream != nil {
			if reason := notReady(w.upstream.Rejected(), w.cfg.API); reason != "" {
				http.Error(rw, reason, http.StatusServiceUnavailable)
				return
			}
		}
		rw.Write([]byte("ok\n"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(w.reg, promhttp.HandlerOpts{}))
	mon := asynqmon.New(asynqmon.Options{
		RootPath:         "/monitoring",
		RedisConnOpt:     sharedConn{w.rdb},
		ReadOnly:         !w.cfg.DashboardWrite,
		PayloadFormatter: asynqmon.PayloadFormatterFunc(func(_ string, b []byte) string { return prettyJSON(b) }),
		ResultFormatter:  asynqmon.ResultFormatterFunc(func(_ string, b []byte) string { return prettyJSON(b) }),
	})
	var dash http.Handler = mon
	if w.cfg.DashboardUser != "" {
		dash = basicAuth(dash, newCredentials(w.cfg.DashboardUser, w.cfg.DashboardPassword))
	}
	mux.Handle("/monitoring/", dash)
	mux.Handle("/monitoring", dash)
	// The batch pages show keys and upstream messages: the dashboard's auth.
	var pages http.Handler = w.batchesHandler()
	if w.cfg.DashboardUser != "" {
		pages = basicAuth(pages, newCredentials(w.cfg.DashboardUser, w.cfg.DashboardPassword))
	}
	mux.Handle("/batches", pages)
	mux.Handle("/batches/", pages)
	hosts := httpguard.Hosts{
		Names:  w.cfg.DashboardHosts,
		Listen: w.cfg.HTTPAddr,
		// Health checks come from container runtimes and load balancers
		// with whatever Host they like, and reveal nothing.
		Exempt: []string{"/healthz", "/readyz"},
	}
	if w.api == nil {
		return hosts.Handler(httpguard.CrossOrigin(mux))
	}
	maxBody := w.cfg.httpLimits.MaxBodyBytes
	if maxBody == 0 {
		maxBody = httpguard.DefaultMaxBodyBytes
	}
	var own http.Handler = httpguard.CrossOrigin(mux)
	if maxBody > 0 {
		own = httpguard.LimitBody(own, maxBody)
	}
	top := http.NewServeMux()
	top.Handle("/v1/", w.api.API())
	top.Handle("/", own)
	return hosts.Handler(top)
}

// sharedConn hands asynqmon the worker's own Redis client.
type sharedConn struct{ c redis.UniversalClient }

// MakeRedisClient implements asynq.RedisConnOpt.
func (s sharedConn) MakeRedisClient() any { return s.c }

var _ asynq.RedisConnOpt = sharedConn{}

// prettyJSON indents JSON payloads and results for the dashboard and shows
// anything else as quoted text.
func prettyJSON(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") == nil {
		return out.String()
	}
	q, _ := json.Marshal(string(b))
	return string(q)
}

// credentials is the dashboard's basic-auth pair, kept as SHA-256 digests:
// comparing digests takes the same time whatever the lengths of what is
// compared (subtle.ConstantTimeCompare returns early on a length mismatch).
type credentials struct {
	user, pass [sha256.Size]byte
	// compare is subtle.ConstantTimeCompare; tests count its calls.
	compare func(a, b []byte) int
}

func newCredentials(user, pass string) credentials {
	return credentials{user: sha256.Sum256([]byte(user)), pass: sha256.Sum256([]byte(pass)), compare: subtle.ConstantTimeCompare}
}

// match reports whether user and pass are the configured pair. It always
// compares both, in constant time, and combines the results with &: how
// long it takes tells nothing of which one was wrong.
func (c credentials) match(user, pass string) bool {
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	userOK := c.compare(u[:], c.user[:])
	passOK := c.compare(p[:], c.pass[:])
	return userOK&passOK == 1
}

// basicAuth lets through requests carrying the configured credentials and
// answers the others with 401 and a challenge.
func basicAuth(next http.Handler, want credentials) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !want.match(u, p) || !ok {
			rw.Header().Set("WWW-Authenticate", `Basic realm="meetops"`)
			http.Error(rw, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(rw, r)
	})
}
