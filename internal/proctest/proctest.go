// Package proctest runs meetops' real binaries as processes for end-to-end
// and fault tests: it builds cmd/worker, cmd/cloudsim and cmd/enqueue once
// per test binary, starts them with a given environment, waits until they
// are ready, and stops or kills them.
package proctest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meetops/meetops/internal/cloudsim"
)

var (
	buildMu sync.Mutex
	binDir  string
	built   = map[string]error{}
)

// ModuleRoot is the directory of the main module (go.mod), for tests that
// read its files (examples/, the README).
func ModuleRoot() string { return moduleRoot() }

// moduleRoot finds the directory holding go.mod, from this source file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Bin returns the path of a built meetops command ("worker", "cloudsim",
// "enqueue"), building it on first use in this test binary.
func Bin(tb testing.TB, name string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if binDir == "" {
		dir, err := os.MkdirTemp("", "meetops-bin-")
		if err != nil {
			tb.Fatal(err)
		}
		binDir = dir
	}
	err, ok := built[name]
	if !ok {
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), "./cmd/"+name)
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, cerr := cmd.CombinedOutput(); cerr != nil {
			err = fmt.Errorf("proctest: go build ./cmd/%s: %v\n%s", name, cerr, out)
		}
		built[name] = err
	}
	if err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(binDir, name)
}

// RemoveBinaries deletes the binaries Bin built (about 65 MB per test
// binary). Call it from TestMain once the tests have run.
func RemoveBinaries() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
		binDir, built = "", map[string]error{}
	}
}

// Proc is a running process with its combined output captured.
type Proc struct {
	Cmd    *exec.Cmd
	name   string
	mu     sync.Mutex
	out    bytes.Buffer
	lines  chan string
	exited chan struct{}
	err    error
}

type procWriter struct{ p *Proc }

func (w procWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	w.p.out.Write(b)
	w.p.mu.Unlock()
	return len(b), nil
}

// Start starts bin with args and env (added to a minimal environment) and
// kills it at cleanup if it is still running.
func Start(tb testing.TB, bin string, env []string, args ...string) *Proc {
	tb.Helper()
	p := &Proc{name: filepath.Base(bin), lines: make(chan string, 1024), exited: make(chan struct{})}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}, env...)
	dieWithParent(p.Cmd)
	pr, pw := io.Pipe()
	p.Cmd.Stdout, p.Cmd.Stderr = pw, pw
	if err := p.Cmd.Start(); err != nil {
		tb.Fatalf("proctest: start %s: %v", bin, err)
	}
	scanned := make(chan struct{}) // the output is all in p.out
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			procWriter{p}.Write([]byte(line + "\n"))
			select {
			case p.lines <- line:
			default: // nobody is reading lines; the full output is kept anyway
			}
		}
	}()
	go func() {
		p.err = p.Cmd.Wait()
		pw.Close()
		// Wait has seen the last bytes read from the pipe, not yet kept:
		// exited promises that Output holds everything.
		<-scanned
		close(p.exited)
	}()
	tb.Cleanup(func() {
		p.Kill()
		if tb.Failed() {
			tb.Logf("output of %s:\n%s", p.name, tail(p.Output(), 6000))
		}
	})
	return p
}

// Output returns everything the process printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// WaitLine waits for a printed line containing substr and returns it.
func (p *Proc) WaitLine(tb testing.TB, substr string, timeout time.Duration) string {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line := <-p.lines:
			if strings.Contains(line, substr) {
				return line
			}
		case <-p.exited:
			tb.Fatalf("proctest: %s exited (%v) before printing %q:\n%s", p.name, p.err, substr, tail(p.Output(), 4000))
		case <-deadline:
			tb.Fatalf("proctest: %s did not print %q within %s:\n%s", p.name, substr, timeout, tail(p.Output(), 4000))
		}
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Kill kills the process (SIGKILL) and waits for it.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Wait waits up to timeout for the process to exit and returns its exit
// error (nil for status 0).
func (p *Proc) Wait(timeout time.Duration) (error, bool) {
	select {
	case <-p.exited:
		return p.err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Exited is closed when the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// FreeAddr returns a free loopback host:port.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// WaitHTTP polls url until it answers 200 or timeout passes.
func WaitHTTP(tb testing.TB, url string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("proctest: %s not ready within %s (last error %v)", url, timeout, err)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

// Cloudsim is a running cmd/cloudsim process.
type Cloudsim struct {
	*Proc
	// URL is its base URL.
	URL string
	// Env is a worker environment for it: endpoints, and the demo
	// credentials in AK/SK and App ID mode.
	Env []string
}

// StartCloudsim starts cmd/cloudsim with the demo state (plus args) on a
// free port and returns it once it serves.
func StartCloudsim(tb testing.TB, args ...string) *Cloudsim {
	tb.Helper()
	addr := FreeAddr(tb)
	p := Start(tb, Bin(tb, "cloudsim"), nil, append([]string{"-demo", "-addr", addr}, args...)...)
	p.WaitLine(tb, "cloudsim listening on", 10*time.Second)
	c := &Cloudsim{Proc: p, URL: "http://" + addr}
	cr := cloudsim.DemoCredentials()
	c.Env = []string{
		"RTC_ENDPOINT=" + c.URL, "IAM_ENDPOINT=" + c.URL, "MEETING_ENDPOINT=" + c.URL,
		"RTC_AK=" + cr.AK, "RTC_SK=" + cr.SK, "RTC_PROJECT_ID=" + cr.ProjectID,
		"MEETING_APP_ID=" + cr.AppID, "MEETING_APP_KEY=" + cr.AppKey, "MEETING_USER_ID=" + cr.UserID,
	}
	WaitHTTP(tb, c.URL+"/_sim/stats", 10*time.Second)
	return c
}

// Stats returns the simulator's /_sim/stats.
func (c *Cloudsim) Stats(tb testing.TB) SimStats {
	tb.Helper()
	resp, err := http.Get(c.URL + "/_sim/stats")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var s SimStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		tb.Fatal(err)
	}
	return s
}

// SetFaults replaces the simulator's faults (PUT /_sim/faults) with a JSON
// object of operation → fault.
func (c *Cloudsim) SetFaults(tb testing.TB, faultsJSON string) {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodPut, c.URL+"/_sim/faults", strings.NewReader(faultsJSON))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		tb.Fatalf("proctest: set faults: %s %s", resp.Status, body)
	}
}

// SimStats mirrors cloudsim's /_sim/stats answer.
type SimStats struct {
	Requests map[string]struct {
		Total    int            `json:"total"`
		ByStatus map[string]int `json:"by_status"`
	} `json:"requests"`
	Effects map[string]int `json:"effects"`
	Logins  map[string]int `json:"logins"`
}

// Worker is a running cmd/worker process.
type Worker struct {
	*Proc
	// HTTP is its metrics/health address.
	HTTP string
}

// StartWorker starts cmd/worker with env (REDIS_URL, endpoints,
// credentials…) plus a free HTTP_ADDR, and returns it once /readyz answers.
func StartWorker(tb testing.TB, env []string, args ...string) *Worker {
	tb.Helper()
	addr := FreeAddr(tb)
	p := Start(tb, Bin(tb, "worker"), append(env, "HTTP_ADDR="+addr), args...)
	w := &Worker{Proc: p, HTTP: addr}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-p.Exited():
			tb.Fatalf("proctest: worker exited at start-up (%v):\n%s", p.err, tail(p.Output(), 4000))
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return w
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("proctest: worker not ready within 15s:\n%s", tail(p.Output(), 4000))
		}
		time.Sleep(20 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
