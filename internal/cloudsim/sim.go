package cloudsim

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a [Sim]. The zero value is usable.
type Options struct {
	// Credentials are the secrets the simulator accepts. The zero value means
	// [DemoCredentials].
	Credentials Credentials
	// Now is the clock used for token expiry, signature clock skew, AK
	// lock-outs and timestamps. It must be safe for concurrent use. Default
	// time.Now. Injected latency and hangs use real time.
	Now func() time.Time
	// Rand drives fault rates, latency jitter and generated IDs and tokens.
	// The Sim serialises access to it. Default: seeded from the time; pass
	// rand.New(rand.NewPCG(1, 2)) for deterministic tests.
	Rand *rand.Rand
	// TTLs are the token lifetimes; zero fields take the defaults
	// (IAM 24 h, access 12 h, control 30 min).
	TTLs TokenTTLs
	// LogSize is the capacity of the request log ring. Default 1024.
	LogSize int
}

// Sim is the simulator. It is an [http.Handler] and safe for concurrent use.
// Create it with [New].
type Sim struct {
	creds  Credentials
	now    func() time.Time
	closed chan struct{}
	close  sync.Once

	mu      sync.Mutex // guards everything below
	rng     *rand.Rand
	ttls    TokenTTLs
	world   world
	tokens  tokenStore
	locks   map[string]*akLock
	faults  map[string]*faultState
	stats   stats
	log     ring
	logSize int
}

// New returns a simulator with an empty world and no faults.
func New(opts Options) *Sim {
	s := &Sim{
		creds:   opts.Credentials,
		now:     opts.Now,
		closed:  make(chan struct{}),
		rng:     opts.Rand,
		logSize: opts.LogSize,
	}
	if s.creds == (Credentials{}) {
		s.creds = DemoCredentials()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rng == nil {
		seed := uint64(time.Now().UnixNano())
		s.rng = rand.New(rand.NewPCG(seed, seed>>1|1))
	}
	if s.logSize <= 0 {
		s.logSize = 1024
	}
	s.ttls = opts.TTLs.withDefaults()
	s.world = newWorld()
	s.tokens = newTokenStore()
	s.locks = map[string]*akLock{}
	s.faults = map[string]*faultState{}
	s.stats = newStats()
	s.log = newRing(s.logSize)
	return s
}

// Credentials returns the credentials the simulator accepts.
func (s *Sim) Credentials() Credentials { return s.creds }

// Close releases requests that are hanging or sleeping in injected latency
// (their connections are reset), so an http.Server can shut down. The Sim
// keeps answering other requests.
func (s *Sim) Close() {
	s.close.Do(func() { close(s.closed) })
}

// ServeHTTP answers one request: admin endpoints under /_sim/, otherwise the
// simulated APIs.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.serveAdmin(w, r)
		return
	}
	start := time.Now()
	rt, params := matchRoute(r)
	op := opUnknown
	if rt != nil {
		op = rt.op
	}

	reqID := r.Header.Get("X-Request-Id")
	s.mu.Lock()
	if reqID == "" || len(reqID) > 128 {
		reqID = s.randHexLocked(16)
	}
	plan := s.planLocked(op)
	s.mu.Unlock()

	w.Header().Set("X-Request-Id", reqID)
	w.Header().Set("Server", "cloudsim")
	entry := LogEntry{
		RequestID: reqID,
		Op:        op,
		Method:    r.Method,
		Path:      r.URL.EscapedPath(),
		Query:     redactQuery(r.URL.RawQuery),
		Auth:      authKind(r.Header),
		Fault:     plan.label(),
	}
	finish := func(status string, rep reply) {
		entry.ErrorCode = rep.code
		entry.Duration = time.Since(start)
		s.record(entry, status)
	}

	if rt == nil {
		rep := apiError(http.StatusNotFound, codeAPINotFound, "The API does not exist or has not been published in the environment")
		s.write(w, rep, familyGateway, reqID)
		entry.Status = rep.status
		finish(strconv.Itoa(rep.status), rep)
		return
	}
	if plan.latency > 0 && !s.sleep(r.Context(), plan.latency) {
		finish(statusCanceled, reply{})
		if !isDone(r.Context()) {
			resetConn(w)
		}
		return
	}

	var rep reply
	if plan.outcome == OutcomeOK || plan.afterEffect {
		rep = rt.handle(s, r, params)
	}
	switch plan.outcome {
	case OutcomeOK:
	case OutcomeHang:
		finish(OutcomeHang, rep)
		select {
		case <-r.Context().Done():
		case <-s.closed:
			resetConn(w)
		}
		return
	case OutcomeReset:
		finish(OutcomeReset, rep)
		resetConn(w)
		return
	case OutcomeEcho, OutcomeEchoText:
		rep = echoReply(r, plan.outcome == OutcomeEchoText)
	default:
		rep = faultReply(rt, plan.outcome, plan.retryAfter)
	}
	s.write(w, rep, rt.family, reqID)
	entry.Status = rep.status
	finish(strconv.Itoa(rep.status), rep)
}

// write sends a reply. Meeting error bodies carry the request ID.
func (s *Sim) write(w http.ResponseWriter, rep reply, fam family, reqID string) {
	h := w.Header()
	for k, v := range rep.header {
		h.Set(k, v)
	}
	if rep.body == nil {
		w.WriteHeader(rep.status)
		return
	}
	if text, ok := rep.body.(textBody); ok {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(rep.status)
		_, _ = w.Write(text)
		return
	}
	if eb, ok := rep.body.(errorBody); ok && fam == familyMeeting {
		eb.RequestID = reqID
		rep.body = eb
	}
	b, err := json.Marshal(rep.body)
	if err != nil {
		http.Error(w, "cloudsim: encoding the answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(rep.status)
	_, _ = w.Write(b)
}

// sleep waits d of real time; false when the client went away or the Sim was
// closed first.
func (s *Sim) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closed:
		return false
	}
}

// randHexLocked returns n random bytes as hex. Callers hold s.mu.
func (s *Sim) randHexLocked(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(s.rng.Uint32())
	}
	return hex.EncodeToString(b)
}

func isDone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// resetConn closes the client's connection without an answer: a TCP reset
// where the connection can be hijacked, an aborted stream otherwise.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// authKind names the kind of credential a request carries, never its value.
func authKind(h http.Header) string {
	authz := h.Get("Authorization")
	switch {
	case strings.HasPrefix(authz, "SDK-HMAC-SHA256"):
		return "aksk"
	case strings.HasPrefix(authz, "HMAC-SHA256"):
		return "appid_hmac"
	case strings.HasPrefix(authz, "Basic "):
		return "basic"
	case h.Get("X-Auth-Token") != "":
		return "iam_token"
	case h.Get("X-Access-Token") != "":
		return "access_token"
	case h.Get("X-Conference-Authorization") != "":
		return "control_token"
	case h.Get("X-Password") != "":
		return "password"
	}
	return ""
}
