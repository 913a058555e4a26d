package proctest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// ClearFaults removes every fault from the simulator (DELETE /_sim/faults).
func (c *Cloudsim) ClearFaults(tb testing.TB) {
	tb.Helper()
	c.admin(tb, http.MethodDelete, "/_sim/faults", "")
}

// SetTTLs changes the lifetimes of tokens the simulator issues from now on
// (PUT /_sim/ttls), e.g. `{"access": "3s", "iam": "3s"}`.
func (c *Cloudsim) SetTTLs(tb testing.TB, ttlsJSON string) {
	tb.Helper()
	c.admin(tb, http.MethodPut, "/_sim/ttls", ttlsJSON)
}

// RevokeTokens invalidates every token the simulator issued
// (POST /_sim/tokens/revoke).
func (c *Cloudsim) RevokeTokens(tb testing.TB) {
	tb.Helper()
	c.admin(tb, http.MethodPost, "/_sim/tokens/revoke", "")
}

// SimLogEntry mirrors one entry of cloudsim's GET /_sim/log.
type SimLogEntry struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	Op        string    `json:"op"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Query     string    `json:"query"`
	Auth      string    `json:"auth"`
	Status    int       `json:"status"`
	ErrorCode string    `json:"error_code"`
	Fault     string    `json:"fault"`
}

// Log returns the simulator's request log, oldest first (at most its
// -log-size newest entries).
func (c *Cloudsim) Log(tb testing.TB) []SimLogEntry {
	tb.Helper()
	var out []SimLogEntry
	if err := json.Unmarshal([]byte(c.admin(tb, http.MethodGet, "/_sim/log", "")), &out); err != nil {
		tb.Fatalf("proctest: decode /_sim/log: %v", err)
	}
	return out
}

// admin sends one admin request and returns the body; a non-2xx answer
// fails tb.
func (c *Cloudsim) admin(tb testing.TB, method, path, body string) string {
	tb.Helper()
	req, err := http.NewRequest(method, c.URL+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("proctest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		tb.Fatalf("proctest: %s %s: %s %s", method, path, resp.Status, b)
	}
	return string(b)
}

// Get fetches path (e.g. "/metrics") from the worker's HTTP server and
// returns the status and body.
func (w *Worker) Get(tb testing.TB, path string) (int, string) {
	tb.Helper()
	return HTTPGet(tb, "http://"+w.HTTP+path)
}

// HTTPGet fetches url with a 10 s timeout and returns the status and body;
// a transport error fails tb.
func HTTPGet(tb testing.TB, url string) (int, string) {
	tb.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		tb.Fatalf("proctest: GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("proctest: GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// ExitCode returns the exit status of a process that has exited (-1 when it
// was killed by a signal), or an error when it is still running.
func (p *Proc) ExitCode() (int, error) {
	select {
	case <-p.exited:
		return p.Cmd.ProcessState.ExitCode(), nil
	default:
		return 0, fmt.Errorf("proctest: %s is still running", p.name)
	}
}
