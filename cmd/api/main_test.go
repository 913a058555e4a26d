package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/api"
	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// apiProc is a running api process.
type apiProc struct {
	*proctest.Proc
	url string
	// tokens: "svc" (enqueue) and "ops" (admin).
	tokens   map[string]string
	redisURL string
}

// startAPI starts the api binary on a free port, a fresh Redis database
// and two tokens, with env added, and waits until it listens.
func startAPI(t *testing.T, env ...string) *apiProc {
	t.Helper()
	dir := t.TempDir()
	p := &apiProc{tokens: map[string]string{}, redisURL: redistest.URL(t)}
	var lines []string
	for name, scope := range map[string]api.Scope{"svc": api.ScopeEnqueue, "ops": api.ScopeAdmin} {
		secret, tok, err := api.NewToken(name, scope)
		require.NoError(t, err)
		p.tokens[name] = secret
		lines = append(lines, tok.Line())
	}
	file := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(file, []byte("# test tokens\n"+strings.Join(lines, "\n")+"\n"), 0o600))
	addr := proctest.FreeAddr(t)
	p.Proc = proctest.Start(t, proctest.Bin(t, "api"), append([]string{
		"API_ADDR=" + addr, "API_TOKENS_FILE=" + file, "REDIS_URL=" + p.redisURL, "API_RATE_LIMIT=off",
	}, env...))
	p.WaitLine(t, `"msg":"api listening"`, 20*time.Second)
	p.url = "http://" + addr
	return p
}

// Without tokens the API refuses to start, with one line per problem.
func TestStartupProblemsOneLineEach(t *testing.T) {
	t.Parallel()
	p := proctest.Start(t, proctest.Bin(t, "api"), []string{"API_ADDR=nowhere", "API_RATE_LIMIT=fast", "REDIS_URL=" + redistest.URL(t)})
	err, done := p.Wait(20 * time.Second)
	require.True(t, done)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.ExitCode())
	require.Equal(t, []string{
		`api: API_ADDR: want host:port, got "nowhere"`,
		"api: API_TOKENS_FILE or API_TOKENS: no tokens, so nobody could use the API; add a line NAME SCOPE sha256:HEX (`api token NAME SCOPE` makes one)",
		`api: API_RATE_LIMIT: want N/s, N/m, N/h or off (N ≥ 1), got "fast"`,
	}, strings.Split(strings.TrimSpace(p.Output()), "\n"))
}

// `api token` makes a token whose line the server accepts.
func TestTokenCommand(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"token", "billing", "enqueue"}, os.Getenv, &out, &errOut))
	m := regexp.MustCompile(`(?s)\n  (mo_\S+)\n.*\n  (billing enqueue sha256:[0-9a-f]{64})\n$`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	tokens, err := api.ParseTokens("line", m[2], '\n')
	require.NoError(t, err)
	p := proctest.Start(t, proctest.Bin(t, "api"), []string{"API_ADDR=" + proctest.FreeAddr(t), "API_TOKENS=" + tokens[0].Line(), "REDIS_URL=" + redistest.URL(t)})
	line := p.WaitLine(t, `"msg":"api listening"`, 20*time.Second)
	require.Contains(t, line, `billing:enqueue`)
	require.NotContains(t, line, m[1][3:])
	require.ErrorIs(t, run(t.Context(), []string{"token", "billing"}, os.Getenv, io.Discard, io.Discard), api.ErrUsage)
	require.ErrorIs(t, run(t.Context(), []string{"token", "bill ing", "admin"}, os.Getenv, io.Discard, io.Discard), api.ErrUsage)
}

// SIGTERM: the API takes no new connection, finishes the request in
// flight and exits 0.
func TestSIGTERMFinishesInFlightRequests(t *testing.T) {
	t.Parallel()
	p := startAPI(t)
	first, rest := ndjsonLines(0, 100), ndjsonLines(100, 100)
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, p.url+"/v1/batches", pr)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+p.tokens["svc"])
	req.Header.Set("Content-Type", "application/x-ndjson")
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			close(done)
			return
		}
		done <- resp
	}()
	_, err = pw.Write([]byte(first))
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond) // the request is being read
	require.NoError(t, p.Signal(syscall.SIGTERM))
	p.WaitLine(t, "shutting down", 10*time.Second)
	_, err = http.Get(p.url + "/healthz")
	require.Error(t, err, "no new connections once shutting down")
	_, err = pw.Write([]byte(rest))
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	resp := <-done
	require.NotNil(t, resp)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	var created api.BatchCreated
	require.NoError(t, json.Unmarshal(body, &created))
	require.Equal(t, 200, created.Enqueued)
	err, exited := p.Wait(10 * time.Second)
	require.True(t, exited)
	require.NoError(t, err, "exit 0")
	require.Contains(t, p.Output(), `"msg":"api stopped"`)
	require.Contains(t, p.Output(), `"token":"svc"`)
}

func ndjsonLines(from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, `{"op":"dismiss","app_id":"demo-app-bulk","room_id":"sigterm-%d"}`+"\n", i)
	}
	return b.String()
}

// requireTool finds a program the test runs, or skips the test: it fails
// instead when the variable requireEnv is 1 (CI sets it).
func requireTool(t *testing.T, name, requireEnv string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("%s not found and %s=1", name, requireEnv)
		}
		t.Skipf("%s not found (set %s=1 to fail instead)", name, requireEnv)
	}
	return path
}

// moduleRoot is the repository's root, from this package's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	return root
}
