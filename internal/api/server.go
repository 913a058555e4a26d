package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/ratelimit"
)

var opNames = meetops.OpNames

// Options assemble a Server.
type Options struct {
	// Producer does the work: a *meetops.Client in the api command and
	// the worker's dev mode.
	Producer Producer
	// Tokens are the accepted tokens; none means every request that
	// needs one gets 401.
	Tokens []Token
	// RateLimit is each token's request rate (API_RATE_LIMIT); the zero
	// Limit is "off".
	RateLimit ratelimit.Limit
	// Logger gets one line per request; nil discards them.
	Logger *slog.Logger
	// Registerer gets the API's collectors; nil registers them nowhere.
	Registerer prometheus.Registerer
	// Gatherer, when not nil, is served at /metrics by Handler.
	Gatherer prometheus.Gatherer
	// Now is the clock of the rate limits; nil is time.Now.
	Now func() time.Time
}

// Server is the HTTP producer API. Its handlers are safe for concurrent
// use.
type Server struct {
	producer Producer
	tokens   tokenSet
	limits   limiters
	log      *slog.Logger
	metrics  *metrics
	gatherer prometheus.Gatherer
	now      func() time.Time
	// batchTimeout and opTimeout bound the work of one request (Redis
	// calls included), within the listener's write timeout.
	batchTimeout, opTimeout time.Duration
	// single enqueues the operations of POST /v1/operations.
	single *coalescer
}

// New returns a Server for o.
func New(o Options) (*Server, error) {
	if o.Producer == nil {
		return nil, errors.New("api: no producer")
	}
	s := &Server{
		producer:     o.Producer,
		tokens:       tokenSet{tokens: o.Tokens},
		limits:       newLimiters(o.Tokens, o.RateLimit),
		log:          o.Logger,
		metrics:      newMetrics(o.Registerer),
		gatherer:     o.Gatherer,
		now:          o.Now,
		batchTimeout: 50 * time.Second,
		opTimeout:    15 * time.Second,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.single = newCoalescer(s.producer, s.opTimeout)
	return s, nil
}

// Close stops the Server's background work; call it once nothing is
// served any more (after http.Server.Shutdown).
func (s *Server) Close() { s.single.close() }

// call is one request in a handler: the token that made it, and what the
// access log line says besides the basics.
type call struct {
	token Token
	attrs []slog.Attr
}

// log adds attributes to the request's access log line.
func (c *call) log(attrs ...slog.Attr) { c.attrs = append(c.attrs, attrs...) }

// handlerFunc is an endpoint: it answers w itself, or returns the problem
// to answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call) *Problem

// endpoint is one method of a route.
type endpoint struct {
	method string
	// scope is what the token needs; "" for no token at all.
	scope Scope
	h     handlerFunc
}

// route is a path pattern of http.ServeMux and its endpoints.
type route struct {
	pattern   string
	endpoints []endpoint
}

func (s *Server) apiRoutes() []route {
	return []route{
		{"/v1/operations", []endpoint{{http.MethodPost, ScopeEnqueue, s.enqueue}}},
		{"/v1/operations/{key}", []endpoint{{http.MethodGet, ScopeEnqueue, s.status}}},
		{"/v1/batches", []endpoint{{http.MethodPost, ScopeEnqueue, s.createBatch}}},
		{"/v1/batches/{id}", []endpoint{{http.MethodGet, ScopeEnqueue, s.batchProgress}}},
		{"/v1/dead-letters", []endpoint{{http.MethodGet, ScopeAdmin, s.listDeadLetters}}},
		{"/v1/dead-letters/{key}", []endpoint{{http.MethodDelete, ScopeAdmin, s.purgeDeadLetter}}},
		{"/v1/dead-letters/{key}/requeue", []endpoint{{http.MethodPost, ScopeAdmin, s.requeueDeadLetter}}},
		{"/v1/openapi.yaml", []endpoint{{http.MethodGet, "", s.openAPI}}},
	}
}

func (s *Server) opsRoutes() []route {
	rs := []route{
		{"/healthz", []endpoint{{http.MethodGet, "", s.healthz}}},
		{"/readyz", []endpoint{{http.MethodGet, "", s.readyz}}},
	}
	if s.gatherer != nil {
		metrics := promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{})
		rs = append(rs, route{"/metrics", []endpoint{{http.MethodGet, "", func(w http.ResponseWriter, r *http.Request, _ *call) *Problem {
			metrics.ServeHTTP(w, r)
			return nil
		}}}})
	}
	return rs
}

// API returns the handler of the /v1/ paths alone, for mounting under
// another server's /v1/ (the worker's dev mode); anything else under
// /v1/ is a 404 problem.
func (s *Server) API() http.Handler {
	return s.mux(s.apiRoutes(), "/v1/")
}

// Handler returns the whole API server's handler: the /v1/ paths,
// /healthz, /readyz, and /metrics when Options.Gatherer is set.
func (s *Server) Handler() http.Handler {
	return s.mux(append(s.apiRoutes(), s.opsRoutes()...), "/")
}

func (s *Server) mux(routes []route, fallback string) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle(rt.pattern, s.dispatch(rt))
	}
	mux.Handle(fallback, s.wrap("unmatched", endpoint{scope: "", h: func(w http.ResponseWriter, r *http.Request, _ *call) *Problem {
		return newProblem(typeNotFound, "no such path: see GET /v1/openapi.yaml")
	}}))
	return mux
}

// dispatch answers rt's methods, and 405 with Allow for the others.
func (s *Server) dispatch(rt route) http.Handler {
	byMethod := map[string]http.Handler{}
	var allow []string
	for _, e := range rt.endpoints {
		byMethod[e.method] = s.wrap(e.method+" "+rt.pattern, e)
		allow = append(allow, e.method)
	}
	notAllowed := s.wrap(rt.pattern, endpoint{h: func(w http.ResponseWriter, r *http.Request, _ *call) *Problem {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return newProblem(typeMethod, fmt.Sprintf("%s takes %s, not %s", rt.pattern, strings.Join(allow, ", "), r.Method))
	}})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := byMethod[r.Method]; ok {
			h.ServeHTTP(w, r)
			return
		}
		notAllowed.ServeHTTP(w, r)
	})
}

// wrap runs e as route: it recovers a panic as a 500, authenticates and
// rate-limits when e needs a token, and counts, times and logs the
// request (with the token's name, never the token).
func (s *Server) wrap(route string, e endpoint) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w := &statusWriter{ResponseWriter: rw}
		c := &call{}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "route", route, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if w.status == 0 {
					writeProblem(w, newProblem(typeInternal, "the request failed on the server; it is logged"))
				}
			}
			s.finish(r, w, c, route, start)
		}()
		if p := s.serve(w, r, c, e); p != nil {
			writeProblem(w, p)
		}
	})
}

// serve authenticates, rate-limits and runs e.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, c *call, e endpoint) *Problem {
	if e.scope != "" {
		t, p := s.authenticate(w, r, e.scope)
		c.token = t // a 403's too: it is known, only not allowed
		if p != nil {
			return p
		}
		if ok, wait := s.limits.allow(t.Name, s.now()); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(wait))
			return newProblem(typeRateLimited, fmt.Sprintf("token %s is over its rate limit (API_RATE_LIMIT); retry after %d s", t.Name, wait))
		}
	}
	return e.h(w, r, c)
}

// finish counts, times and logs a request.
func (s *Server) finish(r *http.Request, w *statusWriter, c *call, route string, start time.Time) {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	d := time.Since(start)
	s.metrics.observe(route, status, d.Seconds())
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	if !s.log.Enabled(r.Context(), level) {
		return
	}
	attrs := make([]slog.Attr, 0, 8+len(c.attrs))
	attrs = append(attrs,
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.String("path", r.URL.EscapedPath()),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("remote", r.RemoteAddr),
	)
	if c.token.Name != "" {
		attrs = append(attrs, slog.String("token", c.token.Name))
	}
	attrs = append(attrs, c.attrs...)
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// statusWriter records the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withTimeout bounds the request's work by d. A client that hangs up
// does not cancel it: a batch or a requeue half done would leave its
// outcome unknown; the work is bounded anyway.
func withTimeout(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), d)
}

// slogError is an error's log attribute.
func slogError(err error) slog.Attr { return slog.String("error", err.Error()) }
