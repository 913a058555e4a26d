package cloudsim

import (
	"net/url"
	"strings"
	"time"
)

// LogEntry is one request as the simulator recorded it. It never holds a
// secret: no header values, no bodies — only which kind of credential the
// request carried.
type LogEntry struct {
	Time      time.Time `json:"time"` // on the simulator's clock
	RequestID string    `json:"request_id"`
	Op        string    `json:"op"`
	Method    string    `json:"method"`
	Path      string    `json:"path"` // escaped, as sent
	Query     string    `json:"query,omitempty"`
	// Auth is the kind of credential: "aksk", "iam_token", "appid_hmac",
	// "basic", "access_token", "control_token", "password" or "".
	Auth string `json:"auth,omitempty"`
	// Status is the HTTP status answered; 0 when a fault reset the
	// connection, the request hangs, or the client gave up.
	Status    int           `json:"status"`
	ErrorCode string        `json:"error_code,omitempty"`
	Fault     string        `json:"fault,omitempty"` // the injected outcome, if any
	Duration  time.Duration `json:"duration_ns"`
}

// ring is a bounded log that keeps the newest entries.
type ring struct {
	buf  []LogEntry
	next int
	full bool
}

func newRing(n int) ring { return ring{buf: make([]LogEntry, n)} }

func (r *ring) add(e LogEntry) {
	r.buf[r.next] = e
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
}

// entries returns the entries oldest first.
func (r *ring) entries() []LogEntry {
	if !r.full {
		return append([]LogEntry(nil), r.buf[:r.next]...)
	}
	out := make([]LogEntry, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

// Log returns the recorded requests, oldest first (at most Options.LogSize).
func (s *Sim) Log() []LogEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.entries()
}

// redactQuery masks the values of query parameters whose names suggest a
// secret, so the log stays secret-free whatever a client sends.
func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "(unparsable query)"
	}
	changed := false
	for k, vs := range q {
		lk := strings.ToLower(k)
		for _, word := range []string{"password", "token", "secret", "key", "signature", "authorization"} {
			if strings.Contains(lk, word) {
				for i := range vs {
					vs[i] = "***"
				}
				changed = true
				break
			}
		}
	}
	if !changed {
		return raw
	}
	return q.Encode()
}
